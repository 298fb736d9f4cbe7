"""Benchmark: how held-out accuracy of trained models falls when the test photos are misaligned.

    python benchmarks/translation.py NAME=CHECKPOINT ... [--source caches/lfw-112] [--out results.json]

Settles what translation augmentation buys. Each held-out photo of ``--source`` (the run's split:
``--val-identities`` / ``--split-seed``, the project's identity-disjoint pair protocol) is shifted by a
random whole-pixel offset of up to +-``s`` of its side in each direction (the training augmentation's
own code, :func:`facemetric.data.augment.geometry_and_draws`, without mirroring; a fixed seed, so every model
sees the same shifted photos), for each ``s`` of ``--shifts``. A model trained without shift that
loses much more than one trained with it has learnt to rely on the alignment; if the test photos are
aligned as well as the training photos (``prepare --align dlib``), that reliance costs nothing, and
the augmentation only spends training time. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.atomic import write_json


def shifted(images: np.ndarray, shift: float, seed: int = 0) -> np.ndarray:
    """Copies of ``images`` (N, H, W, C) uint8, each translated by up to +-``shift`` of its side."""
    from facemetric.core.config import AugmentConfig
    from facemetric.data.augment import geometry_and_draws

    out = np.empty_like(images)
    cfg = AugmentConfig(shift=shift, flip=False, brightness=0.0, contrast=0.0)
    geometry_and_draws(images, np.arange(len(images)), out, cfg, np.random.default_rng(seed))
    return out


def measure(
    checkpoints: dict[str, Path], source: str, shifts: list[float], val_identities: float, split_seed: int
) -> dict[str, Any]:
    from common import held_out, verification_summary
    from facemetric.embedders.torch_model import ModelEmbedder

    val, protocol = held_out(source, val_identities, split_seed, 3000)
    images = np.ascontiguousarray(np.asarray(val.images))
    keep = np.ones(len(protocol.i), dtype=bool)
    views = {s: images if s == 0 else shifted(images, s) for s in shifts}
    out: dict[str, Any] = {}
    for name, checkpoint in checkpoints.items():
        model = ModelEmbedder.from_checkpoint(checkpoint)
        out[name] = {
            f"{s:g}": verification_summary(model.embed_crops(views[s]), protocol, keep)["accuracy"] for s in shifts
        }
        print(json.dumps({name: out[name]}), flush=True)
    return {"held_out_people": len(val.identity_names), "photos": len(val), "pairs": len(keep), "accuracy": out}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="NAME=CHECKPOINT")
    parser.add_argument("--source", default="caches/lfw-112", help="the prepared cache the models were trained on")
    parser.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.02, 0.04, 0.06, 0.08])
    parser.add_argument("--val-identities", type=float, default=0.1)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    checkpoints = {}
    for text in args.models:
        name, sep, path = text.partition("=")
        if not sep or not Path(path).is_file():
            raise SystemExit(f"wants NAME=CHECKPOINT with an existing checkpoint file, got {text!r}")
        checkpoints[name] = Path(path)
    report = {
        "benchmark": "translation",
        "date": datetime.date.today().isoformat(),
        "source": args.source,
        "shifts": args.shifts,
        **measure(checkpoints, args.source, args.shifts, args.val_identities, args.split_seed),
    }
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
