"""The `kapre-fast` command: spectrogram pictures, batch feature extraction, a quick benchmark
and a demo, all computed by kapre_fast's fused kernels.

    kapre-fast spec speech.wav -o speech.png          # labelled mel spectrogram picture
    kapre-fast features audio/ -o feats/               # one .npy per audio file (recursive)
    kapre-fast features a.wav b.flac -o feats.npz      # or one .npz for all of them
    kapre-fast bench                                   # kapre_fast vs kapre / tf.signal / librosa
    kapre-fast demo                                    # synthesised audio, timed, and a picture

Reading audio needs soundfile and pictures need matplotlib (`pip install "kapre_fast[cli]"`);
the baselines of `bench` are used when installed. Errors are printed as
`kapre-fast: error: ...` without a traceback: exit status 2 for a bad command line (unknown or
invalid option value, missing input), 1 for anything else (unreadable audio, a failed file).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

PROG = 'kapre-fast'

# The front ends the command computes: --kind -> the function of kapre_fast.cpu / .gpu /
# .reference and of kapre.composed, and words for titles.
KINDS = {
    'stft': ('stft_magnitude', 'get_stft_magnitude_layer', 'STFT magnitude'),
    'mel': ('melspectrogram', 'get_melspectrogram_layer', 'mel spectrogram'),
    'log': ('log_frequency_spectrogram', 'get_log_frequency_spectrogram_layer',
            'log-frequency spectrogram'),
}

# Files `features` picks up when it walks a folder (a file named on the command line is always
# tried, whatever its name). What soundfile (libsndfile) reads; .mp3 needs libsndfile >= 1.1.
AUDIO_EXTENSIONS = (
    '.wav', '.wave', '.flac', '.ogg', '.oga', '.opus', '.mp3', '.aif', '.aiff', '.aifc',
    '.au', '.snd', '.caf', '.w64', '.rf64',
)

WINDOWS = ('hann', 'hamming', 'kaiser', 'kaiser_bessel_derived', 'vorbis')

# Front-end keyword arguments (kapre's names) -> the option that sets them, for error hints.
_OPTION_OF = {
    'n_fft': '--n-fft', 'win_length': '--win-length', 'hop_length': '--hop-length',
    'window_name': '--window', 'pad_begin': '--pad-begin', 'pad_end': '--pad-end',
    'sample_rate': '--sample-rate', 'n_mels': '--n-mels', 'mel_f_min': '--mel-f-min',
    'mel_f_max': '--mel-f-max', 'mel_htk': '--mel-htk', 'mel_norm': '--mel-norm',
    'log_n_bins': '--log-n-bins', 'log_f_min': '--log-f-min',
    'log_bins_per_octave': '--log-bins-per-octave', 'log_spread': '--log-spread',
    'db_amin': '--db-amin', 'db_ref_value': '--db-ref-value',
    'db_dynamic_range': '--db-dynamic-range', 'threads': '--threads',
}
_MEL_OPTIONS = ('n_mels', 'mel_f_min', 'mel_f_max', 'mel_htk', 'mel_norm')
_LOG_OPTIONS = ('log_n_bins', 'log_f_min', 'log_bins_per_octave', 'log_spread')


# Default of --mel-norm when not given (None is a valid value: no normalisation).
_UNSET = object()


class CliError(Exception):
    """A failure the user can act on: main() prints the message (no traceback), exit status 1."""

    exit_code = 1


class UsageError(CliError):
    """A bad command line (invalid option value, missing input): exit status 2."""

    exit_code = 2


# ----- front-end options ---------------------------------------------------------------------


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number > 0, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a whole number > 0, got {text!r}')
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number > 0, got {text!r}') from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f'expected a number > 0, got {text!r}')
    return value


def _window_name(text):
    name = text[:-len('_window')] if text.endswith('_window') else text
    name = name.replace('-', '_')
    if name not in WINDOWS:
        raise argparse.ArgumentTypeError(
            f'unknown window {text!r}; choose from {", ".join(WINDOWS)}')
    return f'{name}_window'


def _mel_norm(text):
    if text.lower() == 'slaney':
        return 'slaney'
    if text.lower() == 'none':
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'slaney', 'none' or a number p > 0 (p-norm), got {text!r}") from None


def add_front_end_arguments(parser, *, kind_default='mel', decibel_option=True):
    """The front end's options, named after kapre's keyword arguments (n_fft -> --n-fft).

    Filterbank options default to None (= not given: kapre's default applies) so that an option
    that does not belong to the chosen --kind is reported instead of silently ignored.
    """
    group = parser.add_argument_group('front end (kapre.composed arguments; defaults are kapre\'s)')
    group.add_argument('--kind', choices=tuple(KINDS), default=kind_default,
                       help=f'stft: |STFT|; mel: mel spectrogram; log: log-frequency spectrogram '
                            f'(default: {kind_default})')
    group.add_argument('--n-fft', type=int, default=2048, metavar='N',
                       help='FFT size (default: 2048)')
    group.add_argument('--win-length', type=int, metavar='N',
                       help='window (frame) length in samples (default: --n-fft)')
    group.add_argument('--hop-length', type=int, metavar='N',
                       help='hop between frames in samples (default: --win-length // 4)')
    group.add_argument('--window', type=_window_name, default=None, metavar='NAME',
                       help=f'analysis window: {", ".join(WINDOWS)} (default: hann)')
    group.add_argument('--pad-begin', action='store_true',
                       help='prepend n_fft - hop_length zeros, as kapre\'s pad_begin=True')
    group.add_argument('--pad-end', action='store_true',
                       help='zero-pad the end so every sample is in a frame (kapre\'s pad_end)')
    mel = parser.add_argument_group('mel filterbank (--kind mel)')
    mel.add_argument('--n-mels', type=int, metavar='N', help='mel bands (default: 128)')
    mel.add_argument('--mel-f-min', type=float, metavar='HZ', help='lowest frequency (default: 0)')
    mel.add_argument('--mel-f-max', type=float, metavar='HZ',
                     help='highest frequency (default: sample rate / 2)')
    mel.add_argument('--mel-htk', action='store_const', const=True, default=None,
                     help='HTK mel formula instead of Slaney\'s')
    mel.add_argument('--mel-norm', type=_mel_norm, default=_UNSET, metavar='NORM',
                     help="filter normalisation: slaney, none or a p-norm p (default: slaney)")
    log = parser.add_argument_group('log-frequency filterbank (--kind log)')
    log.add_argument('--log-n-bins', type=int, metavar='N', help='bins (default: 84)')
    log.add_argument('--log-f-min', type=float, metavar='HZ',
                     help='centre of the lowest bin (default: 32.7 Hz, C1)')
    log.add_argument('--log-bins-per-octave', type=int, metavar='N', help='(default: 12)')
    log.add_argument('--log-spread', type=float, metavar='X', help='bin width (default: 0.125)')
    db = parser.add_argument_group('decibels')
    if decibel_option:
        db.add_argument('--db', action=argparse.BooleanOptionalAction, default=True,
                        help='decibels as kapre computes them (return_decibel); --no-db for the '
                             'linear magnitude (default: --db)')
    db.add_argument('--db-amin', type=float, metavar='X', help='floor before the log (1e-5)')
    db.add_argument('--db-ref-value', type=float, metavar='X', help='reference level (1.0)')
    db.add_argument('--db-dynamic-range', type=float, metavar='DB',
                    help='values more than this below each file\'s peak are clamped (80)')


def front_end_kwargs(args, sample_rate, *, decibel=None) -> dict:
    """kapre keyword arguments from the parsed options (input and output channels_last)."""
    kind = args.kind
    kwargs = {'n_fft': args.n_fft, 'input_data_format': 'channels_last',
              'output_data_format': 'channels_last'}
    for name in ('win_length', 'hop_length'):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.window is not None:
        kwargs['window_name'] = args.window
    kwargs['pad_begin'] = args.pad_begin
    kwargs['pad_end'] = args.pad_end
    kwargs['return_decibel'] = args.db if decibel is None else decibel
    for name in ('db_amin', 'db_ref_value', 'db_dynamic_range'):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    given = {name for name in _MEL_OPTIONS
             if name != 'mel_norm' and getattr(args, name) is not None}
    if args.mel_norm is not _UNSET:
        given.add('mel_norm')
    given_log = {name for name in _LOG_OPTIONS if getattr(args, name) is not None}
    wrong = (given if kind != 'mel' else set()) | (given_log if kind != 'log' else set())
    if wrong:
        options = ', '.join(sorted(_OPTION_OF[name] for name in wrong))
        raise UsageError(f'{options} only {"applies" if len(wrong) == 1 else "apply"} to --kind '
                         f'{"mel" if wrong & set(_MEL_OPTIONS) else "log"}, not --kind {kind}')
    if kind in ('mel', 'log'):
        kwargs['sample_rate'] = sample_rate
        for name in sorted(given | given_log):
            kwargs[name] = getattr(args, name)
    return kwargs


def with_option_hint(error, args=None) -> str:
    """An error message from the front end, plus the command-line options it is about (those
    of the command that `args` were parsed for)."""
    message = str(error)
    options = []
    for name, option in _OPTION_OF.items():
        dest = option[2:].replace('-', '_')
        if args is not None and not hasattr(args, dest):
            continue
        if re.search(rf'\b{name}\b', message) and option not in options:
            options.append(option)
    return f'{message} (check {", ".join(options)})' if options else message


def make_front_end(kind, kwargs, args=None):
    """The validated `FrontEnd`; a bad value is a usage error carrying FrontEnd's message."""
    from kapre_fast.spec import FrontEnd

    try:
        return getattr(FrontEnd, KINDS[kind][0])(**kwargs)
    except (ValueError, TypeError) as error:
        raise UsageError(with_option_hint(error, args)) from None


def check_options(args, sample_rate=None, *, decibel=None):
    """Validates the front-end options before any file is read. Without a sample rate (each
    file's own is used) a placeholder stands in, and errors that depend on the rate are left to
    each file, where they are reported with its real rate."""
    try:
        kwargs = front_end_kwargs(args, sample_rate or 384000, decibel=decibel)
        make_front_end(args.kind, kwargs, args)
    except UsageError as error:
        if sample_rate is not None or 'sample_rate' not in str(error):
            raise


def check_threads(args):
    from kapre_fast import cpu

    try:
        cpu.thread_count(args.threads)
    except ValueError as error:
        raise UsageError(with_option_hint(error, args)) from None


# ----- audio and computation ----------------------------------------------------------------


def _soundfile():
    try:
        import soundfile
    except ImportError as error:
        raise CliError(f'reading audio needs soundfile ({error}); install it with '
                       '`pip install "kapre_fast[cli]"` or `pip install soundfile`') from None
    return soundfile


def read_audio(path):
    """(float32 (time, channels) samples, sample rate) of an audio file; CliError if unreadable."""
    soundfile = _soundfile()
    path = Path(path)
    if not path.exists():
        raise CliError(f'{path}: no such file')
    if path.is_dir():
        raise CliError(f'{path}: is a folder, not an audio file')
    try:
        audio, sample_rate = soundfile.read(str(path), dtype='float32', always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError, EOFError,
            soundfile.SoundFileError) as error:
        reason = getattr(error, 'error_string', None) or str(error) or type(error).__name__
        raise CliError(f'{path}: cannot read audio: {reason}') from None
    return audio, sample_rate


def load_backend(device):
    """kapre_fast.cpu, or kapre_fast.gpu when --device gpu (a CliError saying why it is not
    available otherwise)."""
    if device == 'cpu':
        from kapre_fast import cpu

        return cpu
    try:
        import kapre_fast.gpu as gpu
    except Exception as error:  # ImportError, or CuPy/CUDA failing while the module loads
        raise CliError(
            f'kapre_fast.gpu is not available: {type(error).__name__}: {error}. It needs CuPy '
            '(`pip install "kapre_fast[gpu]"`), a CUDA GPU and kapre_fast built with CUDA; '
            'use --device cpu meanwhile') from None
    return gpu


def compute_features(backend, kind, audio, kwargs, threads=None):
    """Features of one (time, channels) float32 recording: (frames, features, channels)."""
    function = getattr(backend, KINDS[kind][0])
    batch = np.ascontiguousarray(audio[np.newaxis])
    if backend.__name__.endswith('.cpu'):
        return function(batch, threads=threads, **kwargs)[0]
    import cupy

    result = function(cupy.asarray(batch), **kwargs)
    return cupy.asnumpy(result)[0]


def synthesize(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A chirp from 100 Hz to 8 kHz plus a little noise and a silent gap: (1, time, 1) float32."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0, f1 = 100.0, min(8000.0, sample_rate / 2.5)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    audio = 0.5 * np.sin(phase) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    audio[int(0.45 * t.size) : int(0.55 * t.size)] = 0.0
    return audio.astype(np.float32)[None, :, None]


# ----- pictures ------------------------------------------------------------------------------


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise CliError(f'pictures need matplotlib ({error}); install it with '
                       '`pip install "kapre_fast[cli]"` or `pip install matplotlib`') from None
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
        raise UsageError(f"cannot write a picture named '{path}': use one of the suffixes "
                         f'{", ".join("." + name for name in sorted(supported))}')


def band_centres(spec) -> np.ndarray:
    """Centre frequency (Hz) of every mel or log-frequency band of `spec`."""
    if spec.filterbank == 'log':
        bins = np.arange(spec.log_n_bins)
        return spec.log_f_min * 2.0 ** (bins / spec.log_bins_per_octave)
    from kapre_fast.spec import _hz_to_mel, _mel_to_hz

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

    fig, axes = plt.subplots(n_channels, 1, squeeze=False, sharex=True, sharey=True, dpi=dpi,
                             figsize=(10, 1.0 + 2.9 * n_channels), layout='constrained')
    for channel, ax in enumerate(axes[:, 0]):
        image = ax.imshow(features[:, :, channel].T, origin='lower', aspect='auto', cmap=cmap,
                          extent=x_extent + y_extent, vmin=low, vmax=high,
                          interpolation='nearest')
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


# ----- spec ----------------------------------------------------------------------------------


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
    title = args.title or (f'{audio_path.name}: {KINDS[args.kind][2]} ({settings}; '
                           f'{seconds:.2f} s, {channels})')
    save_spectrogram(output, features, spec, sample_rate, title=title, cmap=args.cmap,
                     dpi=args.dpi)
    print(f'{output}: {KINDS[args.kind][2]} of {audio_path} ({features.shape[0]} frames x '
          f'{features.shape[1]} bins x {features.shape[2]} channel(s), '
          f'{_one_decimal(features.min())} to {_one_decimal(features.max())} dB)')
    return 0


def _one_decimal(value) -> str:
    return f'{round(float(value), 1) + 0.0:.1f}'  # + 0.0: no '-0.0'


# ----- features ------------------------------------------------------------------------------


def collect_inputs(inputs):
    """[(audio file, output name without suffix)] for files and folders (walked recursively for
    AUDIO_EXTENSIONS); names are paths relative to the folder given (a file's own name for a
    file), made unique by keeping the audio suffix, then by a -2, -3, ... ending."""
    found, seen = [], set()
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise UsageError(f'{text}: no such file or folder')
        if path.is_dir():
            files = sorted(
                p for p in path.rglob('*')
                if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                and not any(part.startswith('.') for part in p.relative_to(path).parts))
            pairs = [(p, p.relative_to(path)) for p in files]
        else:
            pairs = [(path, Path(path.name))]
        for file, relative in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, relative))
    if not found:
        raise UsageError(f'no audio files in {" ".join(inputs)} (looked for '
                         f'{", ".join(AUDIO_EXTENSIONS)})')
    stems = [relative.with_suffix('').as_posix() for _, relative in found]
    clashing = {stem for stem in stems if stems.count(stem) > 1}
    names, used = [], set()
    for (_, relative), stem in zip(found, stems):
        name = relative.as_posix() if stem in clashing else stem
        unique, count = name, 1
        while unique in used:
            count += 1
            unique = f'{name}-{count}'
        used.add(unique)
        names.append(unique)
    return [(file, name) for (file, _), name in zip(found, names)]


class Progress:
    """A one-line progress bar on stderr, redrawn in place; silent when disabled."""

    def __init__(self, total, enabled, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.done, self.label, self.drawn = 0, '', 0.0

    def update(self, done, label=''):
        self.done, self.label = done, label
        now = time.perf_counter()
        if self.enabled and (now - self.drawn > 0.1 or done == self.total):
            self.drawn = now
            self._draw()

    def _draw(self):
        width = shutil.get_terminal_size((80, 20)).columns
        elapsed = time.perf_counter() - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        filled = int(20 * self.done / self.total)
        text = (f'[{"#" * filled}{"." * (20 - filled)}] {self.done}/{self.total} files '
                f'{elapsed:5.1f} s, {left:4.0f} s left  {self.label}')
        self.stream.write('\r' + text[:width - 1].ljust(width - 1))
        self.stream.flush()

    def note(self, text):
        """Prints a line above the bar."""
        if self.enabled:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write('\r' + ' ' * (width - 1) + '\r')
        print(text, file=self.stream, flush=True)
        if self.enabled:
            self._draw()

    def close(self):
        if self.enabled:
            self.stream.write('\n')
            self.stream.flush()


def cmd_features(args) -> int:
    output = Path(args.output)
    to_npz = output.suffix.lower() == '.npz'
    if not to_npz and output.exists() and not output.is_dir():
        raise UsageError(f'-o {output}: exists and is not a folder (name an output folder, or a '
                         'file ending in .npz)')
    if args.device == 'gpu' and args.threads is not None:
        raise UsageError('--threads sets CPU threads; it does not apply to --device gpu')
    check_threads(args)
    check_options(args, args.sample_rate)
    files = collect_inputs(args.inputs)
    backend = load_backend(args.device)
    if to_npz:
        output.parent.mkdir(parents=True, exist_ok=True)
        archive = NpzWriter(output)
    else:
        output.mkdir(parents=True, exist_ok=True)

    progress = Progress(len(files), enabled=not args.quiet and sys.stderr.isatty())
    start = time.perf_counter()
    failed, finished = [], False
    try:
        failed = _extract_all(args, backend, files, output, archive if to_npz else None, progress)
        finished = True
    finally:
        progress.close()
        if to_npz:  # an interrupted or empty archive is not left behind
            archive.close(keep=finished and len(failed) < len(files))

    written = len(files) - len(failed)
    where = f' to {output}' if written else ''
    print(f'{PROG} features: {written} of {len(files)} files written{where}'
          f'{f", {len(failed)} failed" if failed else ""} '
          f'({time.perf_counter() - start:.1f} s, {KINDS[args.kind][2]}, --device {args.device})')
    return 1 if failed else 0


def _extract_all(args, backend, files, output, archive, progress):
    """Computes and writes every file (to `archive` when given, else to .npy files in the
    folder `output`); returns the files that failed, each reported on stderr."""
    failed = []
    for index, (path, name) in enumerate(files):
        progress.update(index, path.name)
        try:
            audio, sample_rate = read_audio(path)
            if args.sample_rate is not None and sample_rate != args.sample_rate:
                raise CliError(
                    f'{path}: sample rate is {sample_rate} Hz, not --sample-rate '
                    f'{args.sample_rate}; resample it, or omit --sample-rate to use each '
                    "file's own rate")
            if args.mono and audio.shape[1] > 1:
                audio = audio.mean(axis=1, keepdims=True)
            kwargs = front_end_kwargs(args, sample_rate)
            try:
                features = compute_features(backend, args.kind, audio, kwargs, args.threads)
            except (ValueError, TypeError) as error:
                raise CliError(f'{path}: {with_option_hint(error, args)}') from None
            if archive is not None:
                archive.add(name, features)
            else:
                target = output / f'{name}.npy'
                target.parent.mkdir(parents=True, exist_ok=True)
                np.save(target, features)
        except (CliError, RuntimeError, OSError, MemoryError) as error:
            message = str(error) if isinstance(error, CliError) else f'{path}: {error}'
            failed.append(path)
            progress.note(f'{PROG}: error: {message} (skipped)')
    progress.update(len(files))
    return failed


class NpzWriter:
    """Writes arrays into an .npz one at a time (what numpy.savez writes, without holding them
    all in memory or reserving key names), under a temporary name until close(keep=True)."""

    def __init__(self, path):
        import zipfile

        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + '.partial')
        self.zip = zipfile.ZipFile(self.partial, 'w', zipfile.ZIP_STORED, allowZip64=True)

    def add(self, name, array):
        with self.zip.open(f'{name}.npy', 'w', force_zip64=True) as member:
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)

    def close(self, keep=True):
        self.zip.close()
        if keep:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


# ----- bench ---------------------------------------------------------------------------------


def find_checkout():
    """The source checkout holding bench/run.py: the folder above the imported package, or the
    current directory; None when the command runs from an installed package only."""
    import kapre_fast

    for root in (Path(kapre_fast.__file__).resolve().parent.parent, Path.cwd()):
        if all((root / part).exists() for part in ('bench/run.py', 'pyproject.toml',
                                                   'kapre_fast')):
            return root
    return None


def quiet_tensorflow():
    """Keeps TensorFlow's C++ start-up log (CUDA probing and the like) off the terminal, unless
    the user set TF_CPP_MIN_LOG_LEVEL; call before TensorFlow is imported."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')


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

    methods.append(('kapre_fast.cpu', lambda: getattr(cpu, KINDS[kind][0])(
        audio, threads=threads, **kwargs)))

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

    quiet_tensorflow()
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
                layer = getattr(kapre.composed, KINDS[kind][1])(input_shape=audio.shape[1:],
                                                                   **kwargs)
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
        spectrum = tf.signal.stft(signals, spec.win_length, spec.hop_length, spec.n_fft,
                                  window_fn=window_fn, pad_end=spec.pad_end)
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
        magnitude = np.abs(librosa.stft(signals, n_fft=spec.n_fft, hop_length=spec.hop_length,
                                        window=window, center=False))  # (b, c, freq, frames)
        features = magnitude if matrix is None else np.matmul(matrix, magnitude)
        if spec.return_decibel:
            features = np.stack([
                librosa.power_to_db(example, ref=spec.db_ref_value, amin=spec.db_amin,
                                    top_db=spec.db_dynamic_range) for example in features])
        return features.transpose(0, 3, 2, 1)

    return run


def cmd_bench(args) -> int:
    run_args = args.run_args[1:] if args.run_args[:1] == ['--'] else args.run_args
    if args.full:
        checkout = find_checkout()
        if checkout is None:
            raise CliError('bench --full runs the benchmark suite bench/run.py of a kapre_fast '
                           'source checkout, which the installed package does not include: run '
                           'it from the checkout (cd kapre_fast && kapre-fast bench --full), or '
                           'use plain `kapre-fast bench`')
        command = [sys.executable, str(checkout / 'bench' / 'run.py'), *run_args]
        print(f'{PROG} bench --full: {" ".join(command)}', flush=True)
        return subprocess.call(command, cwd=checkout)
    if run_args:
        raise UsageError(f'unrecognized arguments: {" ".join(run_args)} (arguments after -- are '
                         'for bench/run.py and need --full)')
    check_threads(args)
    kwargs = front_end_kwargs(args, args.sample_rate)
    spec = make_front_end(args.kind, kwargs, args)
    audio = np.concatenate([synthesize(args.seconds, args.sample_rate, seed)
                            for seed in range(args.batch)])
    try:
        spec.n_frames(audio.shape[1])
    except ValueError as error:
        raise UsageError(f'--seconds {args.seconds:g} is too short: {error}') from None
    audio_seconds = args.batch * audio.shape[1] / args.sample_rate

    threads = 'all cores' if args.threads is None else f'{args.threads} thread(s)'
    print(f'{PROG} bench: {KINDS[args.kind][2]} ({describe(spec, args.sample_rate)}'
          f'{", dB" if spec.return_decibel else ""}) of {args.batch} x {args.seconds:g} s mono, '
          f'{threads}; best of {args.repeats} after a warm-up call', flush=True)
    unit = 'dB' if spec.return_decibel else 'magnitude'
    diff_title = f'max |diff| vs kapre ({unit})'
    header = f'{"method":<26}{"ms":>10}{"x realtime":>12}{"vs kapre":>10}  {diff_title:>28}'
    rows, kapre_ms, kapre_out = [], None, None
    for label, method in _bench_methods(spec, args.kind, kwargs, audio, args.threads):
        if isinstance(method, str):
            rows.append(f'{label:<26}{method}')
            continue
        try:
            out = np.asarray(method())  # warm-up: tracing, plans, caches
            out, seconds = _timed(method, args.repeats)
        except Exception as error:  # a baseline failing must not stop the table
            rows.append(f'{label:<26}failed: {type(error).__name__}: {error}'.splitlines()[0])
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
    if kapre_ms is None:
        print('(kapre 0.4.1 is not installed: no speed-up or difference columns; '
              'pip install kapre==0.4.1 to compare)')
    return 0


# ----- demo ----------------------------------------------------------------------------------


def cmd_demo(args) -> int:
    from kapre_fast import cpu, reference

    check_threads(args)
    if args.output:
        check_picture_path(args.output)
    sr = args.sample_rate
    audio = synthesize(args.seconds, sr)
    kwargs = dict(n_fft=2048, hop_length=512, sample_rate=sr, n_mels=128, return_decibel=True,
                  input_data_format='channels_last', output_data_format='channels_last')
    spec = make_front_end('mel', kwargs, args)
    if audio.shape[1] < spec.win_length:
        raise UsageError(f'--seconds {args.seconds:g} is shorter than one frame of '
                         f'{spec.win_length} samples at {sr} Hz; use more --seconds')
    print(f'kapre_fast demo: melspectrogram of {args.seconds:g} s of synthesised audio @ {sr} Hz')
    ours, t_ours = _timed(lambda: cpu.melspectrogram(audio, threads=args.threads, **kwargs))
    truth, t_ref = _timed(lambda: reference.melspectrogram(audio, **kwargs), repeats=1)
    print(f'  kapre_fast.cpu       {t_ours * 1e3:8.2f} ms  shape {ours.shape}')
    print(f'  float64 reference    {t_ref * 1e3:8.2f} ms  max |diff| '
          f'{np.abs(ours - truth).max():.4f} dB')
    quiet_tensorflow()
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
        print(f'  kapre 0.4.1          {t_kapre * 1e3:8.2f} ms  max |diff| vs kapre_fast '
              f'{np.abs(ours - theirs).max():.4f} dB')
    if args.output:
        title = (f'kapre_fast demo: mel spectrogram of a chirp with a silent gap '
                 f'({describe(spec, sr)})')
        save_spectrogram(args.output, ours[0], spec, sr, title=title)
        print(f'  picture              {args.output}')
    return 0


# ----- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    summary, examples = __doc__.split('\n\n')[:2]
    parser = argparse.ArgumentParser(
        prog=PROG, description=summary,
        epilog='examples:\n' + examples + '\n\nexit status: 0 success, 1 failure (e.g. an '
               'unreadable file), 2 bad command line (unknown option, invalid value, missing '
               'input)',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version', version=f'%(prog)s {_version()}')
    parser.add_argument('--traceback', action='store_true',
                        help='show the Python traceback of an error (for bug reports)')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    spec = sub.add_parser(
        'spec', help='picture of the spectrogram of an audio file',
        description='Writes a picture of the spectrogram (in dB) of a WAV/FLAC/OGG/... file at '
                    'its own sample rate: time in seconds, frequency in Hz (mel and log kinds: '
                    'Hz placed on the band axis by the bands\' centre frequencies), a dB colour '
                    'bar. A multi-channel file gets one panel per channel (--mono: one panel of '
                    'the channels\' mean).')
    spec.add_argument('audio', metavar='AUDIO', help='audio file (anything soundfile reads)')
    spec.add_argument('-o', '--output', metavar='PICTURE',
                      help='picture to write: .png, .pdf, .svg, ... (default: AUDIO\'s name '
                           'with .png, in the current folder)')
    spec.add_argument('--mono', action='store_true', help='average the channels first')
    spec.add_argument('--title', help='picture title (default: file name and settings)')
    spec.add_argument('--cmap', default='magma', help='matplotlib colour map (default: magma)')
    spec.add_argument('--dpi', type=_positive_int, default=110, help='(default: 110)')
    spec.add_argument('--threads', type=int, metavar='N', help='CPU threads (default: all)')
    add_front_end_arguments(spec, decibel_option=False)
    spec.set_defaults(func=cmd_spec)

    features = sub.add_parser(
        'features', help='features of many audio files to .npy files or one .npz',
        description='Computes the features of every input file (folders are walked recursively '
                    f'for {" ".join(AUDIO_EXTENSIONS)}) and writes each as a float32 array of '
                    'shape (frames, features, channels) - kapre\'s channels_last output without '
                    'the batch axis - to OUT/<path relative to the folder given>.npy, or all of '
                    'them into one OUT.npz keyed by that relative path (without its suffix; '
                    'names that would clash keep their suffix, then get -2, -3, ...). A '
                    'file that cannot be read or computed is reported on stderr and skipped; '
                    'the exit status is then 1 (0 when every file was written).',
        epilog='Sample rate: without --sample-rate every file is computed at its own rate (it '
               'sets the mel/log filterbank frequencies); with --sample-rate R, files at another '
               'rate are refused (reported and skipped): nothing is resampled.')
    features.add_argument('inputs', nargs='+', metavar='INPUT', help='audio files or folders')
    features.add_argument('-o', '--output', required=True, metavar='OUT',
                          help='output folder, or a file ending in .npz')
    features.add_argument('--sample-rate', type=_positive_int, metavar='HZ',
                          help='the rate every file must have (default: each file\'s own)')
    features.add_argument('--mono', action='store_true',
                          help='average each file\'s channels first (output: 1 channel)')
    features.add_argument('--device', choices=('cpu', 'gpu'), default='cpu',
                          help='cpu: kapre_fast.cpu; gpu: kapre_fast.gpu with CuPy (default: cpu)')
    features.add_argument('--threads', type=int, metavar='N',
                          help='CPU threads (default: all cores)')
    features.add_argument('-q', '--quiet', action='store_true',
                          help='no progress bar (there is none either when stderr is not a '
                               'terminal)')
    add_front_end_arguments(features)
    features.set_defaults(func=cmd_features)

    bench = sub.add_parser(
        'bench', help='quick benchmark against kapre, tf.signal and librosa',
        description='Times kapre_fast.cpu (and kapre_fast.gpu when available) against the '
                    'installed baselines - kapre 0.4.1 in tf.function, the same front end '
                    'written with tf.signal in tf.function, librosa - on a batch of synthesised '
                    'mono audio, and prints milliseconds per batch, times realtime, speed-up '
                    'over kapre and the largest difference from kapre\'s output. --full runs '
                    'the whole benchmark suite bench/run.py instead (source checkout only).',
        epilog='Arguments after -- go to bench/run.py, e.g. kapre-fast bench --full -- '
               '--quick')
    bench.add_argument('--seconds', type=_positive_float, default=10.0,
                       help='audio length of each example in seconds (default: 10)')
    bench.add_argument('--batch', type=_positive_int, default=8, help='examples (default: 8)')
    bench.add_argument('--sample-rate', type=_positive_int, default=22050,
                       help='(default: 22050)')
    bench.add_argument('--repeats', type=_positive_int, default=5,
                       help='timed calls per method; the best is shown (default: 5)')
    bench.add_argument('--threads', type=int, metavar='N',
                       help='threads of kapre_fast and TensorFlow (default: all cores)')
    bench.add_argument('--full', action='store_true',
                       help='run the benchmark suite bench/run.py of the source checkout')
    bench.add_argument('run_args', nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    add_front_end_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    demo = sub.add_parser(
        'demo', help='features of synthesised audio, timed against the float64 reference (and '
                     'kapre when installed), and a picture',
        description='Synthesises a chirp with a silent gap, computes its mel spectrogram in dB '
                    'with kapre_fast.cpu, the float64 reference and (when installed) kapre, '
                    'prints the time of each and the largest difference, and writes a picture.')
    demo.add_argument('--seconds', type=_positive_float, default=5.0,
                      help='length of the audio (default: 5)')
    demo.add_argument('--sample-rate', type=_positive_int, default=22050,
                      help='(default: 22050)')
    demo.add_argument('--threads', type=int, metavar='N', help='CPU threads (default: all)')
    demo.add_argument('-o', '--output', default='kapre_fast_demo.png',
                      help='spectrogram picture to write ("" for none; default: '
                           'kapre_fast_demo.png)')
    demo.set_defaults(func=cmd_demo)
    return parser


def _version():
    try:
        from kapre_fast import __version__

        return __version__
    except ImportError:
        return 'unknown'


def _reported_errors():
    """The exception types main() turns into an error message instead of a traceback."""
    types = [CliError, ValueError, TypeError, OSError, RuntimeError, ImportError, MemoryError]
    soundfile = sys.modules.get('soundfile')
    if soundfile is not None and hasattr(soundfile, 'SoundFileError'):
        types.append(soundfile.SoundFileError)
    return tuple(types)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # a malformed command line exits 2 here
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f'\n{PROG}: interrupted', file=sys.stderr)
        return 130
    except Exception as error:
        if args.traceback or not isinstance(error, _reported_errors()):
            raise
        message = str(error) or type(error).__name__
        if not isinstance(error, CliError):
            message = f'{type(error).__name__}: {message}'
        print(f'{PROG}: error: {message}', file=sys.stderr)
        return getattr(error, 'exit_code', 1)


if __name__ == '__main__':
    sys.exit(main())
