"""Benchmark: train a config on held-out identities over several seeds; accuracy, EER and time as JSON.

    python benchmarks/verification_runs.py --config configs/orl.yaml --seeds 0 1 2
    python benchmarks/verification_runs.py --config configs/lfw.yaml --seeds 0 \\
        --pairs ../shared/data/lfw-devtrain/pairsDevTrain.txt --images ../shared/data/lfw-devtrain/images

For each seed: the untrained network's and the trained network's held-out verification
(10-fold accuracy, EER, AUC, TAR@FAR), wall and CPU seconds, training images per second, and
optionally the LFW-protocol report of the best checkpoint on a pairs file.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facemetric.core.config import load_config
from facemetric.embedders.torch_model import ModelEmbedder
from facemetric.eval.suite.files import evaluate_pairs_file
from facemetric.train.build import build_run

KEYS = ("accuracy", "eer", "auc")


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    out = {k: round(report[k], 4) for k in KEYS}
    out.update({f"tar@far={k}": round(v, 4) for k, v in report["tar_at_far"].items()})
    return out


def run_seed(
    config: str, seed: int, overrides: list[str], out: Path, pairs: str | None, images: str | None
) -> dict[str, Any]:
    """Train one seed and return its figures."""
    cfg = load_config(
        config, overrides + [f"train.seed={seed}", f"train.out={out / f'seed{seed}'}", "train.progress=false"]
    )
    wall, cpu = time.perf_counter(), time.process_time()
    run = build_run(cfg)
    before = run.validate_untrained()
    train_wall = time.perf_counter()
    result = run.fit()
    train_wall = time.perf_counter() - train_wall
    assert result.val is not None and result.best_accuracy is not None, "the config must hold out identities"
    images_seen = result.global_step * cfg.sampler.p * cfg.sampler.k
    row: dict[str, Any] = {
        "seed": seed,
        "untrained": _brief(before.model_dump()),
        "trained": _brief(result.val.summary()),
        "best_accuracy": round(result.best_accuracy, 4),
        "steps": result.global_step,
        "train_seconds": round(train_wall, 1),
        "train_images_per_second": round(images_seen / train_wall, 1),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }
    if pairs:
        best = result.out_dir / ("best.pt" if (result.out_dir / "best.pt").exists() else "last.pt")
        row["pairs_file"] = _brief(
            evaluate_pairs_file(ModelEmbedder.from_checkpoint(best), pairs, images, progress=False).model_dump()
        )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/verification_runs.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="training config (YAML)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    parser.add_argument("--pairs", help="also evaluate the best checkpoint on this LFW-format pairs file")
    parser.add_argument("--images", help="image root for --pairs")
    parser.add_argument("--out", help="where runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        rows = [run_seed(args.config, s, args.overrides, out, args.pairs, args.images) for s in args.seeds]
    acc = np.array([r["trained"]["accuracy"] for r in rows])
    result = {
        "benchmark": "verification",
        "config": args.config,
        "overrides": args.overrides,
        "torch_threads": torch.get_num_threads(),
        "runs": rows,
        "trained_accuracy_mean": round(float(acc.mean()), 4),
        "trained_accuracy_min": round(float(acc.min()), 4),
        "untrained_accuracy_mean": round(float(np.mean([r["untrained"]["accuracy"] for r in rows])), 4),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
