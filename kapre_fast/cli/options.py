"""Front-end options shared by the subcommands, their checks and the error types."""

from __future__ import annotations

import argparse
import math
import re

from kapre_fast.corpus.inputs import AUDIO_EXTENSIONS  # noqa: F401  (help texts)


PROG = 'kapre-fast'

# The front ends the command computes: --kind -> the function of kapre_fast.cpu / .gpu /
# .reference and of kapre.composed, and words for titles.
KINDS = {
    'stft': ('stft_magnitude', 'get_stft_magnitude_layer', 'STFT magnitude'),
    'mel': ('melspectrogram', 'get_melspectrogram_layer', 'mel spectrogram'),
    'log': (
        'log_frequency_spectrogram',
        'get_log_frequency_spectrogram_layer',
        'log-frequency spectrogram',
    ),
}

WINDOWS = ('hann', 'hamming', 'kaiser', 'kaiser_bessel_derived', 'vorbis')

# Front-end keyword arguments (kapre's names) -> the option that sets them, for error hints.
_OPTION_OF = {
    'n_fft': '--n-fft',
    'win_length': '--win-length',
    'hop_length': '--hop-length',
    'window_name': '--window',
    'pad_begin': '--pad-begin',
    'pad_end': '--pad-end',
    'sample_rate': '--sample-rate',
    'n_mels': '--n-mels',
    'mel_f_min': '--mel-f-min',
    'mel_f_max': '--mel-f-max',
    'mel_htk': '--mel-htk',
    'mel_norm': '--mel-norm',
    'log_n_bins': '--log-n-bins',
    'log_f_min': '--log-f-min',
    'log_bins_per_octave': '--log-bins-per-octave',
    'log_spread': '--log-spread',
    'db_amin': '--db-amin',
    'db_ref_value': '--db-ref-value',
    'db_dynamic_range': '--db-dynamic-range',
    'threads': '--threads',
    'compat': '--compat',
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
    name = text[: -len('_window')] if text.endswith('_window') else text
    name = name.replace('-', '_')
    if name not in WINDOWS:
        raise argparse.ArgumentTypeError(
            f'unknown window {text!r}; choose from {", ".join(WINDOWS)}'
        )
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
            f"expected 'slaney', 'none' or a number p > 0 (p-norm), got {text!r}"
        ) from None


def add_front_end_arguments(parser, *, kind_default='mel', decibel_option=True):
    """The front end's options, named after kapre's keyword arguments (n_fft -> --n-fft).

    Filterbank options default to None (= not given: kapre's default applies) so that an option
    that does not belong to the chosen --kind is reported instead of silently ignored.
    """
    group = parser.add_argument_group("front end (kapre.composed arguments; defaults are kapre's)")
    group.add_argument(
        '--kind',
        choices=tuple(KINDS),
        default=kind_default,
        help=f'stft: |STFT|; mel: mel spectrogram; log: log-frequency spectrogram '
        f'(default: {kind_default})',
    )
    group.add_argument(
        '--compat',
        choices=('kapre', 'librosa', 'torchaudio'),
        default='kapre',
        help="whose numbers and defaults: kapre's (default), librosa's "
        "(feature.melspectrogram, power_to_db) or torchaudio's "
        '(transforms.Spectrogram / MelSpectrogram, AmplitudeToDB); every '
        "option left out takes that library's default",
    )
    group.add_argument(
        '--n-fft',
        type=int,
        default=None,
        metavar='N',
        help='FFT size (default: 2048; 400 with --compat torchaudio)',
    )
    group.add_argument(
        '--win-length',
        type=int,
        metavar='N',
        help='window (frame) length in samples (default: --n-fft)',
    )
    group.add_argument(
        '--hop-length',
        type=int,
        metavar='N',
        help='hop between frames in samples (default: --win-length // 4; // 2 '
        'with --compat torchaudio)',
    )
    group.add_argument(
        '--window',
        type=_window_name,
        default=None,
        metavar='NAME',
        help=f'analysis window: {", ".join(WINDOWS)} (default: hann)',
    )
    group.add_argument(
        '--pad-begin',
        action='store_true',
        help="prepend n_fft - hop_length zeros, as kapre's pad_begin=True",
    )
    group.add_argument(
        '--pad-end',
        action='store_true',
        help="zero-pad the end so every sample is in a frame (kapre's pad_end)",
    )
    mel = parser.add_argument_group('mel filterbank (--kind mel)')
    mel.add_argument('--n-mels', type=int, metavar='N', help='mel bands (default: 128)')
    mel.add_argument('--mel-f-min', type=float, metavar='HZ', help='lowest frequency (default: 0)')
    mel.add_argument(
        '--mel-f-max', type=float, metavar='HZ', help='highest frequency (default: sample rate / 2)'
    )
    mel.add_argument(
        '--mel-htk',
        action=argparse.BooleanOptionalAction,
        default=None,
        help="HTK mel formula instead of Slaney's (default: Slaney; HTK with --compat torchaudio)",
    )
    mel.add_argument(
        '--mel-norm',
        type=_mel_norm,
        default=_UNSET,
        metavar='NORM',
        help='filter normalisation: slaney, none or a p-norm p (default: slaney)',
    )
    log = parser.add_argument_group('log-frequency filterbank (--kind log)')
    log.add_argument('--log-n-bins', type=int, metavar='N', help='bins (default: 84)')
    log.add_argument(
        '--log-f-min',
        type=float,
        metavar='HZ',
        help='centre of the lowest bin (default: 32.7 Hz, C1)',
    )
    log.add_argument('--log-bins-per-octave', type=int, metavar='N', help='(default: 12)')
    log.add_argument('--log-spread', type=float, metavar='X', help='bin width (default: 0.125)')
    db = parser.add_argument_group('decibels')
    if decibel_option:
        db.add_argument(
            '--db',
            action=argparse.BooleanOptionalAction,
            default=True,
            help='decibels as kapre computes them (return_decibel); --no-db for the '
            'linear magnitude (default: --db)',
        )
    db.add_argument('--db-amin', type=float, metavar='X', help='floor before the log (1e-5)')
    db.add_argument('--db-ref-value', type=float, metavar='X', help='reference level (1.0)')
    db.add_argument(
        '--db-dynamic-range',
        type=float,
        metavar='DB',
        help="values more than this below each file's peak are clamped (80)",
    )


def front_end_kwargs(args, sample_rate, *, decibel=None) -> dict:
    """kapre keyword arguments from the parsed options (input and output channels_last)."""
    kind = args.kind
    kwargs = {'input_data_format': 'channels_last', 'output_data_format': 'channels_last'}
    compat = getattr(args, 'compat', 'kapre')
    if compat != 'kapre':  # the library's defaults for what is left out (spec.library_defaults)
        kwargs['compat'] = compat
    for name in ('n_fft', 'win_length', 'hop_length'):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.window is not None:
        kwargs['window_name'] = args.window
    for name in ('pad_begin', 'pad_end'):  # kapre's own: a preset refuses them by name
        if getattr(args, name):
            kwargs[name] = True
    kwargs['return_decibel'] = args.db if decibel is None else decibel
    for name in ('db_amin', 'db_ref_value', 'db_dynamic_range'):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    given = {
        name for name in _MEL_OPTIONS if name != 'mel_norm' and getattr(args, name) is not None
    }
    if args.mel_norm is not _UNSET:
        given.add('mel_norm')
    given_log = {name for name in _LOG_OPTIONS if getattr(args, name) is not None}
    wrong = (given if kind != 'mel' else set()) | (given_log if kind != 'log' else set())
    if wrong:
        options = ', '.join(sorted(_OPTION_OF[name] for name in wrong))
        raise UsageError(
            f'{options} only {"applies" if len(wrong) == 1 else "apply"} to --kind '
            f'{"mel" if wrong & set(_MEL_OPTIONS) else "log"}, not --kind {kind}'
        )
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
