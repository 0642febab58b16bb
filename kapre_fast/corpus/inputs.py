"""What to extract: folders (walked recursively), globs, audio files and manifests (CSV/JSONL),
turned into `Item`s with unique ids."""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import math
import os
from pathlib import Path

# Files picked up when a folder or a glob is walked (a file named directly is always tried,
# whatever its name). What soundfile (libsndfile) reads; .mp3 needs libsndfile >= 1.1.
AUDIO_EXTENSIONS = (
    '.wav',
    '.wave',
    '.flac',
    '.ogg',
    '.oga',
    '.opus',
    '.mp3',
    '.aif',
    '.aiff',
    '.aifc',
    '.au',
    '.snd',
    '.caf',
    '.w64',
    '.rf64',
)
MANIFEST_EXTENSIONS = ('.csv', '.jsonl')
_GLOB_CHARACTERS = set('*?[')


class InputError(ValueError):
    """An input that names nothing to extract (missing path, empty folder, bad manifest)."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One recording to extract: its id (the output key), the audio file, and optionally the
    segment of it to read (seconds)."""

    id: str
    path: str
    offset: float | None = None
    duration: float | None = None


def collect(inputs) -> list[Item]:
    """Items of `inputs` (a path or glob, or a list of them), in a stable order.

    A folder is walked recursively for AUDIO_EXTENSIONS (hidden files and folders skipped); a
    glob (`data/**/*.flac`) is expanded recursively; a .csv or .jsonl file is a manifest with a
    `path` column (relative paths are relative to the manifest's folder) and optional `offset`,
    `duration` (seconds) and `id`. An id is the path relative to the folder given (to a glob's
    folder before its first wildcard; a file's own name for a file named directly) without its
    audio suffix; names that would clash keep their suffix, then get -2, -3, ...
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    inputs = [str(text) for text in inputs]
    if not inputs:
        raise InputError('inputs is empty: give folders, files, globs or manifests')
    for text in inputs:
        if not text.strip():  # Path('') is the current folder: never walk it unasked
            raise InputError(
                f'an input is an empty path ({text!r}); name a folder, file, glob '
                'or manifest (. for the current folder)'
            )
    named, manifest_items, seen = [], [], set()
    for text in inputs:
        path = Path(text)
        if path.suffix.lower() in MANIFEST_EXTENSIONS and path.is_file():
            manifest_items.extend(read_manifest(path))
            continue
        if path.is_dir():
            pairs = [(p, p.relative_to(path)) for p in _walk(path)]
        elif path.exists():
            pairs = [(path, Path(path.name))]
        elif _GLOB_CHARACTERS & set(text):
            base = _glob_base(text)
            pairs = [
                (Path(p), Path(p).relative_to(base))
                for p in sorted(glob.glob(text, recursive=True))
                if Path(p).is_file() and Path(p).suffix.lower() in AUDIO_EXTENSIONS
            ]
        else:
            raise InputError(f'{text}: no such file or folder')
        for file, relative in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                named.append((file, relative))
    items = [
        Item(name, str(file))
        for (file, _), name in zip(named, unique_names([relative for _, relative in named]))
    ]
    items += manifest_items
    if not items:
        raise InputError(
            f'no audio files in {" ".join(inputs)} (looked for {", ".join(AUDIO_EXTENSIONS)})'
        )
    _check_unique(items)
    return items


def unique_names(relatives) -> list[str]:
    """Ids for relative paths: without the suffix, or with it where two would clash; then a
    -2, -3, ... ending where still needed."""
    stems = [Path(relative).with_suffix('').as_posix() for relative in relatives]
    clashing = {stem for stem in stems if stems.count(stem) > 1}
    names, used = [], set()
    for relative, stem in zip(relatives, stems):
        name = Path(relative).as_posix() if stem in clashing else stem
        unique, count = name, 1
        while unique in used:
            count += 1
            unique = f'{name}-{count}'
        used.add(unique)
        names.append(unique)
    return names


def read_manifest(path) -> list[Item]:
    """Items of a CSV (with a header row) or JSONL manifest: path, and optional offset,
    duration and id. A row without an id gets one from its path, as for a folder."""
    path = Path(path)
    try:
        if path.suffix.lower() == '.csv':
            with path.open(newline='') as stream:
                rows = list(csv.DictReader(stream))
        else:
            with path.open() as stream:
                rows = []
                for number, line in enumerate(stream, start=1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except ValueError as error:
                            raise InputError(
                                f'{path}, line {number}: not a JSON line ({error}): {line[:80]!r}'
                            ) from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f'{path}: cannot read the manifest: {error}') from None
    folder = path.parent
    parsed = []
    for number, row in enumerate(rows, start=1):
        where = f'{path}, row {number}'
        if not isinstance(row, dict) or not row.get('path'):
            raise InputError(f'{where}: needs a "path" (columns: path, offset, duration, id)')
        file = Path(os.path.normpath(folder / row['path']))  # an absolute path stays as it is
        segment = [_seconds(row.get(name), name, where) for name in ('offset', 'duration')]
        parsed.append((row.get('id') or None, file, segment))
    # Rows without an id are named like files in a folder (relative to the manifest's).
    unnamed = [file for name, file, _ in parsed if name is None]
    names = iter(unique_names([_relative(file, folder) for file in unnamed]))
    return [
        Item(str(name) if name is not None else next(names), str(file), *segment)
        for name, file, segment in parsed
    ]


def _seconds(value, name, where):
    if value is None or value == '':
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(f'{where}: {name} must be a number of seconds, got {value!r}') from None
    if not (seconds >= 0 and math.isfinite(seconds)) or (name == 'duration' and seconds == 0):
        bound = '> 0' if name == 'duration' else '>= 0'
        raise InputError(
            f'{where}: {name} must be a finite number {bound} of seconds, got {value!r}'
        )
    return seconds


def _relative(file, folder):
    try:
        return file.relative_to(folder)
    except ValueError:  # an absolute path elsewhere: its own name
        return Path(file.name)


def _walk(folder):
    return sorted(
        p
        for p in folder.rglob('*')
        if p.suffix.lower() in AUDIO_EXTENSIONS
        and p.is_file()
        and not any(part.startswith('.') for part in p.relative_to(folder).parts)
    )


def _glob_base(pattern):
    """The folder of a glob before its first wildcard ('data/a*/x.wav' -> 'data')."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARACTERS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path('.')


def _check_unique(items):
    ids, repeated = set(), []
    for item in items:
        # An id names a file under the output folder (--format npy): it must stay inside.
        parts = item.id.split('/')
        if not item.id or item.id.startswith('/') or '..' in parts or '' in parts:
            raise InputError(
                f'id {item.id!r} must be a relative path without "..", empty '
                f'parts or a leading "/" ({item.path})'
            )
        if any(ord(character) < 32 or character == '\x7f' for character in item.id):
            raise InputError(
                f'id {item.id!r} holds a control character (NUL, newline, ...), '
                f'which no file or tar member name may hold ({item.path})'
            )
        if item.id in ids:
            repeated.append(item.id)
        ids.add(item.id)
    if repeated:
        raise InputError(
            f'ids must be unique; repeated: {", ".join(sorted(set(repeated))[:5])}'
            ' (give each manifest row its own id)'
        )
