"""Learning curves of finished runs: held-out accuracy against minutes of training, one line per run.

    python benchmarks/learning_curves.py NAME=RUN_DIR [NAME=RUN_DIR ...] --png curves.png [--out points.json]

Reads each run's ``metrics.jsonl`` (validation records and the epochs' own seconds, so validation
time and pauses are not counted), draws the curves into ``--png`` and writes the points (minutes,
accuracy) and each run's last accuracy as JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from facemetric.core.atomic import write_atomic, write_json


def curves(runs: dict[str, Path]) -> tuple[dict[str, Any], bytes]:
    from facemetric.report.plots import learning_curves, training_minutes
    from facemetric.report.training import read_metrics

    rows = {name: read_metrics(run / "metrics.jsonl") for name, run in runs.items()}
    points: dict[str, Any] = {}
    for name, (train, val) in rows.items():
        steps = [r["step"] for r in val if "accuracy" in r]
        minutes = training_minutes(train, steps) or []
        points[name] = {
            "run": str(runs[name]),
            "minutes": minutes,
            "accuracy": [round(r["accuracy"], 4) for r in val if "accuracy" in r],
            "last_accuracy": round(val[-1]["accuracy"], 4) if val else None,
            "training_minutes": round(minutes[-1], 1) if minutes else None,
        }
    return points, learning_curves(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs: dict[str, Path] = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep or not (Path(path) / "metrics.jsonl").is_file():
            raise SystemExit(f"{item}: expected NAME=RUN_DIR with RUN_DIR/metrics.jsonl")
        runs[name] = Path(path)
    points, png = curves(runs)
    write_atomic(args.png, png)
    report = {"benchmark": "learning_curves", "date": datetime.date.today().isoformat(), "runs": points}
    print(json.dumps(report, indent=1))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
