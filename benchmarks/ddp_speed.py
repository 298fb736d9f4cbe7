"""Benchmark: training images per second with 1 and with N processes (torchrun, DDP), same global batch.

    python benchmarks/ddp_speed.py [--config configs/orl.yaml] [--data ../shared/data/orl]
        [--procs 1 2] [--steps 12] [--set KEY=VALUE ...] [--out results.json]

Each setting is a real ``torchrun --standalone --nproc_per_node=N -m facemetric train`` run of two
epochs of ``--steps`` batches each (no validation); the second epoch's wall time (from the run's
``train.csv``) gives images/s = steps x global batch / seconds. Every process gets
``cores / N`` torch threads, so on a 2-core CPU two processes split the same cores one process
uses: the gain (if any) comes from overlapping one rank's data loading and communication with the
other's compute, and the cost is the all-reduce of the gradients plus the gathered loss. Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from facemetric.core.atomic import write_json


def one(config: str, data: str, procs: int, steps: int, overrides: list[str]) -> dict[str, Any]:
    """Images/s of the second epoch of a ``procs``-process run."""
    threads = max(1, (os.cpu_count() or 1) // procs)
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
            "-m", "facemetric", "-q", "train", config, "--data", data, "--out", tmp, "--epochs", "2",
            "--set", f"sampler.batches_per_epoch={steps}", "--set", "data.val_identities=0",
            "--set", f"train.threads={threads}", "--set", "train.progress=false", "--set", "data.workers=1",
        ]  # fmt: skip
        for o in overrides:
            command += ["--set", o]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{procs} process(es) failed:\n{done.stderr[-3000:]}")
        with open(Path(tmp) / "train.csv") as f:
            rows = list(csv.DictReader(f))
        cfg = (Path(tmp) / "config.yaml").read_text()
    seconds = float(rows[-1]["seconds"])
    batch = _batch(cfg)
    return {
        "processes": procs,
        "threads_per_process": threads,
        "global_batch": batch,
        "steps": steps,
        "epoch_seconds": seconds,
        "images_per_s": round(steps * batch / seconds, 1),
    }


def _batch(config_text: str) -> int:
    import yaml

    sampler = yaml.safe_load(config_text)["sampler"]
    return int(sampler["p"]) * int(sampler["k"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/orl.yaml")
    parser.add_argument("--data", default="../shared/data/orl")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=12, help="batches per epoch (the second epoch is timed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs = []
    for procs in args.procs:
        runs.append(one(args.config, args.data, procs, args.steps, args.overrides))
        print(json.dumps(runs[-1]), flush=True)
    report = {
        "benchmark": "ddp_speed",
        "date": datetime.date.today().isoformat(),
        "config": args.config,
        "data": args.data,
        "overrides": args.overrides,
        "cpu_count": os.cpu_count(),
        "runs": runs,
        "speedup": round(runs[-1]["images_per_s"] / runs[0]["images_per_s"], 2),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
