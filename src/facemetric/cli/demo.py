"""``facemetric demo``: data -> train -> evaluate -> summary table."""

from __future__ import annotations

import argparse

from facemetric.cli.common import add_data, add_out, add_overrides

HELP = "end to end: data -> train -> evaluate -> summary table"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help=HELP,
        description=(
            "Without --data: a synthetic identity dataset is generated and the whole pipeline runs in a few CPU "
            "minutes. With --data: the same on your dataset."
        ),
    )
    add_data(p, "dataset folder or CSV instead of synthetic faces", required=False)
    add_out(p, "the demo's folder (default: runs/demo)", required=False, default="runs/demo")
    add_overrides(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.demo import run_demo

    run_demo(args.data, args.out, args.overrides, progress=not args.quiet)
    return 0
