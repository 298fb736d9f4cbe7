"""Are two training runs the same? Their final weights and per-epoch losses, compared exactly.

    python benchmarks/compare_runs.py RUN_A RUN_B

Used to show that a refactoring left training unchanged: the same config and seed trained by two
versions of facemetric (e.g. one checked out with ``git worktree add``) must give bit-identical
weights. Prints the largest absolute difference of any weight in ``last.pt`` and whether every
epoch's mean loss in ``train.csv`` is equal, as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch


def compare(run_a: Path, run_b: Path) -> dict:
    a = torch.load(run_a / "last.pt", map_location="cpu", weights_only=False)
    b = torch.load(run_b / "last.pt", map_location="cpu", weights_only=False)
    if a["model"].keys() != b["model"].keys():
        return {"same_architecture": False}
    diff = max(float((a["model"][k].double() - b["model"][k].double()).abs().max()) for k in a["model"])
    losses = [[row["loss"] for row in csv.DictReader((run / "train.csv").open())] for run in (run_a, run_b)]
    return {
        "same_architecture": True,
        "global_steps": [a["global_step"], b["global_step"]],
        "max_abs_weight_difference": diff,
        "epoch_losses_equal": losses[0] == losses[1],
        "epochs": [len(losses[0]), len(losses[1])],
        "first_epoch_losses": [x[0] for x in losses],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args(argv)
    print(
        json.dumps(
            {
                "benchmark": "compare_runs",
                "runs": [str(args.run_a), str(args.run_b)],
                **compare(args.run_a, args.run_b),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
