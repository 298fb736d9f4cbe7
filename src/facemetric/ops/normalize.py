"""Row L2-normalisation with a hand-written backward, 2-6x faster than ``F.normalize``'s on CPU
(``python benchmarks/normalize.py``).

Autograd differentiates ``x / max(|x|, eps)`` op by op (a division, a norm and their broadcasts);
the closed form ``(g - y (g . y)) / |x|`` needs one row-wise dot product and one fused update.
Every loss normalises its embeddings (and margin-softmax losses their class weights) at each step.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class _NormalizeRows(torch.autograd.Function):
    """``x / max(|x|, eps)`` per row, backward ``(g - y (g . y)) / |x|`` in three fused passes."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min_(eps)
        y = x / norm
        ctx.save_for_backward(y, norm)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        y, norm = ctx.saved_tensors
        return torch.addcmul(grad, y, (grad * y).sum(dim=1, keepdim=True), value=-1.0).div_(norm), None


def normalize_rows(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalised rows (``F.normalize(x, dim=1)``) with a leaner backward."""
    return _NormalizeRows.apply(x, eps)
