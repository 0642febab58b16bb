"""The argument parser and the entry point, which turns errors into one-line messages."""

from __future__ import annotations

import argparse
import sys

from kapre_fast._loader import pip_install_hint
from kapre_fast.cli.bench import cmd_bench
from kapre_fast.cli.demo import cmd_demo
from kapre_fast.cli import export_command
from kapre_fast.cli.features import cmd_features
from kapre_fast.cli.options import (
    AUDIO_EXTENSIONS,
    CliError,
    PROG,
    _positive_float,
    _positive_int,
    add_front_end_arguments,
)
from kapre_fast.cli.spec_command import cmd_spec


def build_parser() -> argparse.ArgumentParser:
    # The package docstring (kapre_fast/cli/__init__.py) is the command's own help text.
    summary, examples = sys.modules['kapre_fast.cli'].__doc__.split('\n\n')[:2]
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=summary,
        epilog='examples:\n' + examples + '\n\nexit status: 0 success, 1 failure (e.g. an '
        'unreadable file), 2 bad command line (unknown option, invalid value, missing '
        'input)',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--version', action='version', version=f'%(prog)s {_version()}')
    parser.add_argument(
        '--traceback',
        action='store_true',
        help='show the Python traceback of an error (for bug reports)',
    )
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    spec = sub.add_parser(
        'spec',
        help='picture of the spectrogram of an audio file',
        description='Writes a picture of the spectrogram (in dB) of a WAV/FLAC/OGG/... file at '
        'its own sample rate: time in seconds, frequency in Hz (mel and log kinds: '
        "Hz placed on the band axis by the bands' centre frequencies), a dB colour "
        'bar. A multi-channel file gets one panel per channel (--mono: one panel of '
        "the channels' mean).",
    )
    spec.add_argument('audio', metavar='AUDIO', help='audio file (anything soundfile reads)')
    spec.add_argument(
        '-o',
        '--output',
        metavar='PICTURE',
        help="picture to write: .png, .pdf, .svg, ... (default: AUDIO's name "
        'with .png, in the current folder)',
    )
    spec.add_argument('--mono', action='store_true', help='average the channels first')
    spec.add_argument('--title', help='picture title (default: file name and settings)')
    spec.add_argument('--cmap', default='magma', help='matplotlib colour map (default: magma)')
    spec.add_argument('--dpi', type=_positive_int, default=110, help='(default: 110)')
    spec.add_argument('--threads', type=int, metavar='N', help='CPU threads (default: all)')
    add_front_end_arguments(spec, decibel_option=False)
    spec.set_defaults(func=cmd_spec)

    features = sub.add_parser(
        'features',
        help='features of many audio files: .npy files, tar shards or one .npz',
        description='Computes the features of every input (folders are walked recursively '
        f'for {" ".join(AUDIO_EXTENSIONS)}; globs; .csv/.jsonl manifests with path '
        'and optional offset, duration, id) with kapre_fast.corpus.extract and '
        'writes each as a float32 array of shape (frames, features, channels) - '
        "kapre's channels_last output without the batch axis - keyed by its id: "
        'the path relative to the folder given, without its suffix (names that '
        "would clash keep their suffix, then get -2, -3, ...), or the manifest's "
        'id. --format npy (default): OUT/<id>.npy; --format shards: WebDataset-style '
        'OUT/shard-NNNNNN.tar of <id>.npy members (for a large corpus a training job '
        'streams); -o OUT.npz: one archive. OUT/manifest.jsonl lists every array '
        'written and every file that failed; a rerun into OUT skips what it lists as '
        'written (a killed run is resumed; load the result with '
        'kapre_fast.corpus.open(OUT)). A file that cannot be read or computed is '
        'reported on stderr and skipped; the exit status is then 1 (0 when every '
        'file was written).',
        epilog='Sample rate: without --sample-rate every file is computed at its own rate (it '
        'sets the mel/log filterbank frequencies); with --sample-rate R, files at another '
        'rate are resampled to R (soxr). Engines: local (a process pool: --workers '
        'processes of --threads threads, by default one process per core) or ray (Ray '
        'Data: ' + pip_install_hint('ray') + '; --address joins a running cluster, '
        'otherwise Ray starts on this machine).',
    )
    features.add_argument(
        'inputs',
        nargs='+',
        metavar='INPUT',
        help='audio files, folders, globs or manifests (.csv, .jsonl)',
    )
    features.add_argument(
        '-o',
        '--output',
        required=True,
        metavar='OUT',
        help='output folder, or a file ending in .npz',
    )
    features.add_argument(
        '--format',
        choices=('npy', 'shards'),
        default='npy',
        help='npy: one .npy per file; shards: tar shards (default: npy; '
        '-o OUT.npz writes one .npz)',
    )
    features.add_argument(
        '--shard-size',
        type=_positive_int,
        default=1000,
        metavar='N',
        help='files per tar shard (and per manifest commit) (default: 1000)',
    )
    features.add_argument(
        '--sample-rate',
        type=_positive_int,
        metavar='HZ',
        help="resample every file to this rate (default: each file's own)",
    )
    features.add_argument(
        '--mono', action='store_true', help="average each file's channels first (output: 1 channel)"
    )
    features.add_argument(
        '--chunk-seconds',
        type=_positive_float,
        metavar='S',
        help='cut each file into pieces of S seconds (ids <id>#0, <id>#1, ...; '
        'the last piece zero-padded) (default: whole files)',
    )
    features.add_argument(
        '--engine',
        choices=('local', 'ray'),
        default='local',
        help='local: process pool on this machine; ray: Ray Data (default: local)',
    )
    features.add_argument(
        '--address',
        metavar='ADDRESS',
        help='Ray cluster to join, e.g. auto or ray://head:10001 (--engine ray)',
    )
    features.add_argument(
        '--workers',
        type=_positive_int,
        metavar='N',
        help='processes (local) or concurrent Ray tasks (default: one per core)',
    )
    features.add_argument(
        '--resume',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='continue a run already in OUT (same settings); --no-resume '
        'refuses to write into one (default: --resume)',
    )
    features.add_argument(
        '--device',
        choices=('cpu', 'gpu'),
        default='cpu',
        help='cpu: kapre_fast.cpu; gpu: kapre_fast.gpu with CuPy (default: cpu)',
    )
    features.add_argument(
        '--threads', type=int, metavar='N', help='CPU threads per worker (default: cores / workers)'
    )
    features.add_argument(
        '-q',
        '--quiet',
        action='store_true',
        help='no progress bar (there is none either when stderr is not a terminal)',
    )
    add_front_end_arguments(features)
    features.set_defaults(func=cmd_features)

    bench = sub.add_parser(
        'bench',
        help='quick benchmark against kapre, tf.signal and librosa',
        description='Times kapre_fast.cpu (and kapre_fast.gpu when available) against the '
        'installed baselines - kapre 0.4.1 in tf.function, the same front end '
        'written with tf.signal in tf.function, librosa - on a batch of synthesised '
        'mono audio, and prints milliseconds per batch, times realtime, speed-up '
        "over kapre and the largest difference from kapre's output. --full runs "
        'the whole benchmark suite bench/run.py instead (source checkout only).',
        epilog='Arguments after -- go to bench/run.py, e.g. kapre-fast bench --full -- --quick',
    )
    bench.add_argument(
        '--seconds',
        type=_positive_float,
        default=10.0,
        help='audio length of each example in seconds (default: 10)',
    )
    bench.add_argument('--batch', type=_positive_int, default=8, help='examples (default: 8)')
    bench.add_argument('--sample-rate', type=_positive_int, default=22050, help='(default: 22050)')
    bench.add_argument(
        '--repeats',
        type=_positive_int,
        default=5,
        help='timed calls per method; the best is shown (default: 5)',
    )
    bench.add_argument(
        '--threads',
        type=int,
        metavar='N',
        help='threads of kapre_fast and TensorFlow (default: all cores)',
    )
    bench.add_argument(
        '--full',
        action='store_true',
        help='run the benchmark suite bench/run.py of the source checkout',
    )
    bench.add_argument('run_args', nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    add_front_end_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    demo = sub.add_parser(
        'demo',
        help='features of synthesised audio, timed against the float64 reference (and '
        'kapre when installed), and a picture',
        description='Synthesises a chirp with a silent gap, computes its mel spectrogram in dB '
        'with kapre_fast.cpu, the float64 reference and (when installed) kapre, '
        'prints the time of each and the largest difference, and writes a picture.',
    )
    demo.add_argument(
        '--seconds', type=_positive_float, default=5.0, help='length of the audio (default: 5)'
    )
    demo.add_argument('--sample-rate', type=_positive_int, default=22050, help='(default: 22050)')
    demo.add_argument('--threads', type=int, metavar='N', help='CPU threads (default: all)')
    demo.add_argument(
        '-o',
        '--output',
        default='kapre_fast_demo.png',
        help='spectrogram picture to write ("" for none; default: kapre_fast_demo.png)',
    )
    demo.set_defaults(func=cmd_demo)
    export_command.add_parser(sub)
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
