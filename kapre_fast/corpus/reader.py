"""Reading a run back: a read-only mapping from id to features, and streams for training."""

from __future__ import annotations

import collections.abc
import io
import zipfile
from pathlib import Path

import numpy as np

from kapre_fast.corpus.store import (
    DamagedOutputError,
    latest,
    manifest_path,
    member_problem,
    payload_problem,
    read_manifest,
)


def open(output) -> 'Features':  # noqa: A001 (kapre_fast.corpus.open, like io.open)
    """The features written to `output` (a folder, or an .npz) by extract()."""
    return Features(output)


class Features(collections.abc.Mapping):
    """id -> float32 array, for every record the manifest lists as written (later runs'
    lines win); `failed`: item id -> error of the items that failed and never succeeded.
    Arrays are read on access (tar members by their offset: no scan of the shard) and verified
    against the manifest (member name and size, SHA-256 of the bytes): a missing, truncated,
    swapped or altered file raises DamagedOutputError naming the file and the record, as does
    a manifest line that is not a record (named by line). `verify()` reads everything."""

    def __init__(self, output):
        self.output = Path(output)
        self.format = 'npz' if self.output.suffix.lower() == '.npz' else 'folder'
        manifest = manifest_path(self.output, 'npz' if self.format == 'npz' else 'shards')
        if not manifest.exists():
            raise FileNotFoundError(
                f'{self.output}: no {manifest.name} (not written by '
                'kapre_fast.corpus.extract, or not yet)'
            )
        self._entries, self.failed = latest(read_manifest(manifest))
        for shard in self.shards():  # every file listed is there
            if not (self.output if self.format == 'npz' else self.output / shard).is_file():
                id = next(id for id, entry in self._entries.items() if entry['shard'] == shard)
                self._damaged(id, 'no such file')

    def __getitem__(self, id):
        entry = self._entries[id]
        if self.format != 'npz' and 'offset' not in entry:
            return self._read(id, None)
        with self._open(entry) as source:
            return self._read(id, source)

    def verify(self):
        """Reads and checks every record (DamagedOutputError for the first that fails)."""
        for _ in self.stream():
            pass

    def _path(self, entry):
        return self.output if self.format == 'npz' else self.output / entry['shard']

    def _open(self, entry):
        """The open tar shard of `entry`, or the open archive (npz)."""
        try:
            if self.format == 'npz':
                return zipfile.ZipFile(self.output)
            return io.open(self._path(entry), 'rb')
        except FileNotFoundError:
            self._damaged(entry['id'], 'no such file')
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            self._damaged(entry['id'], f'cannot be read as a zip archive ({error})')

    def _damaged(self, id, problem):
        entry = self._entries[id]
        raise DamagedOutputError(
            f'{self._path(entry)}: {problem}; the manifest lists record '
            f'{id!r} in it (rerun the extraction to redo it)'
        )

    def _read(self, id, stream):
        """The verified array of record `id`; `stream`: its open tar shard or archive (_open),
        None for an .npy file."""
        entry = self._entries[id]
        if self.format == 'npz':
            try:
                data = stream.read(f'{id}.npy')
            except KeyError:
                self._damaged(id, f'has no member {id}.npy')
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                self._damaged(id, f'cannot be read as a zip archive ({error})')
        elif stream is None:
            try:
                data = self._path(entry).read_bytes()
            except FileNotFoundError:
                self._damaged(id, 'no such file')
        else:
            problem = member_problem(stream, entry)
            if problem is not None:
                self._damaged(id, problem)
            stream.seek(entry['offset'])
            data = stream.read(entry['bytes'])
        problem = payload_problem(data, entry)
        if problem is not None:
            self._damaged(id, problem)
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            self._damaged(id, f'holds no .npy array ({error})')

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return (
            f'<kapre_fast.corpus features of {self.output}: {len(self)} arrays, '
            f'{len(self.failed)} failed>'
        )

    def stream(self, shards=None):
        """(id, array) in manifest order, reading each shard once from start to end; `shards`
        (a set of shard names) keeps only those. Each array is verified as on access."""
        open_path, handle = None, None
        try:
            for id, entry in self._entries.items():
                if shards is not None and entry['shard'] not in shards:
                    continue
                if self.format != 'npz' and 'offset' not in entry:
                    yield id, self._read(id, None)
                    continue
                if entry['shard'] != open_path:
                    if handle is not None:
                        handle.close()
                    handle, open_path = self._open(entry), entry['shard']
                yield id, self._read(id, handle)
        finally:
            if handle is not None:
                handle.close()

    def shards(self) -> list[str]:
        """The files the records are in, in manifest order."""
        return list(dict.fromkeys(entry['shard'] for entry in self._entries.values()))

    def to_tf_dataset(self):
        """A tf.data.Dataset of (id, features) pairs (imports TensorFlow)."""
        try:
            import tensorflow as tf
        except ImportError as error:
            from kapre_fast._loader import pip_install_hint

            raise ImportError(
                f'to_tf_dataset needs TensorFlow ({error}); install it with '
                f'`{pip_install_hint("tf")}`'
            ) from None
        first = next(iter(self.stream()), (None, np.zeros((0, 0, 0), np.float32)))[1]
        signature = (
            tf.TensorSpec((), tf.string),
            tf.TensorSpec((None,) * first.ndim, tf.as_dtype(first.dtype)),
        )
        return tf.data.Dataset.from_generator(self.stream, output_signature=signature)

    def to_torch(self):
        """A torch.utils.data.IterableDataset of (id, tensor) pairs; with DataLoader workers,
        each reads its own share of the shards (imports PyTorch)."""
        try:
            from kapre_fast.corpus.torch_dataset import TorchFeatures
        except ImportError as error:
            raise ImportError(
                f'to_torch needs PyTorch ({error}); install it with `pip install torch`'
            ) from None
        return TorchFeatures(self)


__all__ = ['open', 'Features', 'DamagedOutputError']
