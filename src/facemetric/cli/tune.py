"""``facemetric tune``: a hyper-parameter search (Optuna) over any config keys, resumable, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from facemetric.cli.common import add_data, add_out, add_overrides, input_file, print_json

HELP = "search hyper-parameters with Optuna (TPE, random or grid; pruning; resumable)"

EPILOG = """spaces (--param KEY=KIND(ARGS), KEY any config key):
  float(a,b)  float(a,b,step)  log(a,b)  int(a,b)  int(a,b,step)  logint(a,b)  choice(x,y,...)

examples:
  facemetric tune configs/orl.yaml --trials 20 --param loss.options.gamma='log(8,1024)' \\
      --param loss.options.m='float(0.05,0.5)' --set loss.name=circle
  facemetric tune configs/orl.yaml --sampler grid --set loss.name=circle \\
      --param loss.options.gamma='choice(8,16,32,64,128,256)' --param loss.options.m='float(0.15,0.35,0.05)'
  facemetric tune cfg.yaml --trials 30 --param loss.name='choice(arcface,cosface,circle)' --metric map@r
  facemetric train runs/tune-orl/best.yaml        train the best trial's config

Run the same command again to resume after Ctrl-C or a crash; run it in several terminals to share the
work (give each its own --seed with tpe/random)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help=HELP,
        description=(
            "Searches config values with Optuna. Each trial trains the config with the trial's values into "
            "OUT/trials/NNNN (a normal run folder) and is scored by its last held-out validation (--metric). "
            "The study lives in OUT/study.db (SQLite): it resumes where it stopped, and several processes can "
            "work on it. After every trial OUT/best.yaml (ready for `facemetric train`), OUT/tune.json and "
            "OUT/report.html (history, importances, slices, contours, validation curves, trial table) are "
            "rewritten. A trial that diverges (NaN) is recorded as failed with its reason; the study goes on."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config", nargs="?", type=input_file, help="YAML config every trial starts from (default: built-in defaults)"
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=SPACE", help="a config key and its space (repeatable)"
    )
    p.add_argument("--trials", type=int, help="finished trials the study should have (grid: default all combinations)")
    add_out(p, "the study's folder (default runs/tune-<config name>); the same folder resumes it", required=False)
    add_data(p, "dataset folder, CSV or prepared cache (sets data.source)", required=False)
    p.add_argument("--epochs", type=int, help="epochs of every trial (sets train.epochs)")
    p.add_argument("--sampler", default="tpe", choices=["tpe", "random", "grid"], help="search strategy (tpe)")
    p.add_argument(
        "--pruner",
        default="median",
        choices=["median", "hyperband", "none"],
        help="stop trials whose validation curve lags (median); needs train.val_every below train.epochs",
    )
    p.add_argument(
        "--metric",
        default="accuracy",
        help="held-out objective: accuracy, auc, eer, map@r, precision@1 or tar@far=1e-03 (default accuracy)",
    )
    p.add_argument("--direction", choices=["maximize", "minimize"], help="default: the metric's better direction")
    p.add_argument(
        "--prune-after",
        type=int,
        metavar="EPOCHS",
        help="judge no trial before this epoch (default a third of train.epochs: early validations mislead)",
    )
    p.add_argument("--seed", type=int, help="sampler seed (reproducible order of trials)")
    p.add_argument(
        "--startup", type=int, help="tpe: random trials before TPE models the space (default trials/3, 3-10)"
    )
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="start no trial after this long")
    add_overrides(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.core.config import load_config
    from facemetric.tune import TuneSettings, parse_space, tune

    flags = {"data.source": args.data, "train.epochs": args.epochs}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + args.overrides
    base = load_config(args.config, overrides).to_dict()
    name = Path(args.config).stem if args.config else "default"
    study = Path(args.out) if args.out else Path("runs") / f"tune-{name}"
    settings = TuneSettings(
        base=base,
        params=parse_space(args.param),
        study_dir=study,
        trials=args.trials,
        sampler=args.sampler,
        pruner=args.pruner,
        metric=args.metric,
        direction=args.direction,
        seed=args.seed,
        startup=args.startup,
        prune_after=args.prune_after,
        timeout_s=args.timeout,
        progress=not args.quiet,
    )
    try:
        result = tune(settings)
    except KeyboardInterrupt:
        print(f"interrupted: the study is kept in {study}; run the same command again to resume")
        return 130
    print_json(
        {
            "study": str(result.study_dir),
            "best_trial": result.best_trial,
            "best_value": result.best_value,
            "best_params": result.best_params,
            "best_config": str(result.best_config) if result.best_config else None,
            "trials": result.counts,
            "report": str(study / "report.html"),
        }
    )
    return 0
