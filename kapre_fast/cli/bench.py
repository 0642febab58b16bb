"""`kapre-fast bench`: a quick benchmark against whichever baselines are installed."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from kapre_fast.cli.audio import synthesize
from kapre_fast.cli.options import (
    CliError,
    KINDS,
    PROG,
    UsageError,
    check_threads,
    front_end_kwargs,
    make_front_end,
)
from kapre_fast.cli.pictures import describe


def find_checkout():
    """The source checkout holding bench/run.py: the folder above the imported package, or the
    current directory; None when the command runs from an installed package only."""
    import kapre_fast

    for root in (Path(kapre_fast.__file__).resolve().parent.parent, Path.cwd()):
        if all((root / part).exists() for part in ('bench/run.py', 'pyproject.toml', 'kapre_fast')):
            return root
    return None


def _timed(fn, repeats=3):
    """(last result, best time in seconds) of `repeats` calls."""
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def _bench_methods(spec, kind, kwargs, audio, threads):
    """[(label, callable returning (batch, frames, features, 1) NumPy, or the reason it is not
    available)], kapre first: what `bench` times."""
    methods = []
    from kapre_fast import cpu

    methods.append(
        ('kapre_fast.cpu', lambda: getattr(cpu, KINDS[kind][0])(audio, threads=threads, **kwargs))
    )

    try:
        import kapre_fast.gpu as gpu
        import cupy
    except Exception as error:  # ImportError, or CuPy/CUDA failing while loading
        methods.append(('kapre_fast.gpu', f'not available ({type(error).__name__}: {error})'))
    else:
        gpu_audio = cupy.asarray(audio)

        def run_gpu():
            result = getattr(gpu, KINDS[kind][0])(gpu_audio, **kwargs)
            cupy.cuda.Device().synchronize()
            return cupy.asnumpy(result)

        methods.append(('kapre_fast.gpu', run_gpu))

    try:
        import tensorflow as tf
    except ImportError as error:
        tf, reason = None, f'TensorFlow not installed ({error})'
    if tf is not None and threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TensorFlow already initialised its thread pools
    if tf is None:
        methods.insert(0, ('kapre (tf.function)', reason))
        methods.append(('tf.signal (tf.function)', reason))
    else:
        x = tf.constant(audio)
        try:
            import kapre.composed
        except ImportError as error:
            methods.insert(0, ('kapre (tf.function)', f'not installed ({error})'))
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings('ignore', message='.*input_shape', category=UserWarning)
                layer = getattr(kapre.composed, KINDS[kind][1])(
                    input_shape=audio.shape[1:], **kwargs
                )
            kapre_fn = tf.function(lambda a: layer(a, training=False))
            methods.insert(0, ('kapre (tf.function)', lambda: kapre_fn(x).numpy()))
        methods.append(('tf.signal (tf.function)', _tf_signal_method(tf, spec, x)))
    methods.append(('librosa', _librosa_method(spec, audio)))
    return methods


def _tf_signal_method(tf, spec, x):
    """kapre's front end as tf.signal ops in one tf.function: what one writes without kapre."""
    matrix = spec.dense_filterbank()
    matrix = None if matrix is None else tf.constant(matrix.astype(np.float32))
    window_fn = getattr(tf.signal, spec.window_name)

    @tf.function
    def front_end(audio):
        signals = tf.transpose(audio, [0, 2, 1])  # (batch, channels, time)
        if spec.pad_begin_length:
            signals = tf.pad(signals, [[0, 0], [0, 0], [spec.pad_begin_length, 0]])
        spectrum = tf.signal.stft(
            signals,
            spec.win_length,
            spec.hop_length,
            spec.n_fft,
            window_fn=window_fn,
            pad_end=spec.pad_end,
        )
        features = tf.abs(spectrum)
        if matrix is not None:
            features = tf.tensordot(features, matrix, 1)
        if spec.return_decibel:
            db = 10.0 * tf.math.log(tf.maximum(features, spec.db_amin)) / math.log(10.0)
            db -= 10.0 * math.log10(max(spec.db_amin, spec.db_ref_value))
            peak = tf.reduce_max(db, axis=[1, 2, 3], keepdims=True)
            features = tf.maximum(db, peak - spec.db_dynamic_range)
        return tf.transpose(features, [0, 2, 3, 1])

    return lambda: front_end(x).numpy()


def _librosa_method(spec, audio):
    """librosa.stft (kapre's frames: no centring, window zero-padded at the end) -> |.| ->
    kapre's filterbank -> dB per example."""
    try:
        import librosa
    except ImportError as error:
        return f'not installed ({error})'
    if spec.win_length != spec.n_fft or spec.pad_begin or spec.pad_end:
        return 'skipped (kapre framing with --win-length or padding has no librosa equivalent)'
    matrix = spec.dense_filterbank()
    matrix = None if matrix is None else np.ascontiguousarray(matrix.T, dtype=np.float32)
    window = np.asarray(spec.window(), dtype=np.float32)
    signals = np.ascontiguousarray(audio.transpose(0, 2, 1))  # (batch, channels, time)

    def run():
        magnitude = np.abs(
            librosa.stft(
                signals, n_fft=spec.n_fft, hop_length=spec.hop_length, window=window, center=False
            )
        )  # (b, c, freq, frames)
        features = magnitude if matrix is None else np.matmul(matrix, magnitude)
        if spec.return_decibel:
            features = np.stack(
                [
                    librosa.power_to_db(
                        example,
                        ref=spec.db_ref_value,
                        amin=spec.db_amin,
                        top_db=spec.db_dynamic_range,
                    )
                    for example in features
                ]
            )
        return features.transpose(0, 3, 2, 1)

    return run


def cmd_bench(args) -> int:
    run_args = args.run_args[1:] if args.run_args[:1] == ['--'] else args.run_args
    if args.full:
        checkout = find_checkout()
        if checkout is None:
            raise CliError(
                'bench --full runs the benchmark suite bench/run.py of a kapre_fast '
                'source checkout, which the installed package does not include: run '
                'it from the checkout (cd kapre_fast && kapre-fast bench --full), or '
                'use plain `kapre-fast bench`'
            )
        command = [sys.executable, str(checkout / 'bench' / 'run.py'), *run_args]
        print(f'{PROG} bench --full: {" ".join(command)}', flush=True)
        return subprocess.call(command, cwd=checkout)
    if run_args:
        raise UsageError(
            f'unrecognized arguments: {" ".join(run_args)} (arguments after -- are '
            'for bench/run.py and need --full)'
        )
    check_threads(args)
    kwargs = front_end_kwargs(args, args.sample_rate)
    spec = make_front_end(args.kind, kwargs, args)
    audio = np.concatenate(
        [synthesize(args.seconds, args.sample_rate, seed) for seed in range(args.batch)]
    )
    try:
        spec.n_frames(audio.shape[1])
    except ValueError as error:
        raise UsageError(f'--seconds {args.seconds:g} is too short: {error}') from None
    audio_seconds = args.batch * audio.shape[1] / args.sample_rate

    threads = 'all cores' if args.threads is None else f'{args.threads} thread(s)'
    print(
        f'{PROG} bench: {KINDS[args.kind][2]} ({describe(spec, args.sample_rate)}'
        f'{", dB" if spec.return_decibel else ""}) of {args.batch} x {args.seconds:g} s mono, '
        f'{threads}; best of {args.repeats} after a warm-up call',
        flush=True,
    )
    unit = 'dB' if spec.return_decibel else 'magnitude'
    diff_title = f'max |diff| vs kapre ({unit})'
    header = f'{"method":<26}{"ms":>10}{"x realtime":>12}{"vs kapre":>10}  {diff_title:>28}'
    # Methods that did not run are notes below the table: their reasons are long sentences.
    rows, notes, kapre_ms, kapre_out = [], [], None, None
    for label, method in _bench_methods(spec, args.kind, kwargs, audio, args.threads):
        if isinstance(method, str):
            notes.append(f'{label}: {method}')
            continue
        try:
            out = np.asarray(method())  # warm-up: tracing, plans, caches
            out, seconds = _timed(method, args.repeats)
        except Exception as error:  # a baseline failing must not stop the table
            notes.append(f'{label}: failed: {type(error).__name__}: {error}'.splitlines()[0])
            continue
        ms = seconds * 1e3
        if label.startswith('kapre ('):
            kapre_ms, kapre_out = ms, np.asarray(out)
        speedup = f'{kapre_ms / ms:.1f}x' if kapre_ms else '-'
        if kapre_out is None:
            diff = '-'
        elif label.startswith('kapre ('):
            diff = '(reference)'
        elif np.shape(out) != kapre_out.shape:
            diff = f'shape {np.shape(out)} != {kapre_out.shape}'
        else:
            diff = f'{float(np.max(np.abs(np.asarray(out, np.float64) - kapre_out))):.2g}'
        realtime = audio_seconds / seconds
        rows.append(f'{label:<26}{ms:10.2f}{realtime:12.0f}{speedup:>10}  {diff:>28}')
    print(header)
    print('-' * len(header))
    for row in rows:
        print(row)
    if notes:
        print()
    for note in notes:
        print(f'not timed: {note}')
    if kapre_ms is None:
        print(
            '(kapre 0.4.1 is not installed: no speed-up or difference columns; '
            'pip install kapre==0.4.1 to compare)'
        )
    return 0
