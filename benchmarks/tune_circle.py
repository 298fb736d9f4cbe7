"""Benchmark: the circle-loss search the paper's author did by hand, as a grid against TPE, with and without pruning.

    python benchmarks/tune_circle.py --out benchmarks/results/DATE-tune-circle.json \\
        --plot benchmarks/results/DATE-tune-circle.png

The space is circle loss's gamma in {8, 16, 32, 64, 128, 256} x m in {0.15, 0.20, ..., 0.35} (30
combinations). Studies, each from the same base config (``--config``, default configs/orl.yaml: 30
people train, 10 held out; every trial the same epochs, seed and data):

* ``grid``: all 30 combinations, no pruning;
* ``grid+median``: the same 30 with Optuna's median pruner (validation every ``--val-every`` epochs);
* ``tpe`` (one study per ``--tpe-seeds``): a third of the trials (10), no pruning, on the same space.

Reported per study: the best held-out accuracy found, the running best against trials and against
CPU-minutes (this process's CPU time of each trial), how many trials were pruned or failed, and the
compute pruning saved. The objective is each trial's last validation (no choice on held-out data).
No trial may end in NaN: failed trials are listed with their reason. Run it alone on the cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
from pathlib import Path
from typing import Any

from facemetric.core.atomic import write_json
from facemetric.core.config import load_config
from facemetric.tune import TuneSettings, parse_space, tune
from facemetric.tune.study import trial_rows

SPACE = ["loss.options.gamma=choice(8,16,32,64,128,256)", "loss.options.m=float(0.15,0.35,0.05)"]


def _study(name: str, base: dict[str, Any], work: Path, **kwargs: Any) -> dict[str, Any]:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)  # a benchmark measures a fresh study
    settings = TuneSettings(base=base, params=parse_space(SPACE), study_dir=folder, progress=False, **kwargs)
    result = tune(settings)
    import optuna

    study = optuna.load_study(study_name="facemetric", storage=f"sqlite:///{(folder / 'study.db').resolve()}")
    rows = trial_rows(study)
    best, cpu, running = None, 0.0, []
    for row in rows:
        cpu += row["cpu_seconds"] or 0.0
        if row["state"] == "COMPLETE" and (best is None or row["value"] > best):
            best = row["value"]
        running.append({"trial": row["number"] + 1, "cpu_minutes": round(cpu / 60, 3), "best": best})
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    epochs = base["train"]["epochs"]
    return {
        "study": name,
        "settings": {**kwargs, **({"prune_after": max(1, epochs // 3)} if kwargs.get("pruner") != "none" else {})},
        "best_accuracy": result.best_value,
        "best_params": result.best_params,
        "trials": len(rows),
        "states": counts,
        "failed": [{"trial": r["number"], "reason": r["failed_reason"]} for r in rows if r["state"] == "FAIL"],
        "cpu_minutes": round(cpu / 60, 2),
        "wall_minutes": round(sum(r["seconds"] or 0.0 for r in rows) / 60, 2),
        "running_best": running,
        "trial_rows": [
            {k: r[k] for k in ("number", "state", "params", "value", "cpu_seconds", "pruned_at_epoch", "curve")}
            for r in rows
        ],
    }


def replay_pruners(grid: dict[str, Any], order: list[dict[str, Any]], epochs: int) -> list[dict[str, Any]]:
    """The median pruner at other settings, replayed on the grid study's validation curves in the pruned
    study's trial order (training is deterministic: a configuration's curve is the same in every study,
    so this is what those settings would have pruned; CPU as each trial's share of its epochs)."""
    import optuna

    curves = {json.dumps(r["params"], sort_keys=True): r for r in grid["trial_rows"]}
    total = sum(r["cpu_seconds"] for r in grid["trial_rows"])
    out = []
    for after, startup in [(0, 3), (max(1, epochs // 3), 5), (epochs // 2, 5), (2 * epochs // 3, 5)]:
        study = optuna.create_study(
            direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=after)
        )
        cpu, best, pruned = 0.0, None, 0
        for row in order:
            done, trial = curves[json.dumps(row["params"], sort_keys=True)], study.ask()
            stopped = epochs
            for epoch in sorted(done["curve"], key=int):
                trial.report(done["curve"][epoch], int(epoch))
                if int(epoch) < epochs and trial.should_prune():
                    stopped = int(epoch)
                    break
            cpu += done["cpu_seconds"] * stopped / epochs
            if stopped < epochs:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned += 1
            else:
                study.tell(trial, done["value"])
                best = done["value"] if best is None else max(best, done["value"])
        out.append(
            {
                "judges_from_epoch": after,
                "startup_trials": startup,
                "pruned": pruned,
                "best_accuracy": best,
                "cpu_fraction_of_grid": round(cpu / total, 3),
            }
        )
    return out


def summarise(studies: list[dict[str, Any]]) -> dict[str, Any]:
    by_name = {s["study"]: s for s in studies}
    grid, pruned = by_name.get("grid"), by_name.get("grid+median")
    tpe = [s for s in studies if s["study"].startswith("tpe")]
    return {
        "grid_best": grid["best_accuracy"] if grid else None,
        "grid_cpu_minutes": grid["cpu_minutes"] if grid else None,
        "pruning_saved_cpu_fraction": round(1 - pruned["cpu_minutes"] / grid["cpu_minutes"], 3)
        if grid and pruned
        else None,
        "pruned_grid_best": pruned["best_accuracy"] if pruned else None,
        "tpe_best_mean": round(sum(s["best_accuracy"] for s in tpe) / len(tpe), 4) if tpe else None,
        "tpe_best": [s["best_accuracy"] for s in tpe],
        "tpe_cpu_minutes_mean": round(sum(s["cpu_minutes"] for s in tpe) / len(tpe), 2) if tpe else None,
        "failed_trials": sum(len(s["failed"]) for s in studies),
        # what 10 trials drawn at random from the grid find on average (exact, from the grid's results)
        "random10_expected_best": round(expected_best(grid, 10), 4) if grid else None,
    }


def expected_best(grid: dict[str, Any], draws: int) -> float:
    """The mean best of ``draws`` grid points drawn without replacement: sum over ranks of P(best is it)."""
    values = sorted((r["value"] for r in grid["trial_rows"]), reverse=True)
    n = len(values)
    return sum(v * math.comb(n - 1 - i, draws - 1) / math.comb(n, draws) for i, v in enumerate(values))


def _replayed(studies: list[dict[str, Any]], epochs: int) -> list[dict[str, Any]]:
    by_name = {s["study"]: s for s in studies}
    if "grid" not in by_name or "grid+median" not in by_name:
        return []
    return replay_pruners(by_name["grid"], by_name["grid+median"]["trial_rows"], epochs)


def plot(studies: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    by_trial, by_cpu = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for s in studies:
        points = [p for p in s["running_best"] if p["best"] is not None]
        style = "--" if s["study"].startswith("tpe") else "-"
        by_trial.step(
            [p["trial"] for p in points], [p["best"] for p in points], where="post", ls=style, label=s["study"]
        )
        by_cpu.step([p["cpu_minutes"] for p in points], [p["best"] for p in points], where="post", ls=style)
    by_trial.set(xlabel="trials", ylabel="best held-out accuracy so far", title="best found against trials")
    by_cpu.set(xlabel="CPU-minutes", title="best found against compute")
    by_trial.legend(fontsize=8)
    for ax in (by_trial, by_cpu):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/orl.yaml", help="base config (default configs/orl.yaml)")
    parser.add_argument("--data", help="sets data.source (default: the config's)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of every trial (30)")
    parser.add_argument("--val-every", type=int, default=5, help="validation (and pruning) every N epochs (5)")
    parser.add_argument("--tpe-seeds", type=int, nargs="+", default=[0, 1, 2], help="one TPE study per seed")
    parser.add_argument("--work", default="runs/bench-tune-circle", help="study folders")
    parser.add_argument("--out", help="JSON results")
    parser.add_argument("--plot", help="PNG: running best against trials and CPU-minutes")
    parser.add_argument(
        "--studies", nargs="*", help="run only these (grid, grid+median, tpe-seedN; none: only summarise --reuse)"
    )
    parser.add_argument("--reuse", help="take the studies not run now from this earlier JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="more config overrides")
    args = parser.parse_args(argv)
    overrides = [
        "loss.name=circle",
        "loss.options={}",
        f"train.epochs={args.epochs}",
        f"train.val_every={args.val_every}",
        "train.loggers=[]",
        "train.progress=false",
        "data.workers=0",  # augmentation in the trial's own process: its CPU time is the trial's
        *([f"data.source={args.data}"] if args.data else []),
        *args.overrides,
    ]
    base = load_config(args.config, overrides).to_dict()
    work = Path(args.work)
    plan = {"grid": {"sampler": "grid", "pruner": "none", "seed": 0}}
    plan["grid+median"] = {"sampler": "grid", "pruner": "median", "seed": 0}
    for seed in args.tpe_seeds:
        plan[f"tpe-seed{seed}"] = {"sampler": "tpe", "pruner": "none", "seed": seed, "trials": 10}
    earlier: dict[str, Any] = {}
    replaced = []
    if args.reuse:  # studies not run now come from an earlier run's JSON (same config and space)
        old = json.loads(Path(args.reuse).read_text())
        if old["overrides"] != overrides or old["space"] != SPACE:
            raise SystemExit(f"--reuse {args.reuse}: measured with other settings; run every study again")
        earlier = {s["study"]: s for s in old["studies"]}
        replaced = old.get("replaced", [])
    chosen = list(plan) if args.studies is None else args.studies
    studies = []
    for name in plan:
        if name in chosen:
            studies.append(_study(name, base, work, **plan[name]))
            if name in earlier:
                replaced.append({**earlier[name], "replaced_on": datetime.date.today().isoformat()})
        elif name in earlier:
            studies.append(earlier[name])
    report = {
        "benchmark": "tune_circle",
        "date": datetime.date.today().isoformat(),
        "config": args.config,
        "overrides": overrides,
        "space": SPACE,
        "grid_size": 30,
        "summary": summarise(studies),
        "replayed_pruners": _replayed(studies, base["train"]["epochs"]),
        "studies": studies,
        "replaced": replaced,  # earlier measurements of a study run again (e.g. before a default changed)
    }
    if args.out:
        write_json(args.out, report)
    if args.plot:
        plot(studies, Path(args.plot))
    print(json.dumps({"summary": report["summary"], **{s["study"]: s["best_params"] for s in studies}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
