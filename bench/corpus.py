"""Corpus-scale feature extraction: files/s and hours of audio/s of kapre_fast.corpus.extract
(local engine with 1 and 2 workers, Ray with 2 workers) against the loop users write today
(librosa.load + librosa.feature.melspectrogram in a multiprocessing Pool), each with the share
of its time spent decoding (and resampling), and an estimate for AudioSet.

    python bench/corpus.py                    # 2,000 files of 1-10 s (FLAC and WAV), ~3 h
    python bench/corpus.py --files 200 --methods local1,librosa1    # a quick look

The corpus is generated once into --corpus (default build/bench-corpus) and reused: half FLAC
at 22.05 kHz, half WAV at 16 kHz, mono, noise shaped like speech; everything is resampled to
16 kHz (soxr; librosa.load's default resampler is soxr 'HQ' too) and turned into 64-band log-mel
spectrograms (n_fft 512, hop 160: 10 ms frames), AudioSet front-end settings. Results go to
bench/results/corpus-<UTC time>.{json,md}.
Every method runs in a fresh process, one after the other, timed from a warm start (Ray's
session and librosa's imports come first); the machine's other load is not controlled, so
repeat runs before comparing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
FRONT_END = dict(n_fft=512, hop_length=160, n_mels=64, return_decibel=True)
METHODS = ('local1', 'local2', 'ray2', 'librosa1', 'librosa2')
# AudioSet: about 2.1 million 10-second clips (balanced + unbalanced train + eval).
AUDIOSET_HOURS = 2.1e6 * 10 / 3600


def make_corpus(folder: Path, files: int, seed=0):
    """`files` recordings of 1-10 s, alternately FLAC (22.05 kHz) and WAV (16 kHz); kept when
    already there."""
    import soundfile

    stamp = folder / f'.complete-{files}-{seed}'
    if stamp.exists():
        return sorted(p for p in folder.rglob('*') if p.suffix in ('.flac', '.wav'))
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(files):
        rate, suffix = (22050, 'flac') if index % 2 == 0 else (16000, 'wav')
        length = int(rng.uniform(1, 10) * rate)
        # Noise through a slowly varying gain: compresses like real audio does (FLAC ~60%).
        noise = rng.standard_normal(length).astype(np.float32)
        gain = 0.1 * (1.2 + np.sin(np.arange(length) * (2 * np.pi * 3 / rate)))
        path = folder / f'{index // 500:02d}' / f'{index:06d}.{suffix}'
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), (noise * gain).astype(np.float32), rate, subtype='PCM_16')
        paths.append(path)
    stamp.write_text('')
    return paths


def audio_hours(paths):
    import soundfile

    return sum(soundfile.info(str(p)).duration for p in paths) / 3600


# ----- the methods -----------------------------------------------------------------------------


def run_kapre_fast(folder, engine, workers):
    from kapre_fast import corpus

    if engine == 'ray':  # started before the clock (seconds, once per session), then reused
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as output:
        start = time.perf_counter()
        summary = corpus.extract(
            folder,
            Path(output) / 'features',
            engine,
            sample_rate=RATE,
            mono=True,
            workers=workers,
            progress=False,
            **FRONT_END,
        )
        elapsed = time.perf_counter() - start
    assert summary.ok and summary.written > 0, summary
    return elapsed


def _librosa_one(path):
    import librosa

    audio, _ = librosa.load(path, sr=RATE, mono=True)
    mel = librosa.feature.melspectrogram(
        y=audio, sr=RATE, n_fft=512, hop_length=160, n_mels=64, power=1.0
    )
    return librosa.amplitude_to_db(mel).shape


def run_librosa(paths, workers):
    _librosa_one(str(paths[0]))  # imports and compiles librosa's kernels before the clock;
    start = time.perf_counter()  # the forked workers inherit them
    with multiprocessing.get_context('fork').Pool(workers) as pool:
        for _ in pool.imap(_librosa_one, [str(p) for p in paths], chunksize=4):
            pass
    return time.perf_counter() - start


def decode_seconds(paths, library):
    """Time to decode and resample every file in this process (one core), the part of the work
    the front end does not do."""
    start = time.perf_counter()
    if library == 'kapre_fast':
        from kapre_fast.corpus.features import Recipe, decode_item
        from kapre_fast.corpus.inputs import Item

        recipe = Recipe.make(sample_rate=RATE, mono=True, **FRONT_END)
        for path in paths:
            assert decode_item(Item('x', str(path)), recipe).error is None
    else:
        import librosa

        for path in paths:
            librosa.load(str(path), sr=RATE, mono=True)
    return time.perf_counter() - start


def measure(method, folder, paths):
    if method.startswith('local'):
        return run_kapre_fast(folder, 'local', int(method[-1]))
    if method.startswith('ray'):
        return run_kapre_fast(folder, 'ray', int(method[-1]))
    return run_librosa(paths, int(method[-1]))


def _child(method, folder, queue):
    paths = sorted(p for p in Path(folder).rglob('*') if p.suffix in ('.flac', '.wav'))
    try:
        queue.put(('ok', measure(method, folder, paths)))
    except Exception as error:  # reported in the table, the other methods still run
        queue.put(('error', f'{type(error).__name__}: {error}'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--files', type=int, default=2000)
    parser.add_argument('--corpus', type=Path, default=REPO / 'build' / 'bench-corpus')
    parser.add_argument(
        '--methods',
        default=','.join(METHODS),
        help=f'comma-separated subset of {",".join(METHODS)}',
    )
    parser.add_argument('--output', type=Path, default=REPO / 'build' / 'bench-results')
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(',') if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(
            f'--methods: unknown {", ".join(sorted(unknown))}; choose from {", ".join(METHODS)}'
        )

    paths = make_corpus(args.corpus, args.files)
    hours = audio_hours(paths)
    print(f'corpus: {len(paths)} files, {hours:.2f} h of audio, {args.corpus}', flush=True)
    sample = paths[:: max(1, len(paths) // 200)]  # the decoding share, on a tenth or so
    decode_share = {}
    for library in ('kapre_fast', 'librosa'):
        decode_share[library] = decode_seconds(sample, library)
    rows = []
    for method in methods:
        # A fresh process per method: no warm caches or Ray session carried between them.
        queue = multiprocessing.get_context('spawn').SimpleQueue()
        child = multiprocessing.get_context('spawn').Process(
            target=_child, args=(method, str(args.corpus), queue)
        )
        child.start()
        child.join()
        status, value = queue.get() if not queue.empty() else ('error', f'exit {child.exitcode}')
        if status != 'ok':
            rows.append({'method': method, 'error': value})
            print(f'{method}: {value}', flush=True)
            continue
        rows.append(
            {
                'method': method,
                'seconds': value,
                'files_per_s': len(paths) / value,
                'audio_hours_per_s': hours / value,
            }
        )
        print(
            f'{method}: {value:.1f} s, {len(paths) / value:.1f} files/s, '
            f'{hours / value * 3600:.0f}x real time',
            flush=True,
        )
    # Decoding share: decode-only time of one process over the one-worker run's time.
    scale = len(paths) / len(sample)
    for row in rows:
        library = 'librosa' if row['method'].startswith('librosa') else 'kapre_fast'
        if 'seconds' in row and row['method'].endswith('1'):
            row['decode_share'] = min(1.0, decode_share[library] * scale / row['seconds'])
    write_report(args.output, rows, len(paths), hours)


def write_report(folder: Path, rows, files, hours):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        'local1': 'kapre_fast local, 1 worker',
        'local2': 'kapre_fast local, 2 workers',
        'ray2': 'kapre_fast Ray, 2 CPUs',
        'librosa1': 'librosa loop, Pool(1)',
        'librosa2': 'librosa loop, Pool(2)',
    }
    cores = os.cpu_count()
    lines = [
        f'Corpus benchmark {stamp} UTC, {platform.node()}, {cores} cores: {files} files, '
        f'{hours:.2f} h of audio (FLAC 22.05 kHz / WAV 16 kHz, 1-10 s) -> 16 kHz, 64-band '
        'log-mel (n_fft 512, hop 160)',
        '',
        '| method | s | files/s | audio h/s | x real time | decoding share | AudioSet '
        f'({AUDIOSET_HOURS:.0f} h) on 10 such machines |',
        '|---|---|---|---|---|---|---|',
    ]
    for row in rows:
        if 'error' in row:
            lines.append(f'| {names[row["method"]]} | error: {row["error"]} | | | | | |')
            continue
        share = f'{row["decode_share"]:.0%}' if 'decode_share' in row else ''
        audioset = AUDIOSET_HOURS / (row['audio_hours_per_s'] * 3600) / 10
        lines.append(
            f'| {names[row["method"]]} | {row["seconds"]:.1f} | '
            f'{row["files_per_s"]:.1f} | {row["audio_hours_per_s"]:.3f} | '
            f'{row["audio_hours_per_s"] * 3600:.0f} | {share} | {audioset:.1f} h |'
        )
    lines += [
        '',
        'Decoding share: decoding and resampling alone (one process, a sample of the '
        'files) over the 1-worker run. AudioSet estimate: its hours over the measured '
        'throughput of this machine, divided by 10 machines like it (linear scaling: '
        'decoding is per file, no shared state).',
    ]
    text = '\n'.join(lines) + '\n'
    (folder / f'corpus-{stamp}.md').write_text(text)
    (folder / f'corpus-{stamp}.json').write_text(
        json.dumps({'files': files, 'hours': hours, 'cores': cores, 'rows': rows}, indent=1)
    )
    print(text)


if __name__ == '__main__':
    sys.exit(main())
