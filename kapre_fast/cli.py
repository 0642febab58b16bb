"""The `kapre-fast` command."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def synthesize(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A chirp from 100 Hz to 8 kHz plus a little noise and a silent gap: (1, time, 1) float32."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0, f1 = 100.0, min(8000.0, sample_rate / 2.5)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    audio = 0.5 * np.sin(phase) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    audio[int(0.45 * t.size) : int(0.55 * t.size)] = 0.0
    return audio.astype(np.float32)[None, :, None]


def _timed(fn, repeats=3):
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def cmd_demo(args) -> int:
    from kapre_fast import cpu, reference

    sr = args.sample_rate
    audio = synthesize(args.seconds, sr)
    kwargs = dict(n_fft=2048, hop_length=512, sample_rate=sr, n_mels=128, return_decibel=True,
                  input_data_format='channels_last', output_data_format='channels_last')
    print(f'kapre_fast demo: melspectrogram of {args.seconds:g} s of synthesised audio @ {sr} Hz')
    ours, t_ours = _timed(lambda: cpu.melspectrogram(audio, **kwargs))
    truth, t_ref = _timed(lambda: reference.melspectrogram(audio, **kwargs), repeats=1)
    print(f'  kapre_fast.cpu       {t_ours * 1e3:8.2f} ms  shape {ours.shape}')
    print(f'  float64 reference    {t_ref * 1e3:8.2f} ms  max |diff| {np.abs(ours - truth).max():.4f} dB')
    try:
        import kapre.composed  # noqa: F401  (optional: only to compare)
    except ImportError:
        print('  kapre                (not installed: pip install kapre==0.4.1 to compare)')
    else:
        import tensorflow as tf
        from kapre.composed import get_melspectrogram_layer

        layer = get_melspectrogram_layer(input_shape=audio.shape[1:], **kwargs)
        fn = tf.function(layer)
        x = tf.constant(audio)
        theirs, t_kapre = _timed(lambda: fn(x).numpy())
        print(f'  kapre 0.4.1          {t_kapre * 1e3:8.2f} ms  max |diff| vs kapre_fast '
              f'{np.abs(ours - theirs).max():.4f} dB')
    if args.output:
        _save_picture(ours[0, :, :, 0], sr, kwargs['hop_length'], args.output)
        print(f'  picture              {args.output}')
    return 0


def _save_picture(features, sample_rate, hop_length, path):
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    seconds = features.shape[0] * hop_length / sample_rate
    image = ax.imshow(features.T, origin='lower', aspect='auto', cmap='magma',
                      extent=[0, seconds, 0, features.shape[1]])
    ax.set_xlabel('time (s)')
    ax.set_ylabel('mel band')
    ax.set_title('kapre_fast melspectrogram')
    fig.colorbar(image, ax=ax, label='dB')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='kapre-fast', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    demo = sub.add_parser('demo', help='features of synthesised audio, timed against the '
                                       'float64 reference (and kapre when installed)')
    demo.add_argument('--seconds', type=float, default=5.0)
    demo.add_argument('--sample-rate', type=int, default=22050)
    demo.add_argument('-o', '--output', default='kapre_fast_demo.png',
                      help='spectrogram picture to write ("" for none)')
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
