"""TFLite's builtin RFFT2D as the FFT of the exported front end (issue #27): for configs A-D, a
front end whose transform is `tf.signal.rfft` (converted with TFLITE_BUILTINS only to RFFT2D
and COMPLEX_ABS) against kapre_fast.export.to_tflite's matmul FFT, on LiteRT (XNNPACK) in one
process, alternated, with both models' largest difference from the fused op.

    PYTHONPATH=. python bench/tflite_rfft2d.py                    # A-D, 1 thread
    PYTHONPATH=. python bench/tflite_rfft2d.py --configs C --repeats 5
    PYTHONPATH=. python bench/tflite_rfft2d.py --quick --configs B   # smoke sizes

The RFFT2D front end: frames by reshapes, strided slices and one concatenation (blocks of
gcd(win_length, hop_length) samples, no GATHER), the window (MUL), tf.signal.rfft of n_fft
(RFFT2D; a win_length below n_fft is zero-padded by it), tf.abs (COMPLEX_ABS), the dense
filterbank (FULLY_CONNECTED) and kapre_fast.builtin's dB, so the models differ only in their
transform. Times: the calling thread's CPU time (time.thread_time; LiteRT at num_threads=1
computes in it), best of --repeats rounds, each round timing every model --calls times, so
that other load on a shared machine costs both alike. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if __package__ in (None, ''):
    sys.path.insert(0, str(CHECKOUT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import baselines, configs  # noqa: E402
from kapre_fast import builtin, export  # noqa: E402


def rfft2d_front_end(audio, spec):
    """kapre's numbers (no preset) with tf.signal.rfft as the transform; (batch, time, 1) in."""
    waveform = tf.reshape(audio, [-1, audio.shape[1]])  # one channel
    length, hop = spec.frame_length, spec.hop_length
    block = math.gcd(length, hop)
    n_frames = 1 + (audio.shape[1] - length) // hop
    step, pieces = hop // block, length // block
    blocks = tf.reshape(
        waveform[:, : (audio.shape[1] // block) * block], [-1, audio.shape[1] // block, block]
    )
    frames = tf.concat(
        [blocks[:, j : j + (n_frames - 1) * step + 1 : step] for j in range(pieces)], axis=-1
    )  # (batch, frames, length)
    frames = frames * tf.constant(spec.window()[:length].astype(np.float32))
    features = tf.abs(tf.signal.rfft(frames, [spec.n_fft]))  # RFFT2D, COMPLEX_ABS
    if spec.filterbank != 'none':
        features = tf.matmul(features, tf.constant(spec.dense_filterbank().astype(np.float32)))
    features = features[:, tf.newaxis]  # (batch, channels, frames, features)
    if spec.return_decibel:
        features = builtin._decibel(features, spec)
    return tf.transpose(features, [0, 2, 3, 1])  # channels_last


def operators(flatbuffer):
    from tensorflow.lite.python import analyzer

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        analyzer.ModelAnalyzer.analyze(model_content=flatbuffer)
    return sorted(
        {
            line.split('Op#')[1].split()[1].split('(')[0]
            for line in text.getvalue().splitlines()
            if 'Op#' in line
        }
    )


def convert_rfft2d(spec, shape):
    function = tf.function(
        lambda x: rfft2d_front_end(x, spec), input_signature=[tf.TensorSpec(shape, tf.float32)]
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def measure(name: str, quick: bool = False, repeats: int = 4, calls: int = 3) -> dict:
    """Config `name` (smoke size when quick): both models' best thread CPU seconds, largest
    difference from the fused op (dB, or of the peak magnitude for C) and the RFFT2D model's
    operators."""
    sized = configs.CONFIGS[name].sized(quick)
    audio = configs.synthesize(sized)
    model = baselines._kapre_fast_model(sized)
    (layer,) = export.kapre_fast_layers(model)
    expected = model(audio).numpy()
    models = {
        'rfft2d': convert_rfft2d(layer.spec, list(audio.shape)),
        'matmul': export.to_tflite(model),
    }
    runs = {
        key: baselines.litert_runner(flatbuffer, audio, 1) for key, flatbuffer in models.items()
    }
    decibel = bool(layer.spec.return_decibel)
    scale = 1.0 if decibel else float(np.abs(expected).max())
    record = dict(config=name, n_fft=layer.spec.n_fft, unit='dB' if decibel else 'of peak')
    for key, run in runs.items():
        record[f'{key}_difference'] = float(np.abs(run() - expected).max() / scale)
        record[f'{key}_s'] = math.inf
    for _ in range(repeats):
        for key, run in runs.items():
            for _ in range(calls):
                start = time.thread_time()
                run()
                record[f'{key}_s'] = min(record[f'{key}_s'], time.thread_time() - start)
    record['operators'] = operators(models['rfft2d'])
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', default='A,B,C,D')
    parser.add_argument('--quick', action='store_true', help='smoke sizes')
    parser.add_argument('--repeats', type=int, default=4)
    parser.add_argument('--calls', type=int, default=3)
    args = parser.parse_args(argv)
    print(
        '| config | n_fft | RFFT2D front end ms | matmul FFT (to_tflite) ms | RFFT2D max diff '
        'vs fused | matmul max diff | RFFT2D ops |'
    )
    print('|---|---|---|---|---|---|---|')
    for name in configs.parse_names(args.configs):
        r = measure(name, args.quick, args.repeats, args.calls)
        print(
            f'| {name} | {r["n_fft"]} | {1e3 * r["rfft2d_s"]:.1f} | {1e3 * r["matmul_s"]:.1f} | '
            f'{r["rfft2d_difference"]:.2g} {r["unit"]} | {r["matmul_difference"]:.2g} '
            f'{r["unit"]} | {", ".join(r["operators"])} |',
            flush=True,
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
