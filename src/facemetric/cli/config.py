"""``facemetric config``: print the resolved config, checked."""

from __future__ import annotations

import argparse

from facemetric.cli.common import add_overrides, input_file

HELP = "print the resolved config (defaults + file + overrides) as YAML, checked"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help=HELP,
        description=(
            "Prints every key of the config with its value (defaults, then the file, then --set overrides), after "
            "checking types, ranges, and that every named component and option exists."
        ),
    )
    p.add_argument("config", nargs="?", type=input_file, help="YAML config file")
    add_overrides(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from facemetric.core.config import load_config
    from facemetric.train.build import check_config

    cfg = load_config(args.config, args.overrides)
    check_config(cfg)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
