"""Where records go: tar shards (the default), one .npy per record, or one .npz.

Every writer puts a record under a temporary name and makes it visible with one atomic rename
once complete: a killed run leaves `*.partial` files, never a truncated shard or array under its
final name. `commit()` is that rename; only after it does the run manifest name the record.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
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
    file is renamed into place as soon as it is written; `shard_size` items make one commit of
    the manifest (a rerun after a crash rewrites the same files)."""

    def __init__(self, folder: Path, shard_size: int):
        self.folder, self.shard_size, self.items = Path(folder), shard_size, 0

    def add(self, records) -> list[dict]:
        places = []
        for record in records:
            relative = f'{record.id}.npy'
            target = self.folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + PARTIAL)
            partial.write_bytes(record.payload)
            os.replace(partial, target)
            places.append({'shard': relative})
        self.items += 1
        return places

    def full(self) -> bool:
        return self.items >= self.shard_size

    def commit(self):
        self.items = 0
        return None

    def abort(self):
        pass


class NpzArchive:
    """All records in one .npz (keys: ids), kept under a temporary name until the run ends; no
    resuming. What numpy.savez writes, without holding every array in memory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + PARTIAL)
        self.zip = zipfile.ZipFile(self.partial, 'w', zipfile.ZIP_STORED, allowZip64=True)
        self.written = 0

    def add(self, records) -> list[dict]:
        for record in records:
            with self.zip.open(f'{record.id}.npy', 'w', force_zip64=True) as member:
                member.write(record.payload)
        self.written += len(records)
        return [{'shard': self.path.name} for _ in records]

    def full(self) -> bool:
        return False

    def commit(self):
        """Renames the archive into place (only an archive that holds something is kept)."""
        self.zip.close()
        if self.written:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
        return None

    def abort(self):
        self.zip.close()
        self.partial.unlink(missing_ok=True)
