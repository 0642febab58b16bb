"""`kapre-fast demo`: synthesised audio, timed against the reference and kapre, and a picture."""

from __future__ import annotations

import warnings

import numpy as np

from kapre_fast.cli.audio import synthesize
from kapre_fast.cli.bench import _timed
from kapre_fast.cli.options import UsageError, check_threads, make_front_end
from kapre_fast.cli.pictures import check_picture_path, describe, save_spectrogram


def cmd_demo(args) -> int:
    from kapre_fast import cpu, reference

    check_threads(args)
    if args.output:
        check_picture_path(args.output)
    sr = args.sample_rate
    audio = synthesize(args.seconds, sr)
    kwargs = dict(
        n_fft=2048,
        hop_length=512,
        sample_rate=sr,
        n_mels=128,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    spec = make_front_end('mel', kwargs, args)
    if audio.shape[1] < spec.win_length:
        raise UsageError(
            f'--seconds {args.seconds:g} is shorter than one frame of '
            f'{spec.win_length} samples at {sr} Hz; use more --seconds'
        )
    print(f'kapre_fast demo: melspectrogram of {args.seconds:g} s of synthesised audio @ {sr} Hz')
    ours, t_ours = _timed(lambda: cpu.melspectrogram(audio, threads=args.threads, **kwargs))
    truth, t_ref = _timed(lambda: reference.melspectrogram(audio, **kwargs), repeats=1)
    print(f'  kapre_fast.cpu       {t_ours * 1e3:8.2f} ms  shape {ours.shape}')
    print(
        f'  float64 reference    {t_ref * 1e3:8.2f} ms  max |diff| '
        f'{np.abs(ours - truth).max():.4f} dB'
    )
    try:
        import kapre.composed  # noqa: F401  (optional: only to compare)
    except ImportError:
        print('  kapre                (not installed: pip install kapre==0.4.1 to compare)')
    else:
        import tensorflow as tf
        from kapre.composed import get_melspectrogram_layer

        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='.*input_shape', category=UserWarning)
            layer = get_melspectrogram_layer(input_shape=audio.shape[1:], **kwargs)
        fn = tf.function(layer)
        x = tf.constant(audio)
        theirs, t_kapre = _timed(lambda: fn(x).numpy())
        print(
            f'  kapre 0.4.1          {t_kapre * 1e3:8.2f} ms  max |diff| vs kapre_fast '
            f'{np.abs(ours - theirs).max():.4f} dB'
        )
    if args.output:
        title = (
            f'kapre_fast demo: mel spectrogram of a chirp with a silent gap ({describe(spec, sr)})'
        )
        save_spectrogram(args.output, ours[0], spec, sr, title=title)
        print(f'  picture              {args.output}')
    return 0
