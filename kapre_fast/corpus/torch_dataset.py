"""The PyTorch view of a run (imported only by Features.to_torch: it imports torch)."""

from __future__ import annotations

import torch
import torch.utils.data


class TorchFeatures(torch.utils.data.IterableDataset):
    """(id, float32 tensor) pairs; DataLoader worker k of n reads shards k, k + n, ..."""

    def __init__(self, features):
        super().__init__()
        self.features = features

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        shards = None
        if info is not None:
            shards = set(self.features.shards()[info.id :: info.num_workers])
        for id, array in self.features.stream(shards):
            yield id, torch.from_numpy(array)
