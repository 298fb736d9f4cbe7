"""Benchmark: one-change ablations of a training recipe, on its held-out people.

    python benchmarks/ablations.py --base configs/lfw.yaml --epochs 10 --seeds 0 1 \\
        --variant baseline= --variant "shift=augment.shift=0.08" \\
        --variant "gap=model.options={head: gap}" \\
        --variant "gap+shift=model.options={head: gap};augment.shift=0.08" --out results.json

Each ``--variant NAME=OVERRIDE;OVERRIDE...`` is the base config with those ``--set`` overrides
(none: the base itself); ``--set`` overrides apply to every variant (e.g. leaving out the base's
extra sources), and ``--seeds-of NAME=SEED,SEED`` gives one variant its own seeds. Every variant
and seed trains from scratch with ``train.seed`` set and is measured the way every run validates:
held-out identities (``data.val_identities``), the project's identity-disjoint pair protocol,
k-fold accuracy. Reported per run: the last epoch's accuracy (no choice on held-out data), the
best epoch's, AUC, the last model's accuracy with each photo's mirror image added at test time
(``facemetric eval --flip``), and CPU-minutes of training; per variant: mean and spread over
seeds. Data are decoded once and shared by the variants that read them the same way. Run it
alone: minutes are wall-clock on this machine. Prints JSON; ``--markdown`` also prints the table.
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


def parse_seeds_of(texts: list[str]) -> dict[str, list[int]]:
    """``NAME=0,1`` entries -> {name: seeds}."""
    out: dict[str, list[int]] = {}
    for text in texts:
        name, sep, rest = text.partition("=")
        try:
            out[name] = [int(s) for s in rest.split(",") if s.strip()]
        except ValueError:
            out[name] = []
        if not sep or not name or not out[name]:
            raise SystemExit(f"--seeds-of wants NAME=SEED,SEED (e.g. baseline=0,1), got {text!r}")
    return out


def flip_accuracy(checkpoint: Path, val: Any, protocol: Any) -> float:
    """Held-out accuracy of ``checkpoint`` with each photo's mirror image added, on the run's own pairs."""
    from facemetric.embedders.torch_model import ModelEmbedder
    from facemetric.eval.primitives import cosine_scores
    from facemetric.eval.verification.metrics import verification_report

    emb = ModelEmbedder.from_checkpoint(checkpoint).embed_crops(np.asarray(val.images), flip=True)
    return float(
        verification_report(cosine_scores(emb, protocol.i, protocol.j), protocol.same, folds=protocol.fold).accuracy
    )


def run(
    base: Path | None,
    variants: list[tuple[str, list[str]]],
    seeds: list[int],
    epochs: int,
    work: Path,
    common: list[str] | None = None,
    seeds_of: dict[str, list[int]] | None = None,
) -> dict:
    from facemetric.core.config import load_config
    from facemetric.data.dataset import load_dataset
    from facemetric.train.build import build_run

    datasets: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for name, overrides in variants:
        for seed in (seeds_of or {}).get(name, seeds):
            out = work / f"{name}-seed{seed}"
            cfg = load_config(
                base,
                [
                    *(common or []),
                    f"train.epochs={epochs}",
                    f"train.val_every={max(1, epochs // 5)}",
                    *overrides,  # a variant may change the length too (a slower backbone at the same budget)
                    f"train.seed={seed}",
                    "train.progress=false",
                    "train.checkpoint_every_steps=0",
                    f"train.out={out}",
                ],
            )
            key = json.dumps(cfg.data.to_dict(), sort_keys=True)
            if key not in datasets:
                datasets[key] = load_dataset(cfg.data, progress=False)
            data = datasets[key]
            start = time.time()
            built = build_run(cfg, data=data)
            if built.validation is None:
                raise SystemExit(f"{name}: ablations compare held-out accuracy; set data.val_identities above 0")
            result = built.fit()
            minutes = (time.time() - start) / 60
            val = result.val.summary() if result.val else {}
            rows.append(
                {
                    "variant": name,
                    "overrides": overrides,
                    "seed": seed,
                    "accuracy_last": val.get("accuracy"),
                    "accuracy_best": result.best_accuracy,
                    "auc_last": val.get("auc"),
                    "accuracy_flip": round(flip_accuracy(out / "last.pt", data.val, built.validation.protocol), 4),
                    "held_out_people": len(data.val.identity_names),
                    "pairs": val.get("num_positive", 0) + val.get("num_negative", 0),
                    "folds": val.get("n_folds"),
                    "train_loss_last": round(built.trainer.history[-1]["loss"], 3) if built.trainer.history else None,
                    "minutes": round(minutes, 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return {"runs": rows, "summary": summarize(rows, [n for n, _ in variants])}


def summarize(rows: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """Per variant: mean and spread (max - min) over seeds of the last-epoch and mirror accuracies."""
    summary = {}
    for name in names:
        mine = [r for r in rows if r["variant"] == name]
        acc = np.array([r["accuracy_last"] for r in mine], dtype=float)
        flip = np.array([r["accuracy_flip"] for r in mine], dtype=float)
        summary[name] = {
            "accuracy_last_mean": round(float(acc.mean()), 4),
            "accuracy_last_spread": round(float(acc.max() - acc.min()), 4),
            "accuracy_flip_mean": round(float(flip.mean()), 4),
            "minutes_mean": round(float(np.mean([r["minutes"] for r in mine])), 1),
            "seeds": len(acc),
            "overrides": mine[0]["overrides"] if mine else [],
        }
    return summary


def markdown(summary: dict[str, dict[str, Any]], baseline: str | None = None) -> str:
    """The summary as a Markdown table; differences in points against ``baseline`` (default: the first row)."""
    names = list(summary)
    ref = summary[baseline or names[0]]["accuracy_last_mean"] if names else 0.0
    lines = [
        "| variant | change (`--set`) | held-out accuracy, last epoch | vs baseline | seeds (spread) "
        "| + mirror at test | minutes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in summary.items():
        change = "; ".join(f"`{o}`" for o in s["overrides"]) or "(the base)"
        delta = 100 * (s["accuracy_last_mean"] - ref)
        spread = f"{s['seeds']} ({100 * s['accuracy_last_spread']:.1f})" if s["seeds"] > 1 else "1"
        lines.append(
            f"| {name} | {change} | {s['accuracy_last_mean']:.4f} | {delta:+.1f} | {spread} | "
            f"{s['accuracy_flip_mean']:.4f} | {s['minutes_mean']:.1f} |"
        )
    return "\n".join(lines)


def rescore(run_dir: Path) -> dict[str, Any]:
    """A finished run's last.pt on its own held-out pairs, without and with the mirror image."""
    from facemetric.core.config import load_config
    from facemetric.embedders.torch_model import ModelEmbedder
    from facemetric.train.build import build_run

    cfg = load_config(run_dir / "config.yaml", ["train.progress=false", f"train.out={run_dir}/rescore"])
    built = build_run(cfg)
    if built.validation is None:
        raise SystemExit(f"{run_dir}: the run has no held-out people to score")
    plain = built.validation.evaluate(ModelEmbedder.from_checkpoint(run_dir / "last.pt").model)["accuracy"]
    flip = flip_accuracy(run_dir / "last.pt", built.data.val, built.validation.protocol)
    return {"run": str(run_dir), "accuracy_last": round(float(plain), 4), "accuracy_flip": round(flip, 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("configs/lfw.yaml"), help="the recipe varied")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=OVERRIDES")
    parser.add_argument(
        "--set", dest="common", action="append", default=[], metavar="KEY=VALUE", help="override for every variant"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--seeds-of", action="append", default=[], metavar="NAME=SEEDS", help="a variant's own seeds: baseline=0,1"
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facemetric-ablations"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true", help="also print the summary as a Markdown table")
    parser.add_argument("--rescore", type=Path, metavar="RUN", help="only score a finished run, plain and mirrored")
    args = parser.parse_args(argv)
    if args.rescore is not None:
        print(json.dumps(rescore(args.rescore)))
        return
    variants = [parse_variant(v) for v in args.variant] or [("baseline", [])]
    report = {
        "benchmark": "ablations",
        "date": datetime.date.today().isoformat(),
        "base": str(args.base),
        "common": args.common,
        "epochs": args.epochs,
        **run(args.base, variants, args.seeds, args.epochs, args.work, args.common, parse_seeds_of(args.seeds_of)),
    }
    print(json.dumps(report["summary"], indent=1))
    if args.markdown:
        print(markdown(report["summary"]))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
