"""The miner interfaces: a miner picks which pairs or triplets of a batch a pair loss learns from.

A miner is an object with one method, ``mine``, that takes the batch's B x B **distance** matrix
(smaller = closer; computed and detached by the loss, so it is never computed twice) and the
labels, and returns indices: :class:`Pairs` for pair losses (contrastive, multi-similarity,
circle, supervised contrastive), :class:`Triplets` for the triplet loss. The loss keeps its
distance, margin and reduction; a schedule swaps the miner (``loss.miner = ...``), never the loss.

Triplets come in one of two forms, so that no miner ever materialises B x B x B anything:

* sparse: explicit ``anchors``, ``positives``, ``negatives`` index vectors, one entry per
  triplet (batch-hard, FaceNet's hardest semi-hard negative: at most one per anchor-positive);
* dense: per *positive slot* k (the k-th positive of every anchor, ``positive_index[:, k]``,
  valid where ``positive_valid[:, k]``), a B x B mask ``negatives[k]`` of the negatives mined for
  each (anchor, that positive): every triplet (batch-all), every semi-hard one. O(S x B x B)
  booleans for S slots (K - 1 in a P x K batch).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass
class Pairs:
    """Mined pairs as B x B boolean masks: ``positive[a, b]`` and ``negative[a, b]`` are learned from."""

    positive: torch.Tensor
    negative: torch.Tensor


@dataclass
class Triplets:
    """Mined triplets, sparse (``anchors``/``positives``/``negatives``) or dense (per positive slot)."""

    anchors: torch.Tensor | None = None  # (T,) sparse form
    positives: torch.Tensor | None = None
    negatives: torch.Tensor | None = None
    positive_index: torch.Tensor | None = None  # (B, S) dense form: column of each anchor's k-th positive
    positive_valid: torch.Tensor | None = None  # (B, S)
    negative_masks: torch.Tensor | None = None  # (S, B, B): negatives mined for (a, positive_index[a, k])

    @property
    def sparse(self) -> bool:
        return self.anchors is not None


class PairMiner(ABC):
    """Picks the positive and negative pairs of a batch a pair loss uses."""

    @abstractmethod
    def mine(self, dist: torch.Tensor, labels: torch.Tensor) -> Pairs:
        """Masks over the B x B ``dist`` (detached, smaller = closer) of a batch with ``labels``."""


class TripletMiner(ABC):
    """Picks the (anchor, positive, negative) triplets of a batch the triplet loss uses."""

    sparse = False  # True: returns the sparse form (the loss then needs no B x B gradient)

    @abstractmethod
    def mine(self, dist: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
        """Triplets of a batch from its B x B ``dist`` (detached); ``margin`` is the loss's, for miners
        whose window depends on it (semi-hard)."""
