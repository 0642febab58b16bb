"""PCEN and trainable front ends (issue #15): what each costs next to its baseline.

    python bench/front_end_extras.py [--repeats 15] [--threads 1]

PCEN (16 x 10 s @ 22.05 kHz, n_fft 2048, hop 512, 128 mels): kapre_fast.cpu.pcen, its parts
(the fused mel; the native PCEN pass alone, in place), and librosa: librosa.pcen on that same
mel (float64 batch), and librosa.feature.melspectrogram + librosa.pcen per example.
Trainable (8 x 3 s, same front end, eager tf.function): forward + backward of the fused mel
layer with trainable_window and trainable_filterbank (gradients to audio, window and band
weights), the same layer without trainable weights (gradient to the audio), and kapre's composed
mel layer (gradient to the audio: kapre's filterbank is a constant). Best of `repeats` calls,
milliseconds, printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# The installed kapre_fast, not this checkout's source folder (as bench/run.py).
sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != Path(__file__).resolve().parents[1]]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `bench` itself
from bench import timing  # noqa: E402

SAMPLE_RATE, N_FFT, HOP, N_MELS = 22050, 2048, 512, 128


def best_ms(run, repeats):
    run()  # warm-up (plans, tracing)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def pcen_rows(repeats, threads):
    import librosa
    import numpy as np

    from kapre_fast import cpu, spec

    audio = np.random.default_rng(0).standard_normal((16, 10 * SAMPLE_RATE, 1)).astype(
        np.float32) * 0.1
    kwargs = dict(n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, sample_rate=SAMPLE_RATE,
                  compat='librosa', input_data_format='channels_last',
                  output_data_format='channels_last')
    mel = cpu.melspectrogram(audio, threads=threads, **kwargs)
    constants = spec.pcen_constants(SAMPLE_RATE, HOP)
    buffer = mel.copy()
    mel64 = mel[..., 0].transpose(0, 2, 1).astype(np.float64)

    def librosa_both():
        for example in audio[..., 0]:
            librosa.pcen(librosa.feature.melspectrogram(
                y=example, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS),
                sr=SAMPLE_RATE, hop_length=HOP)

    return [
        ('kapre_fast.cpu.pcen (mel + PCEN pass)',
         best_ms(lambda: cpu.pcen(audio, threads=threads, **kwargs), repeats)),
        ('  its fused mel alone', best_ms(
            lambda: cpu.melspectrogram(audio, threads=threads, **kwargs), repeats)),
        ('  its PCEN pass alone (in place)', best_ms(
            lambda: cpu.apply_pcen(buffer, constants, 1, threads=threads), repeats)),
        ('librosa.pcen on the same mel', best_ms(
            lambda: librosa.pcen(mel64, sr=SAMPLE_RATE, hop_length=HOP), repeats)),
        ('librosa melspectrogram + pcen', best_ms(librosa_both, max(1, repeats // 5))),
    ]


def trainable_rows(repeats):
    import numpy as np
    import tensorflow as tf
    from kapre.composed import get_melspectrogram_layer as kapre_mel

    from kapre_fast import layers

    audio = tf.constant(np.random.default_rng(0).standard_normal((8, 3 * SAMPLE_RATE, 1)),
                        tf.float32)
    front_end = dict(n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, sample_rate=SAMPLE_RATE)

    def step_for(layer, variables):
        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x) ** 2)
            return tape.gradient(loss, [x] + variables)
        return lambda: [g.numpy() for g in step(audio)]

    trainable = layers.FrontEnd(filterbank='mel', trainable_window=True,
                                trainable_filterbank=True, input_data_format='channels_last',
                                output_data_format='channels_last', **front_end)
    trainable.build(audio.shape)
    fixed = layers.FrontEnd(filterbank='mel', input_data_format='channels_last',
                            output_data_format='channels_last', **front_end)
    kapre = kapre_mel(input_shape=(3 * SAMPLE_RATE, 1), input_data_format='channels_last',
                      output_data_format='channels_last', **front_end)
    return [
        ('kapre_fast, trainable window + filterbank (d audio, window, band weights)',
         best_ms(step_for(trainable, trainable.trainable_weights), repeats)),
        ('kapre_fast, not trainable (d audio)', best_ms(step_for(fixed, []), repeats)),
        ("kapre's composed mel layer (d audio)", best_ms(step_for(kapre, []), repeats)),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    timing.limit_threads(args.threads)
    print(f'| forward (+ backward), {args.threads} thread(s) | ms |\n|---|---|')
    for name, ms in pcen_rows(args.repeats, args.threads) + trainable_rows(args.repeats):
        print(f'| {name} | {ms:.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
