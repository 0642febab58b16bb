"""Spectrogram pictures: labelled axes in seconds and Hz, a dB colour bar."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kapre_fast._loader import pip_install_hint
from kapre_fast.cli.options import CliError, UsageError


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise CliError(
            f'pictures need matplotlib ({error}); install it with '
            f'`{pip_install_hint("cli")}` or `pip install matplotlib`'
        ) from None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def check_picture_path(path):
    """UsageError unless matplotlib can write a picture with this file name's suffix."""
    plt = _pyplot()
    suffix = Path(path).suffix.lower().lstrip('.')
    supported = plt.figure().canvas.get_supported_filetypes()
    plt.close('all')
    if suffix not in supported:
        raise UsageError(
            f"cannot write a picture named '{path}': use one of the suffixes "
            f'{", ".join("." + name for name in sorted(supported))}'
        )


def band_centres(spec) -> np.ndarray:
    """Centre frequency (Hz) of every mel or log-frequency band of `spec`."""
    if spec.filterbank == 'log':
        bins = np.arange(spec.log_n_bins)
        return spec.log_f_min * 2.0 ** (bins / spec.log_bins_per_octave)
    from kapre_fast.tables import hz_to_mel as _hz_to_mel, mel_to_hz as _mel_to_hz

    # librosa's mel triangles: n_mels + 2 edges evenly spaced in mel; band j peaks at edge j + 1.
    low, high = _hz_to_mel(spec.mel_f_min, spec.mel_htk), _hz_to_mel(spec.mel_f_max, spec.mel_htk)
    return _mel_to_hz(np.linspace(low, high, spec.n_mels + 2), spec.mel_htk)[1:-1]


def _hz_label(hz):
    if hz >= 1000:
        return f'{hz / 1000:g}k'
    return f'{hz:g}'


def frequency_ticks(centres):
    """(positions, labels): round frequencies placed on a band axis (band j at y = j) by
    interpolating between band centres, at most about ten, the roundest first."""
    n = len(centres)
    positions = np.arange(n, dtype=np.float64)
    low, high = float(centres[0]), float(centres[-1])
    if n >= 2 and high > low > 0:
        candidates = []
        for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
            for mantissa in range(1, 10):
                hz = mantissa * 10.0**exponent
                if low <= hz <= high:
                    roundness = {1: 0, 5: 1, 2: 2}.get(mantissa, 3)
                    candidates.append((roundness, hz, float(np.interp(hz, centres, positions))))
        gap = max(n / 9.0, 1.0)
        chosen = []
        for _, hz, position in sorted(candidates):
            if all(abs(position - other) >= gap for _, other in chosen):
                chosen.append((hz, position))
        if len(chosen) >= 3:
            chosen.sort(key=lambda pair: pair[1])
            return [p for _, p in chosen], [_hz_label(hz) for hz, _ in chosen]
    # Too narrow a range for round numbers: label a few bands with their own centres.
    picks = np.unique(np.linspace(0, n - 1, min(n, 6)).round().astype(int))
    return list(picks.astype(float)), [f'{centres[i]:.0f}' for i in picks]


def save_spectrogram(path, features, spec, sample_rate, *, title, cmap='magma', dpi=110):
    """Writes a picture of (frames, features, channels) features, one panel per channel:
    time in seconds (frame centres), frequency in Hz, one shared colour bar."""
    plt = _pyplot()
    from matplotlib import ticker

    n_frames, n_bins, n_channels = features.shape
    hop_s = spec.hop_length / sample_rate
    first = (spec.win_length / 2 - spec.pad_begin_length) / sample_rate  # centre of frame 0
    x_extent = [first - hop_s / 2, first + (n_frames - 0.5) * hop_s]
    if spec.filterbank == 'none':
        step = sample_rate / spec.n_fft
        y_extent, ylabel = [-step / 2, (n_bins - 0.5) * step], 'frequency (Hz)'
    else:
        y_extent = [-0.5, n_bins - 0.5]
        ylabel = f'frequency (Hz, {"mel" if spec.filterbank == "mel" else "log"} bands)'
    finite = features[np.isfinite(features)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high <= low:
        high = low + 1.0

    fig, axes = plt.subplots(
        n_channels,
        1,
        squeeze=False,
        sharex=True,
        sharey=True,
        dpi=dpi,
        figsize=(10, 1.0 + 2.9 * n_channels),
        layout='constrained',
    )
    for channel, ax in enumerate(axes[:, 0]):
        image = ax.imshow(
            features[:, :, channel].T,
            origin='lower',
            aspect='auto',
            cmap=cmap,
            extent=x_extent + y_extent,
            vmin=low,
            vmax=high,
            interpolation='nearest',
        )
        ax.set_ylabel(ylabel)
        if spec.filterbank != 'none':
            positions, labels = frequency_ticks(band_centres(spec))
            ax.set_yticks(positions, labels)
        else:
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda hz, _: _hz_label(hz)))
        if n_channels > 1:
            ax.set_title(f'channel {channel + 1}', loc='left', fontsize=9)
    axes[-1, 0].set_xlabel('time (s)')
    unit = 'dB' if spec.return_decibel else 'magnitude'
    fig.colorbar(image, ax=axes[:, 0].tolist(), label=unit, pad=0.01)
    fig.suptitle(title, fontsize=11)
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)


def describe(spec, sample_rate) -> str:
    """'n_fft 2048, hop 512, 128 mel bands, 16000 Hz': the settings shown in titles."""
    parts = [f'n_fft {spec.n_fft}']
    if spec.win_length != spec.n_fft:
        parts.append(f'window {spec.win_length}')
    parts.append(f'hop {spec.hop_length}')
    if spec.filterbank == 'mel':
        parts.append(f'{spec.n_mels} mel bands')
    elif spec.filterbank == 'log':
        parts.append(f'{spec.log_n_bins} log bins')
    parts.append(f'{sample_rate:g} Hz')
    return ', '.join(parts)
