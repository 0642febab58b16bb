"""Reading a run back: a read-only mapping from id to features, and streams for training."""

from __future__ import annotations

import collections.abc
import io
from pathlib import Path

import numpy as np

from kapre_fast.corpus.store import latest, manifest_path, read_manifest


def open(output) -> 'Features':  # noqa: A001 (kapre_fast.corpus.open, like io.open)
    """The features written to `output` (a folder, or an .npz) by extract()."""
    return Features(output)


class Features(collections.abc.Mapping):
    """id -> float32 array, for every record the manifest lists as written (later runs'
    lines win); `failed`: item id -> error of the items that failed and never succeeded.
    Arrays are read on access (tar members by their offset: no scan of the shard)."""

    def __init__(self, output):
        self.output = Path(output)
        self.format = 'npz' if self.output.suffix.lower() == '.npz' else 'folder'
        manifest = manifest_path(self.output, 'npz' if self.format == 'npz' else 'shards')
        if not manifest.exists():
            raise FileNotFoundError(f'{self.output}: no {manifest.name} (not written by '
                                    'kapre_fast.corpus.extract, or not yet)')
        self._entries, self.failed = latest(read_manifest(manifest))

    def __getitem__(self, id):
        entry = self._entries[id]
        if self.format == 'npz':
            with np.load(self.output) as archive:
                return archive[id]
        path = self.output / entry['shard']
        if 'offset' not in entry:
            return np.load(path)
        with io.open(path, 'rb') as stream:
            return _member(stream, entry)

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return f'<kapre_fast.corpus features of {self.output}: {len(self)} arrays, ' \
               f'{len(self.failed)} failed>'

    def stream(self, shards=None):
        """(id, array) in manifest order, reading each shard once from start to end; `shards`
        (a set of shard names) keeps only those."""
        if self.format == 'npz':
            with np.load(self.output) as archive:
                for id in self._entries:
                    yield id, archive[id]
            return
        open_path, handle = None, None
        try:
            for id, entry in self._entries.items():
                if shards is not None and entry['shard'] not in shards:
                    continue
                if 'offset' not in entry:
                    yield id, np.load(self.output / entry['shard'])
                    continue
                if entry['shard'] != open_path:
                    if handle is not None:
                        handle.close()
                    open_path = entry['shard']
                    handle = io.open(self.output / open_path, 'rb')
                yield id, _member(handle, entry)
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
            raise ImportError(f'to_tf_dataset needs TensorFlow ({error}); install it with '
                              '`pip install "kapre_fast[tf]"`') from None
        first = next(iter(self.stream()), (None, np.zeros((0, 0, 0), np.float32)))[1]
        signature = (tf.TensorSpec((), tf.string),
                     tf.TensorSpec((None,) * first.ndim, tf.as_dtype(first.dtype)))
        return tf.data.Dataset.from_generator(self.stream, output_signature=signature)

    def to_torch(self):
        """A torch.utils.data.IterableDataset of (id, tensor) pairs; with DataLoader workers,
        each reads its own share of the shards (imports PyTorch)."""
        try:
            from kapre_fast.corpus.torch_dataset import TorchFeatures
        except ImportError as error:
            raise ImportError(f'to_torch needs PyTorch ({error}); install it with '
                              '`pip install torch`') from None
        return TorchFeatures(self)


def _member(stream, entry):
    stream.seek(entry['offset'])
    return np.load(io.BytesIO(stream.read(entry['bytes'])))


__all__ = ['open', 'Features']
