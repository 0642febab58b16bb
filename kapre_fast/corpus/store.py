"""A run's output folder: its settings, its manifest (what is done), the lock that keeps two
runs apart, and resuming: cleaning up after a killed run and skipping what is done.

The manifest (OUT/manifest.jsonl) gets one JSON line per record written and per item that
failed: id, item (the input's id; differs from id for chunks), source, status ("ok" or
"failed"), frames, seconds, shard (file name relative to OUT), offset (of the .npy member in a
tar shard), bytes and sha256 (of the .npy data), error. Lines are appended (every write
checked; a failed append is cut back and raised) and fsynced only after the records they name
were made durable and renamed into place, so every "ok" line points at complete data. Every
run appends to it; the last line of an id wins (a failure retried later may succeed). A rerun
re-verifies the records listed (present, the right tar member at each offset) and redoes the
items of those that are not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tarfile
from pathlib import Path

from kapre_fast.corpus.writers import (
    PARTIAL,
    SHARD_PATTERN,
    NpyFiles,
    NpzArchive,
    TarShards,
    fsync_folder,
    remove_orphans,
    unique_partial,
)

MANIFEST = 'manifest.jsonl'
SETTINGS = 'settings.json'
FORMATS = ('shards', 'npy', 'npz')
# Errors writing one item's records that fail that item only (its id makes a file name the
# file system refuses); any other OSError (disk full, read-only) stops the run.
_ITEM_WRITE_ERRORS = (errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL, errno.ENOTDIR, errno.EISDIR)


def manifest_path(output, format):
    output = Path(output)
    return output.with_suffix('.manifest.jsonl') if format == 'npz' else output / MANIFEST


class DamagedOutputError(ValueError):
    """An output that does not hold what its manifest says (a line that is not a record, a
    missing, truncated, swapped or altered file); the message names the file and the record."""


# Keys of every manifest line, and their types (an "ok" line's shard is a file name).
_KEYS = {'id': str, 'item': str, 'status': str}
_OK_KEYS = {'shard': str, 'frames': int}
_OPTIONAL = {'offset': int, 'bytes': int, 'sha256': str, 'seconds': (int, float)}


def read_manifest(path) -> list[dict]:
    """The lines of a manifest, without a torn last line (a run killed while appending);
    DamagedOutputError naming the file and line for one that is not a record."""
    entries = []
    try:
        with open(path, 'rb') as stream:
            for number, line in enumerate(stream, start=1):
                if not line.endswith(b'\n'):
                    break
                entries.append(_record(line, f'{path}, line {number}'))
    except FileNotFoundError:
        pass
    return entries


def _record(line, where):
    try:
        entry = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedOutputError(f'{where}: not a JSON line ({error}): {line[:80]!r}') from None
    if not isinstance(entry, dict):
        raise DamagedOutputError(f'{where}: not a record (a JSON object): {line[:80]!r}')
    required = dict(_KEYS, **(_OK_KEYS if entry.get('status') == 'ok' else {}))
    for key, kind in list(required.items()) + [
        (key, kind) for key, kind in _OPTIONAL.items() if entry.get(key) is not None
    ]:
        if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
            raise DamagedOutputError(
                f'{where}: "{key}" must be a {getattr(kind, "__name__", "number")}'
                f', got {entry.get(key)!r}'
            )
    if entry['status'] not in ('ok', 'failed'):
        raise DamagedOutputError(
            f'{where}: "status" must be "ok" or "failed", got {entry["status"]!r}'
        )
    if entry['status'] == 'failed' and not isinstance(entry.get('error'), str):
        raise DamagedOutputError(f'{where}: a failed record needs its "error"')
    return entry


def member_problem(stream, entry):
    """Why the tar member the manifest line `entry` names is not at its offset in the open
    shard `stream` (truncated, no tar header, another member, another size), or None."""
    offset, size = entry['offset'], entry['bytes']
    end = stream.seek(0, os.SEEK_END)
    if offset < tarfile.BLOCKSIZE or offset + size > end:
        return f'ends at byte {end}, before the member at {offset} ({size} bytes): truncated'
    stream.seek(offset - tarfile.BLOCKSIZE)
    try:
        header = tarfile.TarInfo.frombuf(
            stream.read(tarfile.BLOCKSIZE), tarfile.ENCODING, 'surrogateescape'
        )
    except tarfile.HeaderError as error:
        return f'has no tar header before byte {offset} ({error})'
    # The header's own name field: the name in ASCII, cut to 100 bytes (PAX holds the rest).
    name = f'{entry["id"]}.npy'.encode('ascii', 'replace')[:100].decode('ascii')
    if header.name != name or header.size != size:
        return (
            f'holds {header.name!r} ({header.size} bytes) at byte {offset}, not {name!r} '
            f'({size} bytes)'
        )
    return None


def payload_problem(data, entry):
    """Why `data` is not the record the manifest line `entry` lists (size, SHA-256), or None."""
    if 'bytes' in entry and len(data) != entry['bytes']:
        return f'holds {len(data)} bytes, not {entry["bytes"]}'
    digest = entry.get('sha256')
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        return 'its bytes differ from those written (SHA-256 mismatch)'
    return None


def latest(entries) -> tuple[dict, dict]:
    """(id -> its "ok" line, item -> error of items that failed and never succeeded since), in
    manifest order."""
    done, failed = {}, {}
    for entry in entries:
        if entry['status'] == 'ok':
            done[entry['id']] = entry
            failed.pop(entry['item'], None)
        else:
            failed[entry['item']] = entry['error']
    return done, failed


class Store:
    """Opens OUT for a run of `settings` (a dict): refuses a run already there with other
    settings, or any when resume is False; removes what a killed run left; knows what is done."""

    def __init__(self, output, format, settings: dict, *, shard_size=1000, resume=True):
        if format not in FORMATS:
            raise ValueError(f'format must be one of {", ".join(FORMATS)}, got {format!r}')
        self.output, self.format = Path(output), format
        self.manifest = manifest_path(self.output, format)
        self.pending, self.done_items, self.redone, self.lock = [], set(), set(), None
        if format == 'npz':
            # One archive, written whole under a temporary name of its own with its manifest:
            # no resuming; the previous pair is replaced when the run ends.
            self.output.parent.mkdir(parents=True, exist_ok=True)
            remove_orphans(self.output)
            remove_orphans(self.manifest)
            self.writer = NpzArchive(self.output)
            return
        if self.output.exists() and not self.output.is_dir():
            raise ValueError(f'output {self.output} exists and is not a folder')
        self.output.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._open_run(dict(settings, format=format), resume, shard_size)
        except BaseException:
            self.close(completed=False)
            raise

    def _open_run(self, settings, resume, shard_size):
        saved = self.output / SETTINGS
        entries = read_manifest(self.manifest)
        if saved.exists() or entries:
            if not resume:
                raise FileExistsError(
                    f'output {self.output} already holds a run ({MANIFEST}); '
                    'resume it, or choose another output folder'
                )
            previous = json.loads(saved.read_text()) if saved.exists() else None
            if previous != settings:
                changed = sorted(
                    key
                    for key in set(settings) | set(previous or {})
                    if (previous or {}).get(key) != settings.get(key)
                )
                raise ValueError(
                    f'output {self.output} holds a run with other settings '
                    f'({", ".join(changed)} differ); choose another output folder'
                )
            if self.manifest.exists():
                self._truncate_torn_line()
        else:
            _write_atomically(saved, json.dumps(settings, indent=1, sort_keys=True) + '\n')
        done, _ = latest(entries)
        done, self.redone = self._verified(done)
        self.done_items = {entry['item'] for entry in done.values()}
        shards = {entry['shard'] for entry in done.values()}
        self._remove_leftovers(shards)
        if self.format == 'shards':
            numbers = [
                int(SHARD_PATTERN.fullmatch(name).group(1))
                for name in shards
                if SHARD_PATTERN.fullmatch(name)
            ]
            self.writer = TarShards(self.output, shard_size, max(numbers, default=-1) + 1)
        else:
            self.writer = NpyFiles(self.output, shard_size)

    def _verified(self, done):
        """(the records of `done` whose files still hold them - present, long enough, a tar
        member of the right name and size at each offset -, the items of the others: their
        records are redone)."""
        by_shard = {}
        for entry in done.values():
            by_shard.setdefault(entry['shard'], []).append(entry)
        damaged = set()
        for shard, entries in by_shard.items():
            path = self.output / shard
            try:
                stream = open(path, 'rb')
            except OSError:  # missing (deleted), or not a file
                damaged.update(entry['item'] for entry in entries)
                continue
            with stream:
                size = os.fstat(stream.fileno()).st_size
                for entry in entries:
                    if 'offset' in entry:
                        bad = member_problem(stream, entry) is not None
                    else:
                        bad = 'bytes' in entry and size != entry['bytes']
                    if bad:
                        damaged.add(entry['item'])
        kept = {id: entry for id, entry in done.items() if entry['item'] not in damaged}
        return kept, damaged

    def add(self, result):
        """Writes one item's records (or notes its failure); commits when a shard is full.
        Returns the item's error (None: written)."""
        item = result.item
        common = {'item': item.id, 'source': item.path}
        error_text = result.error
        if result.error is not None:
            self.pending.append(
                {
                    'id': item.id,
                    **common,
                    'status': 'failed',
                    'frames': None,
                    'shard': None,
                    'error': result.error,
                }
            )
        else:
            try:
                places = self.writer.add(result.records)
            except OSError as error:
                if error.errno not in _ITEM_WRITE_ERRORS:
                    raise  # the output's fault (disk full, read-only): the run stops
                error_text = (
                    f'{item.path}: cannot write its features as {error.filename}: {error.strerror}'
                )
                self.pending.append(
                    {
                        'id': item.id,
                        **common,
                        'status': 'failed',
                        'frames': None,
                        'shard': None,
                        'error': error_text,
                    }
                )
                places = []
            for record, place in zip(result.records, places):
                self.pending.append(
                    {
                        'id': record.id,
                        **common,
                        'status': 'ok',
                        'frames': record.frames,
                        'seconds': round(record.seconds, 6),
                        **place,
                        'bytes': len(record.payload),
                        'sha256': hashlib.sha256(record.payload).hexdigest(),
                        'error': None,
                    }
                )
        if self.writer.full():
            self.commit()
        return error_text

    def commit(self):
        """Renames the open shard into place, then appends its lines to the manifest."""
        if self.format == 'npz':
            return self._commit_npz()
        name = self.writer.commit()
        for line in self.pending:
            if line['status'] == 'ok' and line['shard'] is None:
                line['shard'] = name
        if self.pending:
            data = ''.join(json.dumps(line) + '\n' for line in self.pending).encode()
            append_durably(self.manifest, data)
        self.pending = []

    def _commit_npz(self):
        """The archive and its manifest, each complete and durable under a temporary name,
        renamed into place together (under a lock of their folder: two runs ending at once
        never leave one's archive with the other's manifest)."""
        kept = self.writer.finish()
        partial, descriptor = unique_partial(self.manifest)
        try:
            data = ''.join(json.dumps(line) + '\n' for line in self.pending).encode()
            append_durably(partial, data)
            folder = os.open(self.output.parent, os.O_RDONLY)
            try:
                fcntl.flock(folder, fcntl.LOCK_EX)
                if kept:
                    self.writer.commit()
                os.replace(partial, self.manifest)
                os.fsync(folder)
            finally:
                os.close(folder)
        finally:
            os.close(descriptor)
            partial.unlink(missing_ok=True)
        self.pending = []

    def close(self, completed=True):
        """Commits what is written (completed), or after an error drops the open shard (.npy
        files, each already in place, are listed)."""
        try:
            if completed:
                self.commit()
            elif isinstance(getattr(self, 'writer', None), NpyFiles):
                # Its files are in place: list them (and the failures), not redo them.
                with contextlib.suppress(OSError):
                    self.commit()
            elif getattr(self, 'writer', None) is not None:
                self.writer.abort()
        finally:
            if self.lock is not None:
                os.close(self.lock)
                self.lock = None

    def _lock(self):
        # flock on the folder itself: no lock file is left behind; released if the process dies.
        self.lock = os.open(self.output, os.O_RDONLY)
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock)
            self.lock = None
            raise RuntimeError(f'output {self.output} is being written by another run') from None

    def _truncate_torn_line(self):
        """Cuts a half-appended last line, so the next append starts on a line of its own."""
        with open(self.manifest, 'r+b') as stream:
            end = stream.seek(0, os.SEEK_END)
            position = end
            while position > 0:
                start = max(0, position - 65536)
                stream.seek(start)
                newline = stream.read(position - start).rfind(b'\n')
                if newline >= 0:
                    position = start + newline + 1
                    break
                position = start
            if position != end:
                stream.truncate(position)

    def _remove_leftovers(self, referenced):
        """Partial files of a killed run, and shards it renamed into place but never listed in
        the manifest (killed between the two): their items are redone, never counted twice."""
        for path in self.output.rglob(f'*{PARTIAL}'):
            path.unlink()
        if self.format == 'shards':
            for path in self.output.glob('shard-*.tar'):
                if SHARD_PATTERN.fullmatch(path.name) and path.name not in referenced:
                    path.unlink()


def append_durably(path, data: bytes):
    """Appends `data` to `path` and fsyncs it, or raises OSError naming the file with the
    file cut back to its previous end: a short write is continued, a failed one (disk full)
    leaves no torn line behind for later appends to follow."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        end = os.fstat(descriptor).st_size
        try:
            view = memoryview(data)
            while view:
                written = os.write(descriptor, view)
                if written <= 0:
                    raise OSError(errno.EIO, 'write() wrote nothing')
                view = view[written:]
            os.fsync(descriptor)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, end)
                os.fsync(descriptor)
            raise OSError(
                error.errno,
                f'{path}: appending {len(data)} bytes failed '
                f'({error.strerror or error}); the records of that commit are not '
                'listed (a rerun redoes them)',
            ) from error
    finally:
        os.close(descriptor)


def _write_atomically(path, text):
    """`text` as the file `path`, durable (fsynced, then renamed into place and the folder
    fsynced) before it returns."""
    partial = path.with_name(path.name + PARTIAL)
    with open(partial, 'w') as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)
    fsync_folder(path.parent)
