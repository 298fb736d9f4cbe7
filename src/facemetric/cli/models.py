"""``facemetric models``: the backbones with parameters, FLOPs and CPU speed."""

from __future__ import annotations

import argparse

from facemetric.cli.common import print_json

HELP = "list the backbones with parameters, FLOPs and CPU speed"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help=HELP,
        description=(
            "Every registered backbone at its natural input (3x112x112 faces; 1x32x32 patches for l2net/hardnet): "
            "parameter count, forward GFLOPs per image (counted by torch.utils.flop_counter, a multiply-add = 2) and "
            "CPU forward images/s (eval mode, batch 8, channels-last fp32, about 1 s per model). Use a name as "
            "model.name."
        ),
    )
    p.add_argument("names", nargs="*", help="only these models (default: all)")
    p.add_argument("--embedding-dim", type=int, help="embedding size (default 512; 128 for l2net/hardnet)")
    p.add_argument("--max-params", help="mark which fit a parameter cap, e.g. 21M or 21000000")
    p.add_argument("--no-speed", action="store_true", help="skip the speed measurement (instant)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from facemetric.core.config import parse_count
    from facemetric.models.registry import MODELS
    from facemetric.models.zoo import catalogue, format_table

    for name in args.names:
        MODELS.get(name)  # an unknown name: one line listing the known ones
    cap = parse_count(args.max_params, "--max-params")
    rows = catalogue(args.embedding_dim, not args.no_speed, args.names or None)
    if args.json:
        print_json([{**asdict(r), **({"fits": r.params <= cap} if cap else {})} for r in rows])
    else:
        print(format_table(rows, cap))
    return 0
