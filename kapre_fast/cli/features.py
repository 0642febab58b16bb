"""`kapre-fast features`: batch feature extraction to .npy files or one .npz."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from kapre_fast.cli.audio import compute_features, load_backend, read_audio
from kapre_fast.cli.options import AUDIO_EXTENSIONS, CliError, KINDS, PROG, UsageError, check_options, check_threads, front_end_kwargs, with_option_hint


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
