"""`kapre-fast features`: kapre_fast.corpus.extract from the command line (.npy files, tar
shards or one .npz, a manifest, resuming, the local or the Ray engine)."""

from __future__ import annotations

import sys
from pathlib import Path

from kapre_fast import corpus
from kapre_fast.cli.audio import load_backend
from kapre_fast.cli.options import (
    KINDS,
    PROG,
    UsageError,
    check_options,
    check_threads,
    front_end_kwargs,
    with_option_hint,
)

# Failures printed one per line; the rest are counted (all are in the manifest).
_SHOWN_FAILURES = 20


def cmd_features(args) -> int:
    output = Path(args.output)
    format = 'npz' if output.suffix.lower() == '.npz' else args.format
    if format == 'npz' and args.format != 'npy':
        raise UsageError(f'--format {args.format} writes a folder; -o {output} names an .npz file')
    if format != 'npz' and output.exists() and not output.is_dir():
        raise UsageError(
            f'-o {output}: exists and is not a folder (name an output folder, or a '
            'file ending in .npz)'
        )
    if args.device == 'gpu' and args.threads is not None:
        raise UsageError('--threads sets CPU threads; it does not apply to --device gpu')
    if args.address is not None and args.engine != 'ray':
        raise UsageError('--address joins a Ray cluster: add --engine ray')
    check_threads(args)
    check_options(args, args.sample_rate)
    load_backend(args.device)  # says what is missing for --device gpu before any file is read
    kwargs = front_end_kwargs(args, args.sample_rate)
    kwargs.pop('sample_rate', None)  # extract()'s own argument: the rate files are resampled to
    try:
        summary = corpus.extract(
            args.inputs,
            output,
            args.engine,
            function=KINDS[args.kind][0],
            sample_rate=args.sample_rate,
            mono=args.mono,
            chunk_seconds=args.chunk_seconds,
            format=format,
            shard_size=args.shard_size,
            workers=args.workers,
            threads=args.threads,
            device=args.device,
            address=args.address,
            resume=args.resume,
            progress=not args.quiet and sys.stderr.isatty(),
            **kwargs,
        )
    except corpus.InputError as error:
        raise UsageError(str(error)) from None
    except FileExistsError as error:
        raise UsageError(f'{error} (drop --no-resume to continue it)') from None

    for _, _, message in summary.failed[:_SHOWN_FAILURES]:
        print(f'{PROG}: error: {with_option_hint(message, args)} (skipped)', file=sys.stderr)
    if len(summary.failed) > _SHOWN_FAILURES:
        print(
            f'{PROG}: ... and {len(summary.failed) - _SHOWN_FAILURES} more failed files '
            f'(all are in the manifest)',
            file=sys.stderr,
        )
    print(f'{PROG} features: {summary} ({KINDS[args.kind][2]}, --device {args.device})')
    return 1 if summary.failed else 0
