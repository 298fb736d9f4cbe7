"""Closed-set classification metrics and scores: which of the training people is each image.

Pure functions on arrays: top-k accuracy, the margin-free logits of a classifier head, and the
cosine to class centres (the classifier of a model without a head, e.g. a pair loss or a
pretrained network: the mean embedding of each class's photos).
"""

from __future__ import annotations

import numpy as np
import torch

from facemetric.losses.margin import ClassifierLoss


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose true class is among the ``k`` highest scores (ties counted against it)."""
    true = scores[np.arange(len(labels)), labels]
    rank = (scores > true[:, None]).sum(axis=1) + (scores == true[:, None]).sum(axis=1)  # 1-based, ties against
    return {k: float(np.mean(rank <= k)) for k in ks}


@torch.no_grad()
def head_scores(head: ClassifierLoss, embeddings: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N, classes) margin-free logits of the head for unit ``embeddings``."""
    head_device = head.weight.device
    out = []
    for start in range(0, len(embeddings), chunk):
        x = torch.from_numpy(np.ascontiguousarray(embeddings[start : start + chunk])).to(head_device)
        out.append(head.logits(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, head.num_classes), np.float32)


def centre_scores(embeddings: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Cosine of each embedding to each class centre (centres L2-normalised here)."""
    unit = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return embeddings @ unit.T
