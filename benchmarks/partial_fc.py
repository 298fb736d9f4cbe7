"""Benchmark: Partial FC's memory per process and step time, 1,000,000 identities x 512-d on CPU.

    python benchmarks/partial_fc.py [--classes 1000000] [--dim 512] [--worlds 1 2]
        [--rates 1.0 0.1] [--batch 128] [--steps 3] [--out results.json]

For each world size W, W gloo processes (spawned here, as torchrun would start them) each build the
Partial FC shard of an ArcFace head over ``--classes`` identities, and train it with SGD + momentum
(arcface_torch's optimiser for the head) on random unit embeddings: ``--batch`` per process, labels
drawn over all classes. Reported per rank: the shard's centres and momentum in MB (exact: rows x dim
x 4 bytes x 2), the process's peak resident memory, and the median step time (forward, backward,
update) at each ``--rates`` sample rate. With 2 cores, W = 2 runs two processes on one core each, so
its step times say what sharding costs in communication, not what W GPUs gain. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from facemetric.core.atomic import write_json


def _rank(rank: int, world: int, port: int, args: dict[str, Any], out: str) -> None:
    from facemetric.losses.arcface import ArcFaceLoss
    from facemetric.losses.partial_fc import PartialFC, seeded_centres, shard_range

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    classes, dim, batch = args["classes"], args["dim"], args["batch"]
    shard = shard_range(classes, rank, world)
    head = ArcFaceLoss(num_classes=shard[1], embedding_dim=dim)
    with torch.no_grad():
        head.weight.copy_(seeded_centres(shard, 1, dim, seed=0))
    result: dict[str, Any] = {"rank": rank, "classes_here": shard[1]}
    gen = torch.Generator().manual_seed(rank)
    for rate in args["rates"]:
        pfc = PartialFC(head, classes, shard, rate)
        optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
        times = []
        for step in range(args["steps"] + 1):
            emb = torch.nn.functional.normalize(torch.randn(batch, dim, generator=gen), dim=1).requires_grad_()
            labels = torch.randint(0, classes, (batch,), generator=gen)
            dist.barrier()
            t = time.perf_counter()
            loss = pfc(emb, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step:  # the first step allocates the momentum
                times.append(time.perf_counter() - t)
        state_bytes = sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values())
        result[f"rate_{rate}"] = {
            "step_ms_median": round(1000 * statistics.median(times), 1),
            "centres_sampled": pfc.num_sample,
            "loss": round(float(loss), 4),
        }
        result["centres_mb"] = round(head.weight.numel() * 4 / 2**20, 1)
        result["momentum_mb"] = round(state_bytes / 2**20, 1)
        del optimizer
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(classes: int, dim: int, worlds: list[int], rates: list[float], batch: int, steps: int) -> dict[str, Any]:
    """One entry per world size: every rank's figures."""
    args = {"classes": classes, "dim": dim, "rates": rates, "batch": batch, "steps": steps}
    results: dict[str, Any] = {}
    for world in worlds:
        with tempfile.TemporaryDirectory() as tmp:
            mp.start_processes(_rank, args=(world, _free_port(), args, tmp), nprocs=world, start_method="spawn")
            ranks = [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(world)]
        results[str(world)] = {"ranks": ranks}
        print(f"world {world}: {json.dumps(ranks[0])}", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--batch", type=int, default=128, help="embeddings per process and step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per sample rate (after one untimed)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = {
        "benchmark": "partial_fc",
        "date": datetime.date.today().isoformat(),
        "classes": args.classes,
        "dim": args.dim,
        "batch_per_process": args.batch,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "worlds": measure(args.classes, args.dim, args.worlds, args.rates, args.batch, args.steps),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
