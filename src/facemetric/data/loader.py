"""Augmented P x K training batches from packed images, built in DataLoader worker processes.

Item ``k`` of :class:`EpochBatches` is batch ``k`` of an epoch after the uint8 stage: workers
gather rows from the (memory-mapped) cache, translate and mirror them and draw the colour
jitter while the model trains on the previous batch; :func:`facemetric.data.augment.finish`
applies jitter and normalisation in one pass where the batch is used (on the GPU if any). Every batch's random numbers come from (seed, global step), so
the stream is identical with any number of workers and after a resume.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from facemetric.data.augment import AugmentConfig, UInt8Batch, geometry_and_draws
from facemetric.data.cache import PackedImages


class EpochBatches(Dataset):
    """The augmented batches ``batches`` (row indices into ``data``), numbered from ``first_step``."""

    def __init__(
        self,
        data: PackedImages,
        batches: list[np.ndarray],
        augment: AugmentConfig,
        normalization: tuple[tuple[float, ...], tuple[float, ...]],
        seed: int,
        first_step: int,
    ) -> None:
        self.data, self.batches, self.augment = data, batches, augment
        self.mean = normalization[0]  # the fill colour of shifted borders; std is applied by finish()
        self.seed, self.first_step = seed, first_step

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> UInt8Batch:
        rows = self.batches[k]
        rng = np.random.default_rng([self.seed, self.first_step + k])
        return geometry_and_draws(np.asarray(self.data.images[rows]), self.data.labels[rows], self.augment, rng, self.mean)


def batch_loader(batches: EpochBatches, workers: int) -> DataLoader:
    """Iterate ``batches`` in order, ``workers`` processes ahead of the consumer (0: inline)."""
    return DataLoader(
        batches,
        batch_size=None,
        collate_fn=_no_collate,
        shuffle=False,
        num_workers=workers,
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=False,
        # its own generator: creating the iterator must not draw from the global RNG (dropout's),
        # or a resumed run would see different dropout masks than an uninterrupted one
        generator=torch.Generator().manual_seed(batches.seed),
    )


def _no_collate(batch: UInt8Batch) -> UInt8Batch:
    return batch
