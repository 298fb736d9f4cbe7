"""``facemetric train``: train an embedding model from a YAML config."""

from __future__ import annotations

import argparse
import os

from facemetric.cli.common import add_data, add_out, add_overrides, input_file, print_json

HELP = "train an embedding model from a YAML config"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help=HELP,
        description=(
            "Train an embedding model. Flags override the config file; the resolved config, metrics (CSV, JSONL, "
            "TensorBoard) and checkpoints go to the run folder. Every key, with its default: `facemetric config`. "
            "Several processes, GPUs or machines: the same command under torchrun, e.g. "
            "`torchrun --standalone --nproc_per_node=4 -m facemetric train cfg.yaml` (DDP; margin heads as Partial FC; "
            "rank 0 writes the run folder; --resume with the same number of processes)."
        ),
    )
    p.add_argument(
        "config",
        nargs="?",
        type=input_file,
        help="YAML config (see `facemetric config` for every key); default: built-in defaults",
    )
    add_data(p, "dataset folder, CSV or prepared cache (sets data.source)", required=False)
    add_out(p, "the run folder (sets train.out)", required=False)
    p.add_argument("--epochs", type=int, help="number of epochs (sets train.epochs)")
    p.add_argument("--device", help="auto, cpu or cuda (sets train.device)")
    p.add_argument(
        "--resume", action="store_true", help="continue from <out>/last.pt (step, optimizer and schedule restored)"
    )
    add_overrides(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.core.config import load_config
    from facemetric.train.build import train

    flags = {"data.source": args.data, "train.out": args.out, "train.epochs": args.epochs, "train.device": args.device}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + args.overrides
    if args.quiet:
        overrides.append("train.progress=false")
    result = train(load_config(args.config, overrides), resume=args.resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 speaks for the run
        return 0
    print_json(
        {
            "run": str(result.out_dir),
            "epochs": result.epochs,
            "global_step": result.global_step,
            "best_accuracy": result.best_accuracy,
            "val": result.val.summary() if result.val else None,
        }
    )
    return 0
