"""Where records go: tar shards (the default), one .npy per record, or one .npz.

Every writer puts a record under a temporary name and makes it visible with one atomic rename
once complete: a killed run leaves `*.partial` files, never a truncated shard or array under its
final name. `commit()` is that rename; only after it does the run manifest name the record.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import io
import os
import re
import tarfile
import tempfile
import zipfile
from pathlib import Path

PARTIAL = '.partial'
SHARD_NAME = 'shard-{:06d}.tar'
SHARD_PATTERN = re.compile(r'shard-(\d{6,})\.tar')


def fsync_folder(folder):
    """Makes a rename in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class TarShards:
    """WebDataset-style tar shards: OUT/shard-NNNNNN.tar, members `<id>.npy`, `shard_size`
    items each (all records of an item in one shard). Members carry no time, owner or mode of
    the writing machine, so that the same records give the same bytes on any engine."""

    def __init__(self, folder: Path, shard_size: int, first_index: int = 0):
        self.folder, self.shard_size, self.index = Path(folder), shard_size, first_index
        self.tar = self.stream = None
        self.items = 0

    def add(self, records) -> list[dict]:
        """Appends the records of one item to the open shard; their locations (shard filled
        in by commit)."""
        if self.tar is None:
            self.stream = open(self._path(PARTIAL), 'wb')
            self.tar = tarfile.open(fileobj=self.stream, mode='w', format=tarfile.PAX_FORMAT)
        places = []
        for record in records:
            info = tarfile.TarInfo(f'{record.id}.npy')
            info.size, info.mtime, info.mode = len(record.payload), 0, 0o644
            self.tar.addfile(info, io.BytesIO(record.payload))
            # The member's data ends the archive so far, padded to a 512-byte block.
            start = self.tar.offset - -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            places.append({'shard': None, 'offset': start, 'bytes': info.size})
        self.items += 1
        return places

    def full(self) -> bool:
        return self.items >= self.shard_size

    def commit(self) -> str | None:
        """Closes the open shard and renames it into place; its name (None if none was open)."""
        if self.tar is None:
            return None
        self.tar.close()
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        name = SHARD_NAME.format(self.index)
        os.replace(self._path(PARTIAL), self.folder / name)
        fsync_folder(self.folder)
        self.tar = self.stream = None
        self.items, self.index = 0, self.index + 1
        return name

    def abort(self):
        if self.tar is not None:
            self.stream.close()
            self._path(PARTIAL).unlink(missing_ok=True)
            self.tar = self.stream = None

    def _path(self, suffix=''):
        return self.folder / (SHARD_NAME.format(self.index) + suffix)


class NpyFiles:
    """One OUT/<id>.npy per record (small jobs; what `kapre-fast features` wrote before). Each
    file is written, fsynced and renamed into place as soon as it is computed; `shard_size`
    items make one commit of the manifest (which first makes the renames durable)."""

    def __init__(self, folder: Path, shard_size: int):
        self.folder, self.shard_size, self.items = Path(folder), shard_size, 0
        self.touched = set()  # folders with renames not yet fsynced

    def add(self, records) -> list[dict]:
        """Writes the records of one item; an OSError (a name too long for the file system)
        removes those of its records already written before it is raised."""
        places, written = [], []
        try:
            for record in records:
                relative = f'{record.id}.npy'
                target = self.folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + PARTIAL)
                with open(partial, 'wb') as stream:
                    stream.write(record.payload)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(partial, target)
                written.append(target)
                self.touched.add(target.parent)
                places.append({'shard': relative})
        except OSError:
            for target in written:
                target.unlink(missing_ok=True)
            raise
        self.items += 1
        return places

    def full(self) -> bool:
        return self.items >= self.shard_size

    def commit(self):
        for folder in sorted(self.touched):
            fsync_folder(folder)
        self.touched.clear()
        self.items = 0
        return None

    def abort(self):
        pass


class NpzArchive:
    """All records in one .npz (keys: ids), kept under a temporary name of its own until the run
    ends (two runs writing the same .npz at once never share a file); no resuming. What
    numpy.savez writes, without holding every array in memory. The temporary file is locked
    while it is written, so that a later run removes only those whose writer is gone."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.partial, self.descriptor = unique_partial(self.path)
        self.stream = os.fdopen(self.descriptor, 'w+b')
        self.zip = zipfile.ZipFile(self.stream, 'w', zipfile.ZIP_STORED, allowZip64=True)
        self.written = 0

    def add(self, records) -> list[dict]:
        for record in records:
            with self.zip.open(f'{record.id}.npy', 'w', force_zip64=True) as member:
                member.write(record.payload)
        self.written += len(records)
        return [{'shard': self.path.name} for _ in records]

    def full(self) -> bool:
        return False

    def finish(self) -> bool:
        """Closes the archive and makes it durable under its temporary name; whether it holds
        anything (an empty one is deleted: commit() keeps the previous archive)."""
        self.zip.close()
        self.stream.flush()
        os.fsync(self.stream.fileno())
        if not self.written:
            self.abort()
        return bool(self.written)

    def commit(self):
        """Renames the archive into place (Store.commit calls it with the manifest)."""
        os.replace(self.partial, self.path)
        self.stream.close()  # releases its lock
        return None

    def abort(self):
        with contextlib.suppress(ValueError, OSError):
            self.zip.close()
        self.partial.unlink(missing_ok=True)
        self.stream.close()


def unique_partial(path: Path):
    """(a new temporary file beside `path`: .<name>.<random>.partial, its descriptor, locked
    (flock) for as long as it stays open)."""
    descriptor, name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=PARTIAL, dir=path.parent)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return Path(name), descriptor


def remove_orphans(path: Path):
    """Deletes the temporary files of `path` whose writer is gone (their lock is free)."""
    for partial in path.parent.glob(f'.{glob.escape(path.name)}.*{PARTIAL}'):
        try:
            descriptor = os.open(partial, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            partial.unlink(missing_ok=True)
        except BlockingIOError:
            pass  # a run writing it now
        finally:
            os.close(descriptor)
