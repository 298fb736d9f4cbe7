"""``facemetric models``: the backbones with parameters, FLOPs and CPU speed, and the pretrained models with the
licences of their weights."""

from __future__ import annotations

import argparse

from facemetric.cli.common import print_json

HELP = "list the backbones with parameters, FLOPs and CPU speed, and the pretrained models with their licences"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help=HELP,
        description=(
            "Every registered backbone at its natural input (3x112x112 faces; 1x32x32 patches for l2net/hardnet): "
            "parameter count, forward GFLOPs per image (counted by torch.utils.flop_counter, a multiply-add = 2) and "
            "CPU forward images/s (eval mode, batch 8, channels-last fp32, about 1 s per model). Use a name as "
            "model.name. Then the pretrained models --model takes by name, with their embedding size and the "
            "licence of their weights."
        ),
    )
    p.add_argument("names", nargs="*", help="only these models, backbones or pretrained (default: all)")
    p.add_argument("--embedding-dim", type=int, help="embedding size (default 512; 128 for l2net/hardnet)")
    p.add_argument("--max-params", help="mark which fit a parameter cap, e.g. 21M or 21000000")
    p.add_argument("--no-speed", action="store_true", help="skip the speed measurement (instant)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from facemetric.core.config import parse_count
    from facemetric.embedders.registry import PRETRAINED, pretrained_catalogue
    from facemetric.models.registry import MODELS
    from facemetric.models.zoo import catalogue, format_table

    for name in args.names:
        if name not in PRETRAINED:
            MODELS.get(name)  # an unknown name: one line listing the known ones
    backbones = [n for n in args.names if n in MODELS]
    cap = parse_count(args.max_params, "--max-params")
    rows = catalogue(args.embedding_dim, not args.no_speed, backbones or None) if backbones or not args.names else []
    pretrained = [r for r in pretrained_catalogue() if not args.names or r.name in args.names]
    if args.json:
        print_json(
            [{**asdict(r), "kind": "backbone", **({"fits": r.params <= cap} if cap else {})} for r in rows]
            + [{**asdict(r), "kind": "pretrained"} for r in pretrained]
        )
        return 0
    if rows:
        print(format_table(rows, cap))
    if pretrained:
        print(("\n" if rows else "") + "pretrained models (--model NAME):")
        print(f"{'name':<16}{'dim':>6}  licence of the weights")
        for r in pretrained:
            print(f"{r.name:<16}{r.embedding_dim or 'file':>6}  {r.licence}")
    return 0
