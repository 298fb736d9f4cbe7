"""Benchmark: one-change ablations of a training recipe, on its held-out people.

    python -m facemetric.bench.ablations --base configs/lfw.yaml --epochs 10 --seeds 0 1 \\
        --variant baseline= --variant "shift=augment.shift=0.08" \\
        --variant "gap=model.options={head: gap}" \\
        --variant "gap+shift=model.options={head: gap};augment.shift=0.08" --out results.json

Each ``--variant NAME=OVERRIDE;OVERRIDE...`` is the base config with those ``--set`` overrides
(none: the base itself). Every variant and seed trains from scratch with ``train.seed`` set and
is measured the way every run validates: held-out identities (``data.val_identities``), the
project's identity-disjoint pair protocol, k-fold accuracy. Reported per run: the last epoch's
accuracy (no choice on held-out data), the best epoch's, AUC, and CPU-minutes of training; per
variant: mean and spread over seeds. Data are decoded once and shared by the variants that
read them the same way. Run it alone: minutes are wall-clock on this machine. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.atomic import write_json


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME=KEY=VALUE;KEY=VALUE`` -> (name, overrides)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--variant wants NAME=OVERRIDES (e.g. shift=augment.shift=0.08), got {text!r}")
    return name, [o.strip() for o in rest.split(";") if o.strip()]


def run(base: Path | None, variants: list[tuple[str, list[str]]], seeds: list[int], epochs: int, work: Path) -> dict:
    from facemetric.core.config import load_config
    from facemetric.data.dataset import load_dataset
    from facemetric.train.build import build_run

    datasets: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for name, overrides in variants:
        for seed in seeds:
            cfg = load_config(
                base,
                [
                    *overrides,
                    f"train.seed={seed}",
                    f"train.epochs={epochs}",
                    f"train.val_every={max(1, epochs // 5)}",
                    "train.progress=false",
                    "train.checkpoint_every_steps=0",
                    f"train.out={work / f'{name}-seed{seed}'}",
                ],
            )
            key = json.dumps(cfg.data.to_dict(), sort_keys=True)
            if key not in datasets:
                datasets[key] = load_dataset(cfg.data, progress=False)
            start = time.time()
            result = build_run(cfg, data=datasets[key]).fit()
            minutes = (time.time() - start) / 60
            val = result.val or {}
            rows.append(
                {
                    "variant": name,
                    "overrides": overrides,
                    "seed": seed,
                    "accuracy_last": val.get("accuracy"),
                    "accuracy_best": result.best_accuracy,
                    "auc_last": val.get("auc"),
                    "pairs": val.get("num_positive", 0) + val.get("num_negative", 0),
                    "folds": val.get("n_folds"),
                    "minutes": round(minutes, 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for name, _ in variants:
        acc = np.array([r["accuracy_last"] for r in rows if r["variant"] == name], dtype=float)
        summary[name] = {
            "accuracy_last_mean": round(float(acc.mean()), 4),
            "accuracy_last_spread": round(float(acc.max() - acc.min()), 4),
            "seeds": len(acc),
        }
    return {"runs": rows, "summary": summary}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("configs/lfw.yaml"), help="the recipe varied")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=OVERRIDES")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facemetric-ablations"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant] or [("baseline", [])]
    report = {
        "benchmark": "ablations",
        "date": datetime.date.today().isoformat(),
        "base": str(args.base),
        "epochs": args.epochs,
        **run(args.base, variants, args.seeds, args.epochs, args.work),
    }
    print(json.dumps(report["summary"], indent=1))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
