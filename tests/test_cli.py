"""The `kapre-fast` command, run the way a user runs it: in a subprocess.

The command is the installed console script (the one beside this Python, else the first on PATH),
or `python -m kapre_fast.cli` when none is installed (a development checkout on PYTHONPATH, which
the subprocess inherits). Audio files are written at test time from the speech recording (or its
synthesised stand-in, conftest.py) into tmp_path; nothing binary is kept in the repository.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

soundfile = pytest.importorskip('soundfile')
matplotlib_image = pytest.importorskip('matplotlib.image')

from helpers import SPEECH_RATE  # noqa: E402  (`speech` is conftest's: real or synthesised)
from kapre_fast import cpu  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
CHANNELS_LAST = dict(input_data_format='channels_last', output_data_format='channels_last')


def kapre_fast_command() -> list:
    beside = Path(sys.executable).with_name('kapre-fast')
    if beside.exists():
        return [str(beside)]
    found = shutil.which('kapre-fast')
    if found:
        return [found]
    return [sys.executable, '-m', 'kapre_fast.cli']


COMMAND = kapre_fast_command()


def run(*args, cwd=None, timeout=180, env=None):
    """Runs the command; no run may end in a Python traceback, whatever its exit status."""
    result = subprocess.run(
        COMMAND + [str(arg) for arg in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )
    assert 'Traceback' not in result.stderr, result.stderr
    return result


def write_audio(path, samples, sample_rate, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, sample_rate, **kwargs)
    return path


def write_corrupt(path):
    """A file named like audio that is not: a RIFF/WAVE start followed by noise bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'RIFF\x10\x00\x00\x00WAVE' + np.random.default_rng(0).bytes(3000))
    return path


def read_back(path):
    """The audio exactly as the command reads it: float32 (time, channels), rate."""
    return soundfile.read(str(path), dtype='float32', always_2d=True)


def assert_picture(path, min_height=300):
    """A valid PNG of plausible size whose pixels are not all alike; returns its pixels."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib_image.imread(str(path))
    height, width = pixels.shape[:2]
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert min_height <= height <= 3000 and 600 <= width <= 3000, pixels.shape
    colours = np.unique(pixels[..., :3].reshape(-1, 3), axis=0)
    assert pixels[..., :3].std() > 0.05 and len(colours) > 200, (pixels.std(), len(colours))
    return pixels


# ----- --help ---------------------------------------------------------------------------------


@pytest.mark.parametrize('command', [None, 'spec', 'features', 'bench', 'demo'])
def test_help(command):
    args = [command, '--help'] if command else ['--help']
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f'usage: kapre-fast {command or ""}'.rstrip())
    if command is None:
        for name in ('spec', 'features', 'bench', 'demo'):
            assert name in result.stdout


def test_version():
    result = run('--version')
    assert result.returncode == 0 and result.stdout.startswith('kapre-fast ')


# ----- spec -----------------------------------------------------------------------------------


@pytest.mark.parametrize('kind, channels', [('mel', 1), ('log', 2), ('stft', 1)])
def test_spec_writes_a_picture(tmp_path, speech, kind, channels):
    samples = speech[: 3 * SPEECH_RATE]
    if channels == 2:
        samples = np.stack([samples, 0.5 * np.roll(samples, 5000)], axis=1)
    audio = write_audio(
        tmp_path / ('speech.wav' if channels == 1 else 'speech.flac'), samples, SPEECH_RATE
    )
    picture = tmp_path / 'pictures' / 'speech.png'
    picture.parent.mkdir()
    result = run('spec', audio, '-o', picture, '--kind', kind, '--n-fft', 1024)
    assert result.returncode == 0, result.stderr
    assert str(picture) in result.stdout
    pixels = assert_picture(picture)
    # One panel per channel: a stereo picture is about twice as tall.
    assert pixels.shape[0] > (500 if channels == 2 else 300)


def test_spec_default_output_name(tmp_path, speech):
    audio = write_audio(tmp_path / 'in' / 'talk.wav', speech[:SPEECH_RATE], SPEECH_RATE)
    result = run('spec', audio, '--mono', '--n-mels', 64, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_picture(tmp_path / 'talk.png')


# ----- features -------------------------------------------------------------------------------

MEL_OPTIONS = dict(n_fft=512, hop_length=128, n_mels=40)


@pytest.fixture
def audio_folder(tmp_path, speech):
    """Three good files (different lengths, rates, formats; one stereo) and a corrupt one."""
    folder = tmp_path / 'audio'
    write_audio(folder / 'a.wav', speech[:30000], SPEECH_RATE)
    stereo = np.stack([speech[40000:56000], 0.5 * speech[50000:66000]], axis=1)
    write_audio(folder / 'sub' / 'b.flac', stereo, 16000)
    write_audio(folder / 'c.ogg', speech[70000:90000], SPEECH_RATE)
    write_corrupt(folder / 'broken.wav')
    (folder / 'notes.txt').write_text('not audio: ignored when walking the folder')
    return folder


def test_features_folder_reports_the_bad_file_and_writes_the_rest(tmp_path, audio_folder):
    out = tmp_path / 'features'
    options = [f'--{name.replace("_", "-")}={value}' for name, value in MEL_OPTIONS.items()]
    result = run('features', audio_folder, '-o', out, '--threads', 1, *options)
    assert result.returncode == 1, result.stderr
    assert 'broken.wav' in result.stderr and 'cannot read audio' in result.stderr
    assert '3 of 4 files written' in result.stdout
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob('*.npy'))
    assert written == ['a.npy', 'c.npy', 'sub/b.npy']
    for name, stem in [('a.wav', 'a'), ('sub/b.flac', 'sub/b'), ('c.ogg', 'c')]:
        audio, sample_rate = read_back(audio_folder / name)
        expected = cpu.melspectrogram(
            audio[np.newaxis],
            threads=1,
            sample_rate=sample_rate,
            return_decibel=True,
            **MEL_OPTIONS,
            **CHANNELS_LAST,
        )[0]
        features = np.load(out / f'{stem}.npy')
        assert features.dtype == np.float32
        assert features.shape == expected.shape and features.shape[1:] == (40, audio.shape[1])
        np.testing.assert_array_equal(features, expected)


def test_features_npz_and_sample_rate(tmp_path, speech):
    a = write_audio(tmp_path / 'a.wav', speech[:20000], SPEECH_RATE)
    b = write_audio(tmp_path / 'more' / 'b.wav', speech[20000:36000], 16000)
    npz = tmp_path / 'stft.npz'
    # --sample-rate resamples the file at another rate (soxr at its default quality).
    soxr = pytest.importorskip('soxr')
    result = run(
        'features',
        a,
        b,
        '-o',
        npz,
        '--sample-rate',
        SPEECH_RATE,
        '--kind',
        'stft',
        '--n-fft',
        256,
        '--no-db',
        '--quiet',
    )
    assert result.returncode == 0, result.stderr
    with np.load(npz) as saved:
        assert sorted(saved.files) == ['a', 'b']
        for key, path in [('a', a), ('b', b)]:
            audio, sample_rate = read_back(path)
            if sample_rate != SPEECH_RATE:
                audio = soxr.resample(audio, sample_rate, SPEECH_RATE)
            expected = cpu.stft_magnitude(audio[np.newaxis], n_fft=256, **CHANNELS_LAST)[0]
            assert saved[key].shape == expected.shape
            np.testing.assert_allclose(saved[key], expected, rtol=1e-6, atol=1e-6)

    # Without it, each file is computed at its own rate.
    npz = tmp_path / 'log.npz'
    result = run('features', a, b, '-o', npz, '--kind', 'log', '--n-fft', 1024)
    assert result.returncode == 0, result.stderr
    assert '2 of 2 files written' in result.stdout
    with np.load(npz) as saved:
        assert sorted(saved.files) == ['a', 'b']
        for key, path in [('a', a), ('b', b)]:
            audio, sample_rate = read_back(path)
            expected = cpu.log_frequency_spectrogram(
                audio[np.newaxis],
                n_fft=1024,
                sample_rate=sample_rate,
                return_decibel=True,
                **CHANNELS_LAST,
            )[0]
            np.testing.assert_allclose(saved[key], expected, rtol=1e-6, atol=1e-4)


@pytest.mark.gpu
def test_features_on_gpu_match_cpu(tmp_path, speech):
    try:
        import cupy  # noqa: F401
        import kapre_fast.gpu  # noqa: F401
    except Exception as error:  # ImportError, or no usable CUDA device
        pytest.skip(f'kapre_fast.gpu is not usable here: {error}')
    a = write_audio(tmp_path / 'a.wav', speech[:30000], SPEECH_RATE)
    result = run('features', a, '-o', tmp_path / 'out', '--device', 'gpu')
    assert result.returncode == 0, result.stderr
    audio, sample_rate = read_back(a)
    expected = cpu.melspectrogram(
        audio[np.newaxis], sample_rate=sample_rate, return_decibel=True, **CHANNELS_LAST
    )[0]
    np.testing.assert_allclose(np.load(tmp_path / 'out' / 'a.npy'), expected, atol=1e-2)


# ----- bench and demo (these import TensorFlow: kept small) ----------------------------------


def test_bench_prints_a_table(tmp_path):
    result = run(
        'bench',
        '--seconds',
        0.3,
        '--batch',
        2,
        '--repeats',
        1,
        '--n-fft',
        512,
        '--hop-length',
        128,
        '--n-mels',
        32,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith('method') and 'x realtime' in line for line in lines)
    ours = next(line for line in lines if line.startswith('kapre_fast.cpu'))
    assert float(ours.split()[1]) > 0  # ms
    if importlib.util.find_spec('kapre') is not None:
        assert any(
            line.startswith('kapre (tf.function)') and '(reference)' in line for line in lines
        )
        assert float(ours.split()[-1]) < 0.05  # dB from kapre
    # Every row under the header is aligned: ms and x realtime are numbers in their columns. A
    # method that did not run (kapre_fast.gpu without a GPU) is a note below the table.
    header = next(i for i, line in enumerate(lines) if line.startswith('method'))
    end = lines.index('', header) if '' in lines[header:] else len(lines)
    table = lines[header + 2 : end]
    ms_end = len('method') + lines[header][len('method') :].index('ms') + 2
    for row in table:
        assert float(row[26:ms_end]) > 0, row
    gpu_rows = [row for row in table if row.startswith('kapre_fast.gpu')]
    notes = [line for line in lines[end:] if line.startswith('not timed: ')]
    assert bool(gpu_rows) != any(n.startswith('not timed: kapre_fast.gpu: ') for n in notes)


def test_bench_full_runs_the_suite_of_the_checkout(tmp_path):
    if not (REPO / 'bench' / 'run.py').exists():
        pytest.skip('no bench/run.py in this checkout')
    result = run('bench', '--full', '--', '--help', cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert 'usage' in result.stdout
    # Outside the checkout, an installed package has no suite: it must say so.
    result = run('bench', '--full', '--', '--help', cwd=tmp_path)
    if result.returncode != 0:
        assert 'source checkout' in result.stderr
    else:
        assert 'usage' in result.stdout


def test_demo_writes_its_picture_and_the_difference(tmp_path):
    # No -o: the default picture of `make demo`, in the current folder.
    result = run('demo', '--seconds', 1.5, '--sample-rate', 16000, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'kapre_fast.cpu' in result.stdout and 'max |diff|' in result.stdout
    if importlib.util.find_spec('kapre') is not None:
        kapre_line = next(line for line in result.stdout.splitlines() if 'kapre 0.4.1' in line)
        assert float(kapre_line.split()[-2]) < 0.05  # dB
    assert_picture(tmp_path / 'kapre_fast_demo.png')


# ----- errors: a message that says what to fix, a non-zero status, no traceback ---------------


@pytest.fixture
def files(tmp_path, speech):
    write_audio(tmp_path / 'speech.wav', speech[:20000], SPEECH_RATE)
    write_corrupt(tmp_path / 'broken.wav')
    (tmp_path / 'empty').mkdir()
    write_audio(tmp_path / 'nan.wav', np.full(4000, np.nan, np.float32), 16000, subtype='FLOAT')
    (tmp_path / 'inf.jsonl').write_text('{"path": "speech.wav", "offset": Infinity}\n')
    return tmp_path


@pytest.mark.parametrize(
    'args, status, message',
    [
        (['spec', 'missing.wav'], 2, 'missing.wav: no such file'),
        (['spec', 'broken.wav'], 1, 'broken.wav: cannot read audio'),
        (['spec', 'speech.wav', '-o', 'picture.xyz'], 2, 'use one of the suffixes'),
        (['spec', 'speech.wav', '--kind', 'cqt'], 2, "invalid choice: 'cqt'"),
        (['features', 'speech.wav', '-o', 'out', '--n-fft', '0'], 2, 'n_fft must be >= 2, got 0'),
        (['features', 'speech.wav', '-o', 'out', '--hop-length', '-1'], 2, '--hop-length'),
        (['features', 'speech.wav', '-o', 'out', '--n-fft', 'big'], 2, "invalid int value: 'big'"),
        (
            ['features', 'speech.wav', '-o', 'out', '--kind', 'stft', '--n-mels', '40'],
            2,
            '--n-mels only applies to --kind mel',
        ),
        (['features', 'speech.wav', '-o', 'out', '--threads', '0'], 2, 'threads must be'),
        (['features', 'speech.wav', '-o', 'out', '--window', 'boxcar'], 2, 'unknown window'),
        (['features', 'empty', '-o', 'out'], 2, 'no audio files in empty'),
        (['features', 'speech.wav'], 2, 'the following arguments are required: -o'),
        (
            ['features', 'speech.wav', '-o', 'out', '--n-fft', '65536'],
            1,
            'one frame needs win_length=65536',
        ),
        # NaN audio was drawn as "nan to nan dB", exit 0; --db-amin 1e-50 (0 in float32) passed
        # the checks, then every file failed in the kernel; an inf offset was an OverflowError.
        (['spec', 'nan.wav'], 1, 'nan.wav: 4000 of 4000 samples are NaN or infinite'),
        (
            ['features', 'speech.wav', '-o', 'out', '--db-amin', '1e-50'],
            2,
            'db_amin must be a number float32 holds',
        ),
        (
            ['features', 'inf.jsonl', '-o', 'out'],
            2,
            'inf.jsonl, row 1: offset must be a finite number >= 0 of seconds, got inf',
        ),
        (['features', '', '-o', 'out'], 2, 'an input is an empty path'),
        (['bench', '--seconds', '0.001'], 2, '--seconds 0.001 is too short'),
        (['bench', 'extra'], 2, 'need --full'),
        ([], 2, 'required: COMMAND'),
    ],
)
def test_errors(files, args, status, message):
    result = run(*args, cwd=files)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert message in result.stderr
    # No features are left behind (a features run that started keeps its manifest and settings).
    left = {path.name for path in (files / 'out').rglob('*')} if (files / 'out').exists() else set()
    assert left <= {'manifest.jsonl', 'settings.json'}, left


def test_gpu_device_without_kapre_fast_gpu(files):
    try:
        import kapre_fast.gpu  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip('kapre_fast.gpu is importable here (see test_features_on_gpu_match_cpu)')
    result = run('features', 'speech.wav', '-o', 'out', '--device', 'gpu', cwd=files)
    assert result.returncode == 1
    assert 'kapre_fast.gpu is not available' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # kapre_fast.gpu's own message says what to install; the command does not add it again.
    assert result.stderr.count('pip install') <= 1, result.stderr


def hide_module(folder, name):
    """A folder for PYTHONPATH in which importing `name` fails as if it were not installed."""
    (folder / name).mkdir(parents=True)
    (folder / name / '__init__.py').write_text(
        f'raise ModuleNotFoundError("No module named {name!r} (hidden by the test)")\n'
    )
    return folder


@pytest.mark.parametrize('module', ['matplotlib', 'soundfile'])
def test_missing_dependency_hint_installs_from_the_checkout(tmp_path, files, module):
    from kapre_fast import _loader

    if _loader.installed_from() != REPO:
        pytest.skip(f'this kapre_fast was not installed from {REPO} (a wheel or an index)')
    hidden = hide_module(tmp_path / 'hidden', module)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(hidden), env.get('PYTHONPATH')]))
    picture = tmp_path / 'picture.png'
    for cwd, command in [(REPO, 'pip install ".[cli]"'), (tmp_path, f'pip install "{REPO}[cli]"')]:
        result = run('spec', files / 'speech.wav', '-o', picture, cwd=cwd, env=env)
        assert result.returncode == 1, result.stderr
        assert f'`{command}` or `pip install {module}`' in result.stderr, result.stderr
        # Not by name (it is not on an index); the checkout's own path may end in kapre_fast.
        assert 'kapre_fast[cli]' not in result.stderr.replace(command, '')
        assert not picture.exists()
