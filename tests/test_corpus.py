"""kapre_fast.corpus: extraction over a generated corpus (formats, rates, channels, bad files),
both engines, resuming after SIGKILL, manifests as input, reading back.

Every array is checked against kapre_fast.cpu on the same file read by soundfile (and resampled
by soxr), so the corpus machinery may not change a single value. The Ray tests share one local
2-CPU Ray session (module fixture) and skip where Ray is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

soundfile = pytest.importorskip('soundfile')
soxr = pytest.importorskip('soxr')

from kapre_fast import corpus, cpu  # noqa: E402

RATE = 16000
FRONT_END = dict(n_fft=512, hop_length=160, n_mels=40, return_decibel=True)
REPO = Path(__file__).resolve().parents[1]
# (name, libsndfile format, rate, channels, seconds); formats this libsndfile cannot write are
# left out of the corpus (MP3 needs libsndfile >= 1.1).
GOOD = [
    ('a.wav', 'WAV', 16000, 1, 1.0),
    ('b.flac', 'FLAC', 22050, 2, 0.8),
    ('sub/c.ogg', 'OGG', 44100, 1, 0.6),
    ('sub/deeper/d.mp3', 'MP3', 48000, 2, 0.7),
    ('sub/e.wav', 'WAV', 8000, 3, 0.5),
]
# name -> what the manifest's error must say.
BAD = {
    'broken': 'cannot read audio',  # RIFF header, then noise
    'empty': 'cannot read audio',  # 0 bytes
    'notes': 'cannot read audio',  # text named like audio
    'silent': 'no samples',  # a valid file with no frames
    'short': 'one frame needs win_length=512',  # 100 samples
}


def write_corpus(folder, speech):
    """The GOOD files (slices of the speech recording, resampled and mixed per channel) and the
    BAD ones; returns the ids of the good ones written."""
    written = []
    for index, (name, format, rate, channels, seconds) in enumerate(GOOD):
        if not soundfile.check_format(format):
            continue
        length = int(seconds * rate)
        start = 3000 * index
        signal = soxr.resample(speech[start : start + int(seconds * 22050) + 64], 22050, rate)
        audio = np.stack([signal[:length] * (0.5 + 0.2 * k) for k in range(channels)], axis=1)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), audio.astype(np.float32), rate, format=format)
        written.append(name.rsplit('.', 1)[0])
    (folder / 'broken.wav').write_bytes(
        b'RIFF\x10\x00\x00\x00WAVE' + np.random.default_rng(0).bytes(3000)
    )
    (folder / 'empty.flac').write_bytes(b'')
    (folder / 'notes.mp3').write_text('not audio, though it is named like it\n' * 20)
    soundfile.write(str(folder / 'silent.wav'), np.zeros((0, 1), np.float32), RATE)
    soundfile.write(str(folder / 'short.wav'), np.zeros((100, 1), np.float32), RATE)
    return written


def expected(path, *, mono=False, start=0, stop=None):
    """What kapre_fast.cpu computes for the file, decoded and resampled independently."""
    audio, rate = soundfile.read(str(path), dtype='float32', always_2d=True, start=start, stop=stop)
    if mono:
        audio = audio.mean(axis=1, keepdims=True)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE)
    return cpu.melspectrogram(audio[np.newaxis], sample_rate=RATE, **FRONT_END)[0]


def manifest_lines(output):
    with open(Path(output) / 'manifest.jsonl') as stream:
        return [json.loads(line) for line in stream]


def shard_members(output):
    """Every .npy member of every shard in the folder (ids, duplicates kept)."""
    ids = []
    for shard in sorted(Path(output).glob('shard-*.tar')):
        with tarfile.open(shard) as tar:
            ids += [member.name[: -len('.npy')] for member in tar.getmembers()]
    return ids


@pytest.fixture(scope='module')
def audio(tmp_path_factory, speech):
    folder = tmp_path_factory.mktemp('corpus')
    return folder, write_corpus(folder, speech)


@pytest.fixture(scope='module')
def local_run(audio, tmp_path_factory):
    """The reference run: local engine, two worker processes, two items per shard."""
    folder, _ = audio
    output = tmp_path_factory.mktemp('local') / 'features'
    summary = corpus.extract(folder, output, sample_rate=RATE, shard_size=2, workers=2, **FRONT_END)
    return output, summary


@pytest.fixture(scope='module')
def ray_session():
    ray = pytest.importorskip('ray')
    pytest.importorskip('ray.data')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


# ----- local engine --------------------------------------------------------------------------


def test_local_engine_writes_every_good_file_as_cpu_computes_it(audio, local_run):
    folder, good = audio
    output, summary = local_run
    assert summary.total == len(good) + len(BAD)
    assert summary.written == summary.records == len(good) and summary.already_done == 0
    assert sorted(id for id, _, _ in summary.failed) == sorted(BAD)
    for id, _, error in summary.failed:
        assert BAD[id] in error and id in error, (id, error)

    features = corpus.open(output)
    assert sorted(features) == sorted(good) and len(features) == len(good)
    assert sorted(features.failed) == sorted(BAD)
    for name, _, rate, channels, seconds in GOOD:
        id = name.rsplit('.', 1)[0]
        if id not in good:
            continue
        want = expected(folder / name)
        assert want.shape[2] == channels  # every channel kept
        np.testing.assert_array_equal(features[id], want)

    lines = manifest_lines(output)
    ok = [line for line in lines if line['status'] == 'ok']
    assert sorted(line['id'] for line in ok) == sorted(good)
    for line in ok:
        assert line['frames'] == features[line['id']].shape[0]
        assert line['source'].startswith(str(folder)) and line['error'] is None
    # Shards hold 2 items each, as plain tar members a training job can stream.
    assert sorted(shard_members(output)) == sorted(good)
    assert len(list(output.glob('shard-*.tar'))) == -(-len(good) // 2)
    assert not list(output.rglob('*.partial'))


def test_chunks_mono_and_formats(audio, local_run, tmp_path):
    folder, good = audio
    chunked = corpus.extract(
        folder / 'b.flac',
        tmp_path / 'chunks',
        sample_rate=RATE,
        mono=True,
        chunk_seconds=0.25,
        workers=1,
        **FRONT_END,
    )
    assert chunked.written == 1 and chunked.records == 4  # 0.8 s: 3 whole pieces + 1 padded
    audio_b, rate = soundfile.read(str(folder / 'b.flac'), dtype='float32', always_2d=True)
    mono = soxr.resample(audio_b.mean(axis=1, keepdims=True), rate, RATE)
    padded = np.zeros((4 * 4000, 1), np.float32)
    padded[: len(mono)] = mono
    features = corpus.open(tmp_path / 'chunks')
    assert sorted(features) == [f'b#{k}' for k in range(4)]
    for k in range(4):
        want = cpu.melspectrogram(
            padded[np.newaxis, 4000 * k : 4000 * (k + 1)], sample_rate=RATE, **FRONT_END
        )[0]
        np.testing.assert_array_equal(features[f'b#{k}'], want)

    # One .npy per file and one .npz hold the same arrays as the shards.
    reference = corpus.open(local_run[0])
    for format, output in [('npy', tmp_path / 'npy'), ('npz', tmp_path / 'all.npz')]:
        corpus.extract(folder, output, sample_rate=RATE, format=format, workers=1, **FRONT_END)
        written = corpus.open(output)
        assert sorted(written) == sorted(good) and sorted(written.failed) == sorted(BAD)
        for id in good:
            np.testing.assert_array_equal(written[id], reference[id])
    files = sorted(
        path.relative_to(tmp_path / 'npy').as_posix() for path in (tmp_path / 'npy').rglob('*.npy')
    )
    assert files == sorted(f'{id}.npy' for id in good)


# ----- Ray engine ----------------------------------------------------------------------------


def test_ray_engine_writes_the_same_bytes_as_local(audio, local_run, ray_session, tmp_path):
    folder, _ = audio
    local_output, local_summary = local_run
    output = tmp_path / 'ray'
    summary = corpus.extract(
        folder, output, engine='ray', sample_rate=RATE, shard_size=2, workers=2, **FRONT_END
    )
    assert ray_session.is_initialized()  # the caller's session is used and left running
    assert (summary.written, summary.failed) == (local_summary.written, local_summary.failed)
    shards = sorted(path.name for path in local_output.glob('shard-*.tar'))
    assert shards == sorted(path.name for path in output.glob('shard-*.tar'))
    for name in shards:
        assert (output / name).read_bytes() == (local_output / name).read_bytes(), name
    assert manifest_lines(output) == manifest_lines(local_output)


def test_ray_engine_chunks_like_local(audio, ray_session, tmp_path):
    folder, _ = audio
    runs = {}
    for engine in ('local', 'ray'):
        runs[engine] = corpus.extract(
            folder,
            tmp_path / engine,
            engine=engine,
            sample_rate=RATE,
            mono=True,
            chunk_seconds=0.3,
            shard_size=3,
            workers=2,
            **FRONT_END,
        )
    assert runs['ray'].records == runs['local'].records > runs['local'].written
    assert manifest_lines(tmp_path / 'ray') == manifest_lines(tmp_path / 'local')
    for shard in (tmp_path / 'local').glob('shard-*.tar'):
        assert shard.read_bytes() == (tmp_path / 'ray' / shard.name).read_bytes()


def test_ray_engine_without_ray_names_the_extra(audio, tmp_path):
    # A fresh interpreter where `import ray` fails, as without the extra.
    code = textwrap.dedent(f"""
        import sys
        sys.modules['ray'] = None
        from kapre_fast import corpus
        try:
            corpus.extract({str(audio[0])!r}, {str(tmp_path / 'out')!r}, engine='ray')
        except ImportError as error:
            print(error)
    """)
    result = _run_python(code)
    from kapre_fast._loader import pip_install_hint

    assert pip_install_hint('ray') in result.stdout, result.stderr
    assert not (tmp_path / 'out').exists()  # refused before writing anything


def _unused_port():
    import socket

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_ray_engine_refuses_an_address_where_nothing_listens(audio, tmp_path):
    pytest.importorskip('ray')
    address = f'127.0.0.1:{_unused_port()}'
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f'Ray cluster at {address}: cannot connect'):
        corpus.extract(audio[0], tmp_path / 'out', engine='ray', address=address)
    assert time.monotonic() - start < 15  # ray.init: minutes of retries, no message
    assert not (tmp_path / 'out').exists()
    with pytest.raises(ValueError, match="address must be .*got 'nowhere'"):
        corpus.extract(audio[0], tmp_path / 'out', engine='ray', address='nowhere')
    command = [
        sys.executable,
        '-m',
        'kapre_fast.cli',
        'features',
        str(audio[0] / 'a.wav'),
        '-o',
        str(tmp_path / 'cli'),
        '--engine',
        'ray',
        '--address',
        address,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_environment())
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr
    assert f'Ray cluster at {address}: cannot connect' in result.stderr


def test_ray_engine_runs_from_a_source_checkout(audio, tmp_path):
    """Ray puts the driver's working folder first on its workers' sys.path: from a checkout
    whose kapre_fast/ is not built they imported that instead of the driver's kapre_fast."""
    pytest.importorskip('ray')
    checkout = tmp_path / 'checkout'
    (checkout / 'kapre_fast').mkdir(parents=True)
    (checkout / 'kapre_fast' / '__init__.py').write_text(
        'raise ImportError("the uncompiled source tree was imported")\n'
    )
    (tmp_path / 'driver.py').write_text(
        textwrap.dedent(f"""
        from kapre_fast import corpus
        summary = corpus.extract({str(audio[0] / 'a.wav')!r}, {str(tmp_path / 'out')!r},
                                 engine='ray', workers=1, sample_rate=16000, n_fft=512,
                                 hop_length=160, n_mels=40, return_decibel=True)
        print(summary)
    """)
    )
    result = subprocess.run(
        [sys.executable, str(tmp_path / 'driver.py')],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=180,
        env=_environment(),
    )
    assert result.returncode == 0 and '1 of 1 files written' in result.stdout, result.stderr
    np.testing.assert_array_equal(corpus.open(tmp_path / 'out')['a'], expected(audio[0] / 'a.wav'))


# ----- resuming ------------------------------------------------------------------------------

# The child run: the local engine, one item per shard, each shard held open 0.3 s, so that a
# kill lands while one is being written.
_SLOW_CHILD = """
import sys, time
from kapre_fast import corpus
from kapre_fast.corpus import writers
add = writers.TarShards.add
def slow_add(self, records):
    places = add(self, records)
    self.stream.flush()
    time.sleep(0.3)
    return places
writers.TarShards.add = slow_add
corpus.extract(sys.argv[1], sys.argv[2], sample_rate=16000, shard_size=1, workers=1,
               n_fft=512, hop_length=160, n_mels=40, return_decibel=True)
"""


def test_resume_after_sigkill_writes_every_id_exactly_once(audio, local_run, tmp_path):
    folder, good = audio
    source = tmp_path / 'many'
    for copy in range(8):  # 8 copies of the corpus's files (good and bad), in sub-folders
        shutil.copytree(folder, source / f'part{copy}')
    output = tmp_path / 'out'
    child = subprocess.Popen(
        [sys.executable, '-c', _SLOW_CHILD, str(source), str(output)],
        env=_environment(),
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        # Kill once some shards are committed and another is being written.
        while time.monotonic() < deadline and child.poll() is None:
            committed = len(manifest_lines(output)) if (output / 'manifest.jsonl').exists() else 0
            if committed >= 4 and list(output.glob('*.partial')):
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read().decode()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()

    before = manifest_lines(output)
    done_before = {line['id'] for line in before if line['status'] == 'ok'}
    total_good = 8 * len(good)
    assert 0 < len(done_before) < total_good
    # Worst cases a kill can leave besides the partial shard: a shard renamed into place but
    # not yet in the manifest, and a half-appended manifest line.
    committed = sorted(output.glob('shard-*.tar'))
    shutil.copy(committed[0], output / 'shard-000999.tar')
    with open(output / 'manifest.jsonl', 'a') as stream:
        stream.write('{"id": "part0/a", "item": "par')

    summary = corpus.extract(source, output, sample_rate=RATE, shard_size=1, workers=2, **FRONT_END)
    assert summary.already_done == len(done_before)
    assert summary.written == total_good - len(done_before)
    assert not list(output.glob('*.partial')) and not (output / 'shard-000999.tar').exists()
    lines = manifest_lines(output)  # parses: the torn line is gone
    ok_ids = [line['id'] for line in lines if line['status'] == 'ok']
    members = shard_members(output)
    assert len(ok_ids) == len(set(ok_ids)) == total_good  # every id exactly once
    assert sorted(members) == sorted(ok_ids)  # and no member twice on disk
    features, reference = corpus.open(output), corpus.open(local_run[0])
    for id in ok_ids:
        np.testing.assert_array_equal(features[id], reference[id.split('/', 1)[1]])
    assert sorted(features.failed) == sorted(
        f'part{copy}/{bad}' for copy in range(8) for bad in BAD
    )


# The child run: the local engine with two workers; the worker that gets item argv[3] writes
# its pid to argv[4] and waits to be killed ('once': the retry computes it) or kills itself
# ('always': it dies again when retried alone).
_KILLED_CHILD = """
import os, signal, sys, time
from kapre_fast import corpus
from kapre_fast.corpus import engine_local
work = engine_local._work
def watched(item):
    if item.id == sys.argv[3]:
        if sys.argv[5] == 'always':
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            descriptor = os.open(sys.argv[4], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return work(item)  # the retry
        os.write(descriptor, str(os.getpid()).encode())
        os.close(descriptor)
        time.sleep(60)
    return work(item)
engine_local._work = watched
summary = corpus.extract(sys.argv[1], sys.argv[2], sample_rate=16000, shard_size=2, workers=2,
                         n_fft=512, hop_length=160, n_mels=40, return_decibel=True)
print(summary.written, summary.failed)
"""


@pytest.mark.parametrize('mode', ['once', 'always'])
def test_a_killed_worker_is_retried_or_its_item_failed_by_name(audio, local_run, tmp_path, mode):
    folder, good = audio
    output, marker = tmp_path / 'out', tmp_path / 'pid'
    child = subprocess.Popen(
        [sys.executable, '-c', _KILLED_CHILD, str(folder), str(output), 'b', str(marker), mode],
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if mode == 'once':  # SIGKILL the worker while it computes 'b', as the OOM killer does
            deadline = time.monotonic() + 60
            while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
                assert child.poll() is None, child.communicate()
                time.sleep(0.02)
            os.kill(int(marker.read_text()), signal.SIGKILL)
        stdout, stderr = child.communicate(timeout=60)  # multiprocessing.Pool: forever
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr
    features, reference = corpus.open(output), corpus.open(local_run[0])
    written = sorted(good) if mode == 'once' else sorted(set(good) - {'b'})
    assert sorted(features) == written
    for id in written:
        np.testing.assert_array_equal(features[id], reference[id])
    ok_ids = [line['id'] for line in manifest_lines(output) if line['status'] == 'ok']
    assert sorted(ok_ids) == sorted(shard_members(output)) == written  # each exactly once
    if mode == 'always':
        assert 'the worker process computing it died' in features.failed['b']
        assert str(folder / 'b.flac') in features.failed['b']
    else:
        assert 'b' not in features.failed


def test_a_manifest_append_cut_short_is_an_error_and_the_rerun_completes(
    audio, local_run, tmp_path, monkeypatch
):
    """Disk full at the manifest write, simulated in this process (no tmpfs to fill without
    root): os.write on the manifest writes part of a commit, then raises ENOSPC."""
    import errno

    folder, good = audio
    output = tmp_path / 'out'
    real_write, calls = os.write, []

    def write(descriptor, data):
        if not os.readlink(f'/proc/self/fd/{descriptor}').endswith('manifest.jsonl'):
            return real_write(descriptor, data)
        calls.append(len(data))
        if len(calls) in (2, 4):  # a short write, continued by the writer
            return real_write(descriptor, bytes(data[: len(data) // 2]))
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(descriptor, data)

    monkeypatch.setattr(os, 'write', write)
    with pytest.raises(OSError, match=r'manifest.jsonl: appending \d+ bytes failed \(No space'):
        corpus.extract(folder, output, sample_rate=RATE, shard_size=1, workers=1, **FRONT_END)
    monkeypatch.setattr(os, 'write', real_write)
    lines = manifest_lines(output)  # every line whole: the cut commit was taken back
    assert len(lines) == 2  # commit 1 (call 1), commit 2 (calls 2-3); commit 3 was cut back
    listed = corpus.open(output)
    assert sorted(listed) == sorted(line['id'] for line in lines if line['status'] == 'ok')

    summary = corpus.extract(folder, output, sample_rate=RATE, shard_size=1, workers=1, **FRONT_END)
    assert (summary.already_done, summary.written) == (2, len(good) - 2)
    ok_ids = [line['id'] for line in manifest_lines(output) if line['status'] == 'ok']
    assert sorted(ok_ids) == sorted(shard_members(output)) == sorted(good)  # exactly once
    features, reference = corpus.open(output), corpus.open(local_run[0])
    for id in good:
        np.testing.assert_array_equal(features[id], reference[id])


# A run into one .npz, each record's write held 0.1 s; prints when it started and ended.
_NPZ_CHILD = """
import sys, time
from kapre_fast import corpus
from kapre_fast.corpus import writers
add = writers.NpzArchive.add
def slow_add(self, records):
    time.sleep(0.1)
    return add(self, records)
writers.NpzArchive.add = slow_add
start = time.time()
corpus.extract(sys.argv[1], sys.argv[2], format='npz', sample_rate=16000, workers=1,
               n_fft=512, hop_length=160, n_mels=40, return_decibel=True)
print(start, time.time())
"""


def test_two_runs_writing_one_npz_at_once_leave_a_whole_one(audio, local_run, tmp_path):
    folder, good = audio
    output = tmp_path / 'all.npz'
    children = [
        subprocess.Popen(
            [sys.executable, '-c', _NPZ_CHILD, str(folder), str(output)],
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    spans = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        spans.append([float(value) for value in stdout.split()])
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # they overlapped
    features, reference = corpus.open(output), corpus.open(local_run[0])
    assert sorted(features) == sorted(good)
    for id in good:
        np.testing.assert_array_equal(features[id], reference[id])
    with np.load(output) as archive:  # every member readable (was: 14 of 30 unreadable)
        assert sorted(archive.files) == sorted(good)
        for id in good:
            np.testing.assert_array_equal(archive[id], reference[id])
    assert sorted(path.name for path in tmp_path.iterdir()) == ['all.manifest.jsonl', 'all.npz']


@pytest.mark.parametrize('format', ['npy', 'shards'])
def test_a_name_too_long_for_the_file_system_fails_its_item_only(audio, tmp_path, format):
    folder, _ = audio
    long_id = 'x' * 250  # 250 + len('.npy.partial') > 255, the longest file name
    rows = [
        {'path': str(folder / 'a.wav'), 'id': 'first'},
        {'path': str(folder / 'a.wav'), 'id': long_id},
        {'path': str(folder / 'a.wav'), 'id': 'last'},
    ]
    (tmp_path / 'list.jsonl').write_text(''.join(json.dumps(row) + '\n' for row in rows))
    output = tmp_path / 'out'
    summary = corpus.extract(
        tmp_path / 'list.jsonl', output, format=format, sample_rate=RATE, workers=1, **FRONT_END
    )
    features = corpus.open(output)
    want = expected(folder / 'a.wav')
    if format == 'shards':  # a tar member name has no length limit (PAX headers)
        assert summary.ok and sorted(features) == sorted(['first', 'last', long_id])
        np.testing.assert_array_equal(features[long_id], want)
    else:
        assert [(id, error.split(': ', 1)[0]) for id, _, error in summary.failed] == [
            (long_id, str(folder / 'a.wav'))
        ]
        assert 'File name too long' in summary.failed[0][2]
        assert sorted(features) == ['first', 'last'] and long_id in features.failed
        assert not list(output.rglob('*.partial'))
    for id in ('first', 'last'):
        np.testing.assert_array_equal(features[id], want)


def _assert_same_as_clean_run(output, reference, good):
    """Every id exactly once in the manifest and on disk, each array as the clean run's."""
    ok_ids = [line['id'] for line in manifest_lines(output) if line['status'] == 'ok']
    latest = {line['id']: line for line in manifest_lines(output)}
    live = sorted(id for id, line in latest.items() if line['status'] == 'ok')
    assert live == sorted(good) and sorted(shard_members(output)) == sorted(good)
    assert len(ok_ids) >= len(good)
    features = corpus.open(output)
    features.verify()
    for id in good:
        np.testing.assert_array_equal(features[id], reference[id])


def test_swapped_and_deleted_shards_are_reported_and_redone(audio, local_run, tmp_path):
    folder, good = audio
    reference = corpus.open(local_run[0])
    output = tmp_path / 'out'
    shutil.copytree(local_run[0], output)
    lines = manifest_lines(output)
    in_shard = {
        name: sorted(line['id'] for line in lines if line.get('shard') == name)
        for name in ('shard-000000.tar', 'shard-000001.tar')
    }

    # Swapped: each id would read another recording's array by its offset.
    first, second = output / 'shard-000000.tar', output / 'shard-000001.tar'
    first.rename(tmp_path / 'swap')
    second.rename(first)
    (tmp_path / 'swap').rename(second)
    features = corpus.open(output)
    id = in_shard['shard-000000.tar'][0]
    with pytest.raises(
        corpus.DamagedOutputError,
        match=rf"shard-000000.tar: holds '.*' .* not '{id}.npy' .*record '{id}'",
    ):
        features[id]
    with pytest.raises(corpus.DamagedOutputError, match='shard-00000[01].tar'):
        features.verify()
    summary = corpus.extract(folder, output, sample_rate=RATE, shard_size=2, workers=2, **FRONT_END)
    swapped = in_shard['shard-000000.tar'] + in_shard['shard-000001.tar']
    assert (summary.written, summary.redone) == (len(swapped), len(swapped))
    assert summary.already_done == len(good) - len(swapped)  # failed items are retried
    assert f'{len(swapped)} redone' in str(summary)
    _assert_same_as_clean_run(output, reference, good)

    # Deleted: corpus.open names it; the rerun notices it (was: "N of N written").
    shard = next(output.glob('shard-*.tar'))
    ids = sorted(line['id'] for line in manifest_lines(output) if line.get('shard') == shard.name)
    shard.unlink()
    with pytest.raises(
        corpus.DamagedOutputError, match=rf'{shard.name}: no such file; the manifest lists record'
    ):
        corpus.open(output)
    summary = corpus.extract(folder, output, sample_rate=RATE, shard_size=2, workers=2, **FRONT_END)
    assert summary.written == summary.redone == len(ids) > 0
    _assert_same_as_clean_run(output, reference, good)

    # An altered byte inside an array: the checksum names it.
    line = next(line for line in manifest_lines(output)[::-1] if line['status'] == 'ok')
    shard = output / line['shard']
    data = bytearray(shard.read_bytes())
    data[line['offset'] + line['bytes'] - 1] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(
        corpus.DamagedOutputError, match=rf"SHA-256 mismatch.*record '{line['id']}'"
    ):
        corpus.open(output)[line['id']]


def test_damaged_npz_and_npy_outputs_are_named(audio, tmp_path):
    folder, _ = audio
    for format, output in [('npz', tmp_path / 'all.npz'), ('npy', tmp_path / 'npy')]:
        corpus.extract(
            [folder / 'a.wav', folder / 'b.flac'],
            output,
            format=format,
            sample_rate=RATE,
            workers=1,
            **FRONT_END,
        )
        features = corpus.open(output)
        a, b = features['a'], features['b']
        if format == 'npz':  # the same keys, the arrays swapped: np.load would read them
            np.savez(output, a=b, b=a)
            damaged = output
        else:
            (output / 'a.npy').unlink()
            damaged = output / 'a.npy'
        with pytest.raises(
            corpus.DamagedOutputError, match=rf"{damaged}: .*the manifest lists record 'a'"
        ):
            corpus.open(output)['a']


@pytest.mark.parametrize(
    'line, message',
    [
        ('{}', r'line 2: "id" must be a str, got None'),
        ('', r'line 2: not a JSON line'),
        ('garbage', r'line 2: not a JSON line'),
        ('[1, 2]', r'line 2: not a record'),
        (
            '{"id": "x", "item": "x", "status": "ok", "shard": 5, "frames": 1}',
            r'line 2: "shard" must be a str, got 5',
        ),
    ],
)
def test_a_manifest_line_that_is_not_a_record_is_named(audio, local_run, tmp_path, line, message):
    output = tmp_path / 'out'
    shutil.copytree(local_run[0], output)
    text = (output / 'manifest.jsonl').read_text().splitlines(keepends=True)
    (output / 'manifest.jsonl').write_text(text[0] + line + '\n' + ''.join(text[1:]))
    for attempt in (
        lambda: corpus.open(output),
        lambda: corpus.extract(audio[0], output, workers=1, **FRONT_END),
    ):
        with pytest.raises(
            corpus.DamagedOutputError, match=rf'{output / "manifest.jsonl"}, {message}'
        ):
            attempt()


def test_hostile_inputs_fail_by_name_or_are_refused(audio, tmp_path, speech):
    folder, _ = audio
    bad = tmp_path / 'bad'
    bad.mkdir()
    soundfile.write(
        str(bad / 'nan.wav'), np.full((4000, 1), np.nan, np.float32), RATE, subtype='FLOAT'
    )
    soundfile.write(str(bad / 'one-hertz.wav'), speech[:16000, None], 1)  # header: 1 Hz
    latin = bad / os.fsdecode(b'caf\xe9.wav')  # a name that is not UTF-8
    shutil.copy(folder / 'a.wav', latin)
    summary = corpus.extract(bad, tmp_path / 'out', sample_rate=RATE, workers=1, **FRONT_END)
    failed = {id: error for id, _, error in summary.failed}
    assert sorted(failed) == ['nan', 'one-hertz']
    assert 'nan.wav: 4000 of 4000 samples are NaN or infinite' in failed['nan']
    assert (
        "one-hertz.wav: a sample rate of 1 Hz (the file's header) cannot be resampled to "
        '16000 Hz' in failed['one-hertz']
    )
    features = corpus.open(tmp_path / 'out')
    np.testing.assert_array_equal(features[latin.stem], expected(folder / 'a.wav'))

    with pytest.raises(corpus.InputError, match='an input is an empty path'):
        corpus.extract('', tmp_path / 'none')  # was: the current folder, walked
    rows = {
        'nul': {'path': 'a.wav', 'id': 'a\x00b'},
        'inf': {'path': 'a.wav', 'offset': 'inf'},
        'huge': {'path': 'a.wav', 'duration': 1e400},
    }
    messages = {
        'nul': r"id 'a\\x00b' holds a control character",
        'inf': r"row 1: offset must be a finite number >= 0 of seconds, got 'inf'",
        'huge': r'row 1: duration must be a finite number > 0 of seconds, got inf',
    }
    for name, row in rows.items():
        (tmp_path / f'{name}.jsonl').write_text(json.dumps(row) + '\n')
        with pytest.raises(corpus.InputError, match=messages[name]):
            corpus.extract(tmp_path / f'{name}.jsonl', tmp_path / 'none')
    (tmp_path / 'garbage.jsonl').write_text('{"path": "a.wav"}\n\nnot json\n')
    with pytest.raises(corpus.InputError, match=r'garbage.jsonl, line 3: not a JSON line'):
        corpus.collect(tmp_path / 'garbage.jsonl')
    assert not (tmp_path / 'none').exists()


def test_rerun_rules(audio, tmp_path):
    folder, good = audio
    output = tmp_path / 'out'
    first = corpus.extract(folder / 'a.wav', output, sample_rate=RATE, workers=1, **FRONT_END)
    again = corpus.extract(folder / 'a.wav', output, sample_rate=RATE, workers=1, **FRONT_END)
    assert (first.written, again.written, again.already_done) == (1, 0, 1)
    with pytest.raises(ValueError, match=r'other settings \(front_end differ\)'):
        corpus.extract(folder, output, sample_rate=RATE, workers=1, **dict(FRONT_END, n_mels=64))
    with pytest.raises(FileExistsError, match='already holds a run'):
        corpus.extract(folder, output, sample_rate=RATE, resume=False, **FRONT_END)
    assert len(manifest_lines(output)) == 1


# ----- inputs --------------------------------------------------------------------------------


def test_manifest_inputs_csv_and_jsonl(audio, tmp_path):
    folder, _ = audio
    rows = [
        {'path': str(folder / 'a.wav'), 'offset': 0.25, 'duration': 0.5, 'id': 'a-middle'},
        {
            'path': os.path.relpath(folder / 'b.flac', tmp_path),
            'offset': '',
            'duration': '',
            'id': '',
        },
        {'path': str(folder / 'missing.wav'), 'offset': '', 'duration': '', 'id': 'gone'},
    ]
    (tmp_path / 'list.csv').write_text(
        'path,offset,duration,id\n'
        + ''.join(f'{r["path"]},{r["offset"]},{r["duration"]},{r["id"]}\n' for r in rows)
    )
    (tmp_path / 'list.jsonl').write_text(
        ''.join(
            json.dumps({key: value for key, value in r.items() if value != ''}) + '\n' for r in rows
        )
    )
    for name in ('list.csv', 'list.jsonl'):
        summary = corpus.extract(
            tmp_path / name, tmp_path / f'out-{name}', sample_rate=RATE, workers=1, **FRONT_END
        )
        features = corpus.open(tmp_path / f'out-{name}')
        relative_id = 'b'  # a path outside the manifest's folder: the file's own name
        assert sorted(features) == sorted(['a-middle', relative_id]), name
        assert list(features.failed) == ['gone'] and 'no such file' in features.failed['gone']
        assert summary.failed[0][0] == 'gone'
        np.testing.assert_array_equal(
            features['a-middle'], expected(folder / 'a.wav', start=4000, stop=12000)
        )
        np.testing.assert_array_equal(features[relative_id], expected(folder / 'b.flac'))

    (tmp_path / 'bad.csv').write_text('file,offset\nx.wav,1\n')
    with pytest.raises(corpus.InputError, match=r'bad.csv, row 1: needs a "path"'):
        corpus.collect(tmp_path / 'bad.csv')
    (tmp_path / 'twice.jsonl').write_text('{"path": "a.wav", "id": "x"}\n' * 2)
    with pytest.raises(corpus.InputError, match='ids must be unique; repeated: x'):
        corpus.collect(tmp_path / 'twice.jsonl')
    (tmp_path / 'escape.jsonl').write_text('{"path": "a.wav", "id": "../../etc/x"}\n')
    with pytest.raises(corpus.InputError, match=r"id '../../etc/x' must be a relative path"):
        corpus.collect(tmp_path / 'escape.jsonl')


def test_globs_folders_and_ids(tmp_path):
    for name in ('x/a.wav', 'x/a.flac', 'x/y/b.wav', 'x/.hidden/c.wav', 'x/notes.txt'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'')
    ids = [item.id for item in corpus.collect(tmp_path / 'x')]
    assert ids == ['a.flac', 'a.wav', 'y/b']  # clashing stems keep their suffix
    ids = [item.id for item in corpus.collect(str(tmp_path / 'x' / '**' / '*.wav'))]
    assert ids == ['a', 'y/b']  # relative to the folder before the first wildcard
    with pytest.raises(corpus.InputError, match='nothing.wav: no such file or folder'):
        corpus.collect(tmp_path / 'nothing.wav')
    with pytest.raises(ValueError, match="engine must be one of local, ray, got 'spark'"):
        corpus.extract(tmp_path / 'x', tmp_path / 'out', engine='spark')
    with pytest.raises(ValueError, match='shard_size must be a whole number >= 1, got 0'):
        corpus.extract(tmp_path / 'x', tmp_path / 'out', shard_size=0)
    assert not (tmp_path / 'out').exists()


# ----- reading back ----------------------------------------------------------------------------


def test_open_streams_to_torch_and_tf(local_run):
    output, _ = local_run
    features = corpus.open(output)
    streamed = dict(features.stream())
    assert list(streamed) == list(features)
    for id, array in streamed.items():
        np.testing.assert_array_equal(array, features[id])
    with pytest.raises(KeyError):
        features['no such id']
    with pytest.raises(FileNotFoundError, match='no manifest.jsonl'):
        corpus.open(output.parent / 'nowhere')

    torch = pytest.importorskip('torch')
    loader = torch.utils.data.DataLoader(features.to_torch(), batch_size=None, num_workers=2)
    pairs = {id: tensor.numpy() for id, tensor in loader}
    assert sorted(pairs) == sorted(features)  # two workers, each shard read once
    for id, array in pairs.items():
        np.testing.assert_array_equal(array, features[id])

    tf = pytest.importorskip('tensorflow')
    dataset = features.to_tf_dataset()
    seen = {id.numpy().decode(): array.numpy() for id, array in dataset}
    assert sorted(seen) == sorted(features)
    np.testing.assert_array_equal(next(iter(seen.values())), features[next(iter(seen))])
    assert dataset.element_spec[1].dtype == tf.float32


def test_importing_corpus_imports_no_framework(local_run):
    code = textwrap.dedent(f"""
        import sys
        import kapre_fast
        from kapre_fast import corpus
        features = corpus.open({str(local_run[0])!r})
        features[next(iter(features))]
        print(sorted(m for m in ('ray', 'torch', 'tensorflow') if m in sys.modules))
        sys.modules['torch'] = None
        try:
            features.to_torch()
        except ImportError as error:
            print(error)
    """)
    result = _run_python(code)
    lines = result.stdout.splitlines()
    assert lines[:1] == ['[]'], result.stderr
    assert lines[1].startswith('to_torch needs PyTorch'), result.stdout


# ----- the command ---------------------------------------------------------------------------


def test_command_writes_shards_and_reports_failures(audio, local_run, tmp_path):
    folder, good = audio
    output = tmp_path / 'cli'
    options = ['--n-fft', '512', '--hop-length', '160', '--n-mels', '40']
    command = [
        sys.executable,
        '-m',
        'kapre_fast.cli',
        'features',
        str(folder),
        '-o',
        str(output),
        '--format',
        'shards',
        '--shard-size',
        '2',
        '--sample-rate',
        str(RATE),
        *options,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=180, env=_environment()
    )
    assert result.returncode == 1, result.stderr
    assert f'{len(good)} of {len(good) + len(BAD)} files written' in result.stdout
    assert f'{len(BAD)} failed' in result.stdout and 'Traceback' not in result.stderr
    for name in ('broken.wav', 'empty.flac', 'notes.mp3', 'silent.wav', 'short.wav'):
        assert name in result.stderr
    for name in sorted(path.name for path in local_run[0].glob('shard-*.tar')):
        assert (output / name).read_bytes() == (local_run[0] / name).read_bytes()

    rerun = subprocess.run(
        command + ['--no-resume'], capture_output=True, text=True, timeout=180, env=_environment()
    )
    assert rerun.returncode == 2 and 'already holds a run' in rerun.stderr


def _run_python(code):
    """`code` run by a fresh Python that imports this checkout's kapre_fast (2 minutes at most):
    the CompletedProcess, its output as text."""
    return subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(),
    )


def _environment():
    """The subprocess imports this checkout's kapre_fast (as the tests do)."""
    import kapre_fast

    paths = [str(Path(kapre_fast.__file__).parents[1]), os.environ.get('PYTHONPATH', '')]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


def test_pool_forks_only_while_no_threaded_framework_is_loaded(monkeypatch):
    """A forked child of a process running JAX/TF/torch threads may deadlock: forkserver then."""
    import types

    from kapre_fast.corpus import engine_local

    for name in engine_local._THREADED:
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert engine_local._pool_context().get_start_method() == 'fork'
    monkeypatch.setitem(sys.modules, 'jax', types.ModuleType('jax'))
    assert engine_local._pool_context().get_start_method() == 'forkserver'
