"""`kapre-fast spec`: a spectrogram picture of an audio file."""

from __future__ import annotations

from pathlib import Path

from kapre_fast.cli.audio import compute_features, read_audio
from kapre_fast.cli.options import (
    CliError,
    KINDS,
    UsageError,
    check_options,
    check_threads,
    front_end_kwargs,
    make_front_end,
    with_option_hint,
)
from kapre_fast.cli.pictures import check_picture_path, describe, save_spectrogram


def cmd_spec(args) -> int:
    audio_path = Path(args.audio)
    if not audio_path.exists():
        raise UsageError(f'{args.audio}: no such file')
    output = Path(args.output) if args.output else Path(audio_path.stem + '.png')
    check_picture_path(output)
    check_threads(args)
    check_options(args, decibel=True)

    audio, sample_rate = read_audio(audio_path)
    if args.mono and audio.shape[1] > 1:
        audio = audio.mean(axis=1, keepdims=True)
    kwargs = front_end_kwargs(args, sample_rate, decibel=True)
    spec = make_front_end(args.kind, kwargs, args)
    from kapre_fast import cpu

    try:
        features = compute_features(cpu, args.kind, audio, kwargs, args.threads)
    except ValueError as error:
        raise CliError(f'{audio_path}: {with_option_hint(error, args)}') from None
    seconds = audio.shape[0] / sample_rate
    channels = 'mono' if audio.shape[1] == 1 else f'{audio.shape[1]} channels'
    settings = describe(spec, sample_rate)
    title = args.title or (
        f'{audio_path.name}: {KINDS[args.kind][2]} ({settings}; {seconds:.2f} s, {channels})'
    )
    save_spectrogram(output, features, spec, sample_rate, title=title, cmap=args.cmap, dpi=args.dpi)
    print(
        f'{output}: {KINDS[args.kind][2]} of {audio_path} ({features.shape[0]} frames x '
        f'{features.shape[1]} bins x {features.shape[2]} channel(s), '
        f'{_one_decimal(features.min())} to {_one_decimal(features.max())} dB)'
    )
    return 0


def _one_decimal(value) -> str:
    return f'{round(float(value), 1) + 0.0:.1f}'  # + 0.0: no '-0.0'
