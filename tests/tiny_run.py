"""The config overrides of a tiny, fast training run on the ``synthetic_faces`` fixture (32 px, 4 held-out people)."""

from __future__ import annotations

from pathlib import Path


def tiny_overrides(data: Path, out: Path | None = None, epochs: int = 2, batches: int = 3) -> list[str]:
    """``--set`` overrides: 4 x 3 batches, ``batches`` a epoch, ``epochs`` epochs, no progress bars."""
    return [
        f"data.source={data}",
        "data.image_size=[32, 32]",
        "data.val_identities=4",
        "data.cache_dir=null",
        "sampler.p=4",
        "sampler.k=3",
        f"sampler.batches_per_epoch={batches}",
        f"train.epochs={epochs}",
        "train.progress=false",
        *([f"train.out={out}"] if out is not None else []),
    ]
