"""Shared inputs of the pair-loss tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# unit vectors: x0 = x2 = (1, 0), x1 = (0, 1); s01 = 0, s02 = 1, s12 = 0
TINY = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
TINY_LABELS = torch.tensor([0, 0, 1])


def pk_batch(seed: int, dtype: torch.dtype = torch.float64, p: int = 8, k: int = 4, d: int = 16):
    """L2-normalised random embeddings of a shuffled P x K batch, and their labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(p).repeat_interleave(k)
    x = F.normalize(torch.randn(p * k, d, generator=g, dtype=dtype), dim=1)
    return x, y[torch.randperm(p * k, generator=g)]


def triplet(mining: str = "batch_hard", semi_hard: str = "hardest", fallback: str = "drop", **options):
    """The triplet loss with the miner the old ``mining`` / ``semi_hard`` / ``fallback`` options named."""
    from facemetric.losses import build_loss
    from facemetric.miners import build_miner

    if mining == "semi_hard":
        miner = build_miner("semi_hard", selection=semi_hard, fallback=fallback)
    else:
        miner = build_miner(mining)
    return build_loss("triplet", miner=miner, **options)


def multi_similarity(mining: bool = True, epsilon: float = 0.1, **options):
    """The multi-similarity loss with its own mining (``mining``) or with every pair."""
    from facemetric.losses import build_loss
    from facemetric.miners import build_miner

    miner = build_miner("multi_similarity", epsilon=epsilon) if mining else build_miner("all_pairs")
    return build_loss("multi_similarity", miner=miner, **options)
