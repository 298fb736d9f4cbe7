"""Benchmark: patch descriptors on an HPatches-style release built here from real photos.

    python benchmarks/patches.py --photos ../shared/data/celeba-199/images \\
        --out benchmarks/results/DATE-patches.json

1. ``facemetric protocol patches`` builds the release (seed 0: ``--max-photos`` photos, one sequence each,
   about half illumination and half viewpoint; 2/3 of the sequences train, 1/3 test, ``splits.json``
   split ``a``);
2. ``facemetric prepare --patches --split a --part train`` packs the training sequences (32x32 grey);
3. the baselines (standardised raw pixels, OpenCV SIFT and RootSIFT on the 65x65 patches) and the trained
   descriptors are evaluated on the test sequences (``facemetric eval --patches``): patch verification,
   image matching and patch retrieval mAP at each jitter level, illumination and viewpoint apart;
4. ``configs/patches/hardnet.yaml`` and ``configs/patches/l2net.yaml`` train (S x K batches, semi-hard then
   batch-hard mining); their per-epoch spread statistics (collapse monitor) are kept;
5. ``configs/patches/collapse.yaml`` (large batch, plain batch-hard, no normalisation) trains as the
   collapse reproduction: whether and when the monitor warned, its spread statistics, and what the
   collapsed descriptor scores; then the same recipe with batch norm kept (``model.options.batch_norm``),
   the one change that prevents it.

Run it alone on the cores: the training minutes are part of the result.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from facemetric.core.atomic import write_json
from facemetric.core.config import load_config
from facemetric.data.hpatches import prepare_patches
from facemetric.eval.patches.benchmark import build_patch_benchmark
from facemetric.eval.patches.run import evaluate_release
from facemetric.train.build import build_run

BASELINES = ("raw", "sift", "rootsift")
MODELS = {"hardnet": "configs/patches/hardnet.yaml", "l2net": "configs/patches/l2net.yaml"}
COLLAPSE = "configs/patches/collapse.yaml"


class _Warnings(logging.Handler):
    """Keeps the collapse monitor's warnings of a run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "embedding collapse" in record.getMessage():
            self.messages.append(record.getMessage())


def _evaluate(release: Path, model: str) -> dict[str, Any]:
    started = time.perf_counter()
    ev = evaluate_release(release, model, split="a", part="test")
    levels = ("easy", "hard", "tough", "mean")
    rows = [
        {"task": task, "kind": kind, **{level: getattr(getattr(scores, level), kind) for level in levels}}
        for task, kind, scores in ev.results.rows()
    ]
    return {
        "describer": ev.meta.describer,
        "headline": ev.results.headline(),
        "rows": rows,
        "counts": ev.results.counts.model_dump(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _train(config: str, cache: Path, out: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    cfg = load_config(config, [f"data.source={cache}", f"train.out={out}", "train.progress=false", *extra])
    handler = _Warnings()
    logging.getLogger("facemetric").addHandler(handler)
    started = time.perf_counter()
    try:
        result = build_run(cfg).fit()
    finally:
        logging.getLogger("facemetric").removeHandler(handler)
    minutes = (time.perf_counter() - started) / 60
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [
        {
            "epoch": r["epoch"],
            "loss": round(r["loss"], 4),
            **{k.split("/")[1]: r[k] for k in r if k.startswith("spread/")},
        }
        for r in records
        if r["kind"] == "train"
    ]
    val = [
        {"epoch": r["epoch"], "accuracy": r.get("accuracy"), "map_at_r": r.get("map_at_r")}
        for r in records
        if r["kind"] == "val"
    ]
    return {
        "config": config,
        "overrides": list(extra),
        "epochs": result.epochs,
        "steps": cfg.train.epochs * (cfg.sampler.batches_per_epoch or 0),
        "batch": cfg.sampler.p * cfg.sampler.k,
        "minutes": round(minutes, 2),
        "collapse_warnings": handler.messages,
        "train_curve": epochs,
        "val_curve": val,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="../shared/data/celeba-199/images", help="any folder of photos")
    parser.add_argument("--max-photos", type=int, default=150, help="sequences to build (default %(default)s)")
    parser.add_argument("--points", type=int, default=100, help="points per sequence (default %(default)s)")
    parser.add_argument("--work", default="runs/bench-patches", help="release, cache and runs (default %(default)s)")
    parser.add_argument("--epochs", type=int, help="training epochs of hardnet / l2net (default: the configs')")
    parser.add_argument(
        "--batches-per-epoch", type=int, help="batches per epoch of every run (default: the configs'; a quick check)"
    )
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--no-collapse", action="store_true", help="skip the collapse reproduction")
    parser.add_argument("--no-baselines", action="store_true", help="skip raw pixels / SIFT / RootSIFT")
    parser.add_argument("--out", default=f"benchmarks/results/{datetime.date.today()}-patches.json")
    args = parser.parse_args(argv)
    work = Path(args.work)
    release, cache = work / "release", work / "train-cache"
    report: dict[str, Any] = {
        "date": str(datetime.date.today()),
        "command": "python benchmarks/patches.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    started = time.perf_counter()
    built = build_patch_benchmark(
        args.photos, release, points=args.points, max_photos=args.max_photos, seed=0, overwrite=True
    )
    report["release"] = {**built.model_dump(), "minutes": round((time.perf_counter() - started) / 60, 2)}
    report["train_cache"] = prepare_patches(release, cache, "a", "train", overwrite=True).summary
    report["baselines"] = {} if args.no_baselines else {name: _evaluate(release, name) for name in BASELINES}
    write_json(args.out, report)
    report["trained"] = {}
    batches = (f"sampler.batches_per_epoch={args.batches_per_epoch}",) if args.batches_per_epoch else ()
    for name in args.models:
        extra = (f"train.epochs={args.epochs}",) if args.epochs else ()
        run = _train(MODELS[name], cache, work / name, extra + batches)
        run["test"] = _evaluate(release, str(work / name / "best.pt"))
        report["trained"][name] = run
        write_json(args.out, report)  # after each model: a long run keeps what it measured
    if not args.no_collapse:
        for key, extra in (("collapse", ()), ("collapse_batch_norm", ("model.options.batch_norm=true",))):
            run = _train(COLLAPSE, cache, work / key, batches + extra)
            run["test"] = _evaluate(release, str(work / key / "last.pt"))
            report[key] = run
            write_json(args.out, report)
    write_json(args.out, report)
    for name, entry in {**report["baselines"], **{k: v["test"] for k, v in report["trained"].items()}}.items():
        print(f"{name:<10}" + "  ".join(f"{k} {v * 100:6.2f}" for k, v in entry["headline"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
