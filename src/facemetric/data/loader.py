"""Augmented, normalised P x K training batches from packed images, built in DataLoader workers.

Batch ``k`` of an epoch is built whole in a worker: rows are gathered straight from the
(memory-mapped) cache, translated and mirrored as uint8 (:func:`geometry_and_draws`), then
colour-jittered and normalised (:func:`finish`) into slot ``k % slots`` of a ring of
pre-allocated shared float32 buffers. Only the slot number and the labels cross between
processes: pixels are never pickled or copied again (DataLoader's default path moves every
batch through a fresh shared-memory file, which on a 2-core machine cost as much as building it).
Every batch's random numbers come from (seed, global step), so the stream is identical with
any number of workers and after a resume.

Flow control: a worker may fill the slot of batch ``k`` only once the consumer has moved past
batch ``k - slots`` (a shared counter). The consumer releases a batch when it asks for the next
one, so a yielded batch stays valid until then and is never copied on the CPU.
"""

from __future__ import annotations

import mmap
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from facemetric.core.config import AugmentConfig
from facemetric.data.augment import finish, geometry_and_draws
from facemetric.data.cache import PackedImages, RowView
from facemetric.data.sampler import PKSampler

PREFETCH = 2  # batches each worker may run ahead
_FORK = sys.platform.startswith("linux")  # workers forked: the ring can be anonymous shared memory
WAIT_LIMIT_S = 300.0  # a worker waiting this long for a free slot means the consumer is gone


@dataclass
class _Ticket:
    """What a worker sends back: where the pixels are, and the small per-batch arrays."""

    k: int
    slot: int
    labels: np.ndarray
    rows: np.ndarray  # positions in ``data`` of the batch's images
    flipped: np.ndarray  # which of them were mirrored


@dataclass
class TrainBatch:
    """Normalised images (N, C, H, W) float32 in channels-last memory, and their labels; ``rows`` (their
    positions in the training data) and ``flipped`` (mirrored by augmentation) say which view of which
    photo each image is (a distillation teacher's target for it)."""

    images: torch.Tensor
    labels: torch.Tensor
    rows: np.ndarray | None = None
    flipped: np.ndarray | None = None


def _shared(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Zeroed memory that forked workers share: an anonymous shared mapping, which unlike
    ``share_memory_`` does not count against a container's small /dev/shm."""
    if not _FORK:
        return torch.zeros(shape, dtype=dtype).share_memory_()
    count = int(np.prod(shape))
    block = mmap.mmap(-1, max(1, count * torch.empty((), dtype=dtype).element_size()))
    return torch.frombuffer(block, dtype=dtype, count=count).view(shape)  # the tensor keeps ``block`` alive


class BatchRing:
    """``slots`` shared float32 buffers of one batch each, plus the consumer's release counter.

    A slot is seen as (batch, C, H, W) in channels-last memory, the layout :func:`finish` writes.
    """

    def __init__(self, slots: int, batch: int, image_shape: tuple[int, int, int]) -> None:
        self.buffers = _shared((slots, batch, *image_shape), torch.float32)  # (slots, batch, H, W, C)
        self.released = _shared((1,), torch.int64)  # batches 0..released-1 are free

    @property
    def slots(self) -> int:
        return self.buffers.shape[0]

    def slot(self, i: int) -> torch.Tensor:
        return self.buffers[i].permute(0, 3, 1, 2)

    def claim(self, k: int) -> torch.Tensor:
        """The slot for batch ``k``, once batch ``k - slots`` is released (waits for the consumer)."""
        need, deadline = k - self.slots + 1, time.monotonic() + WAIT_LIMIT_S
        # rare: DataLoader hands a worker batch k only when the consumer is at most ``slots - 2`` behind
        while int(self.released[0]) < need:
            if time.monotonic() > deadline:
                raise RuntimeError(f"batch {k}: no free ring slot after {WAIT_LIMIT_S:.0f} s; the consumer stopped")
            time.sleep(5e-4)
        return self.slot(k % self.slots)


class RunBatches(Dataset):
    """The augmented batches of global steps ``first_step`` .. ``last_step - 1`` of a run.

    Step ``g`` is batch ``g % steps_per_epoch`` of ``epoch_batches(g // steps_per_epoch)`` (row
    indices into ``data``): one stream spans every epoch, so worker processes, and the pages of
    the cache and the ring they have touched, live for the whole run instead of being rebuilt
    each epoch (on this 2-core VM an epoch of fresh page faults cost as much as the batches).
    """

    def __init__(
        self,
        data: PackedImages,
        epoch_batches: Callable[[int], list[np.ndarray]],
        steps_per_epoch: int,
        first_step: int,
        last_step: int,
        augment: AugmentConfig,
        normalization: tuple[tuple[float, ...], tuple[float, ...]],
        seed: int,
        share: tuple[int, int] = (0, 1),
    ) -> None:
        if not 0 <= first_step <= last_step:
            raise ValueError(f"steps {first_step}..{last_step}: the first must be >= 0 and <= the last")
        self.data, self.epoch_batches, self.steps_per_epoch = data, epoch_batches, steps_per_epoch
        self.first_step, self.last_step = first_step, last_step
        self.augment, self.seed = augment, seed
        self.share = share  # (part, parts): a training process's slice of every global batch
        self.mean, self.std = normalization
        images = data.images
        # the array rows are read from (the memory map itself, not a subset copy) and the rows into it
        self.source = images.base if isinstance(images, RowView) else images
        self.rows = images.rows if isinstance(images, RowView) else None
        self.ring: BatchRing | None = None
        self._scratch: np.ndarray | None = None  # each process's uint8 stage buffer
        self._epoch: tuple[int, list[np.ndarray]] | None = None  # each process's current epoch's batches

    def __len__(self) -> int:
        return self.last_step - self.first_step

    def picked(self, k: int) -> np.ndarray:
        """Row indices (into ``data``) of item ``k``, i.e. of global step ``first_step + k``."""
        epoch, j = divmod(self.first_step + k, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, self.epoch_batches(epoch))
        return self._epoch[1][j]

    def __getstate__(self) -> dict:
        """For workers started by spawn: a memory-mapped source is reopened there, not copied."""
        state = dict(self.__dict__, _scratch=None, _epoch=None)
        if isinstance(self.source, np.memmap) and self.source.filename:
            m = self.source
            state["source"] = ("memmap", str(m.filename), m.offset, m.shape, m.dtype.str)
            state["data"] = PackedImages(
                np.empty((0, *self.source.shape[1:]), np.uint8),
                self.data.labels,
                self.data.paths,
                self.data.identity_names,
                [],
            )
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["source"], tuple):
            _, filename, offset, shape, dtype = state["source"]
            state["source"] = np.memmap(filename, dtype=dtype, mode="r", offset=offset, shape=shape)
        self.__dict__.update(state)

    def __getitem__(self, k: int) -> _Ticket:
        assert self.ring is not None, "RunBatches is iterated through RingLoader"
        picked = self.picked(k)
        rows = self.rows[picked] if self.rows is not None else picked
        part, parts = self.share
        size = len(picked) // parts
        mine = slice(part * size, (part + 1) * size)
        n, shape = size, self.source.shape[1:]
        if self._scratch is None or len(self._scratch) < n:
            self._scratch = np.empty((n, *shape), dtype=np.uint8)
        pixels = self._scratch[:n]
        rng = np.random.default_rng([self.seed, self.first_step + k])
        # a plain ndarray view of the memory map: np.memmap's per-slice bookkeeping costs more than the copy
        draws = geometry_and_draws(self.source.view(np.ndarray), rows, pixels, self.augment, rng, mine)
        finish(torch.from_numpy(pixels), draws, self.mean, self.std, out=self.ring.claim(k)[:n])
        flipped = draws.flipped if draws.flipped is not None else np.zeros(n, dtype=bool)
        return _Ticket(k, k % self.ring.slots, self.data.labels[picked[mine]], np.asarray(picked[mine]), flipped)


class RingLoader:
    """Iterate ``batches`` in order as :class:`TrainBatch`, ``workers`` processes ahead (0: inline).

    A yielded batch's ``images`` is a view of a ring slot, valid until the next batch is requested.
    One iteration at a time: close (or exhaust) an iterator before starting another.
    """

    def __init__(self, batches: RunBatches, workers: int, batch_size: int) -> None:
        self.batches, self.workers = batches, workers
        # every batch a worker may hold or have queued, the one being consumed, and one spare
        slots = PREFETCH * max(workers, 1) + 2
        batches.ring = BatchRing(slots, batch_size, batches.source.shape[1:])
        self._active = False

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[TrainBatch]:
        if self._active:
            raise RuntimeError("this RingLoader is already being iterated; its ring holds one stream at a time")
        ring = self.batches.ring
        assert ring is not None  # set in __init__
        ring.released.fill_(0)
        loader = DataLoader(
            self.batches,
            batch_size=None,
            collate_fn=_no_collate,  # type: ignore[arg-type]  # batch_size=None: items are not lists
            shuffle=False,
            num_workers=self.workers,
            prefetch_factor=PREFETCH if self.workers > 0 else None,
            persistent_workers=False,
            multiprocessing_context="fork" if _FORK and self.workers > 0 else None,
            # its own generator: creating the iterator must not draw from the global RNG (dropout's),
            # or a resumed run would see different dropout masks than an uninterrupted one
            generator=torch.Generator().manual_seed(self.batches.seed),
        )
        self._active = True
        try:
            for k, ticket in enumerate(loader):
                if ticket.k != k:
                    raise RuntimeError(f"ring loader: expected batch {k}, got {ticket.k}")
                images = ring.slot(ticket.slot)[: len(ticket.labels)]
                yield TrainBatch(images, torch.as_tensor(ticket.labels), ticket.rows, ticket.flipped)
                ring.released.fill_(k + 1)  # the consumer asked for the next batch: this one's slot is free
        finally:
            self._active = False


def batch_loader(batches: RunBatches, workers: int, batch_size: int) -> RingLoader:
    """The training stream of ``batches`` (at most ``batch_size`` images each), built in order by ``workers``
    processes."""
    return RingLoader(batches, workers, batch_size)


@dataclass
class BatchSource:
    """What the training loop draws its batches from: P x K sampled rows of ``data``, augmented and
    normalised by ``workers`` processes. One stream covers a whole run (see :class:`RunBatches`)."""

    data: PackedImages
    sampler: PKSampler
    augment: AugmentConfig
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    seed: int = 0
    workers: int = 1
    share: tuple[int, int] = (0, 1)  # (part, parts): this process's slice of each global batch (torchrun)

    def __post_init__(self) -> None:
        part, parts = self.share
        batch = self.sampler.p * self.sampler.k
        if not 0 <= part < parts or batch % parts:
            raise ValueError(
                f"a global batch of {batch} images (sampler.p x sampler.k) cannot be split into {parts} equal "
                f"shares; choose sampler.p x sampler.k divisible by the number of processes"
            )

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch

    def stream(self, first_step: int, last_step: int) -> RingLoader:
        """The batches of global steps ``first_step`` .. ``last_step - 1``, in order."""
        batches = RunBatches(
            self.data,
            self.sampler.epoch,
            self.steps_per_epoch,
            first_step,
            last_step,
            self.augment,
            self.normalization,
            self.seed,
            self.share,
        )
        return batch_loader(batches, self.workers, self.sampler.p * self.sampler.k // self.share[1])


def _no_collate(ticket: _Ticket) -> _Ticket:
    return ticket
