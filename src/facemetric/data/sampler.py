"""P x K batches: P identities, K images each, so every batch has positives and negatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facemetric.data.sources import DatasetError

SHORT_POLICIES = ("repeat", "drop")


@dataclass
class SamplerReport:
    """What the sampler did with identities that have fewer than K images."""

    identities_used: int
    images_used: int
    short_repeated: int
    dropped_identities: int
    dropped_images: int

    def describe(self, k: int) -> str:
        text = f"{self.identities_used} identities / {self.images_used} images in P x K batches"
        if self.short_repeated:
            text += f"; {self.short_repeated} identities with < {k} images are sampled with repetition"
        if self.dropped_identities:
            text += f"; dropped {self.dropped_identities} identities ({self.dropped_images} images) with too few images"
        return text


class PKSampler:
    """Deterministic per-epoch P x K batches of indices into ``labels``.

    ``short_policy``: ``repeat`` samples identities with fewer than K (but at least
    ``min_images``) images with replacement; ``drop`` leaves them out. Identities below
    ``min_images`` are always dropped (a single photo makes no positive pair). Batches for
    epoch ``e`` depend only on (seed, e), so a resumed run replays the same batches.
    """

    def __init__(
        self,
        labels: np.ndarray,
        p: int,
        k: int,
        short_policy: str = "repeat",
        min_images: int = 2,
        seed: int = 0,
        batches_per_epoch: int | None = None,
    ) -> None:
        if short_policy not in SHORT_POLICIES:
            raise ValueError(f"short_policy must be one of {SHORT_POLICIES}, got {short_policy!r}")
        if p < 1 or k < 1:
            raise ValueError(f"P and K must be >= 1, got P={p}, K={k}")
        self.p, self.k, self.seed = p, k, seed
        labels = np.asarray(labels)
        floor = k if short_policy == "drop" else max(1, min_images)
        by_id = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
        self.groups = [idx for idx in by_id.values() if len(idx) >= floor]
        dropped = [idx for idx in by_id.values() if len(idx) < floor]
        self.report = SamplerReport(
            identities_used=len(self.groups),
            images_used=int(sum(len(g) for g in self.groups)),
            short_repeated=sum(1 for g in self.groups if len(g) < k),
            dropped_identities=len(dropped),
            dropped_images=int(sum(len(g) for g in dropped)),
        )
        if len(self.groups) < 2:
            raise DatasetError(
                f"P x K sampling needs at least 2 identities with >= {floor} images; found {len(self.groups)}. "
                "Lower sampler.k, use sampler.short_policy=repeat, or add data."
            )
        if p > len(self.groups):
            raise DatasetError(
                f"sampler.p={p} identities per batch but only {len(self.groups)} usable identities; lower sampler.p"
            )
        self.batches_per_epoch = batches_per_epoch or max(1, self.report.images_used // (p * k))

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The list of batches (arrays of P*K indices) for ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch])
        order: list[int] = []
        batches = []
        for _ in range(self.batches_per_epoch):
            if len(order) < self.p:  # new cycle; never the same identity twice in a batch
                order += [g for g in rng.permutation(len(self.groups)).tolist() if g not in order]
            chosen, order = order[: self.p], order[self.p :]
            parts = [self._draw(self.groups[g], rng) for g in chosen]
            batches.append(np.concatenate(parts))
        return batches

    def _draw(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(group) >= self.k:
            return rng.choice(group, size=self.k, replace=False)
        # Every image once, the rest of the K slots filled at random.
        return np.concatenate([rng.permutation(group), rng.choice(group, size=self.k - len(group))])
