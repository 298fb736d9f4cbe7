"""Benchmark: forward + backward time and peak memory of every loss, beside pytorch-metric-learning.

    python benchmarks/loss_speed.py                      # B in {256, 1024, 4096}, d in {128, 512}
    python benchmarks/loss_speed.py --sizes 1024x512 --losses triplet_semi_hard arcface

Prints JSON: per (loss, B, d) facemetric's and PML's median forward+backward milliseconds,
their ratio (PML / facemetric: > 1 means facemetric is faster) and each one's peak memory
above the inputs (MiB, from the process's peak resident set, reset before each measurement).
Batches are P x K with K = 4, embeddings L2-normalised; margin-softmax losses get P classes.
pytorch-metric-learning is a benchmark dependency only (`pip install -e ".[test]"`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facemetric.losses import build_loss, loss_needs_classes
from facemetric.miners import build_miner

K = 4


@dataclass(frozen=True)
class Case:
    """One loss set-up: facemetric's registry name and settings (PML's twin, if any, is in _pml_cases)."""

    name: str
    loss: str
    options: dict
    pml_b3: bool = False  # PML materialises a B x B x B triplet mask here
    miner: tuple[str, dict] | None = None  # (name, options) of facemetric's miner; None: the loss's default


def _pml_cases() -> dict[str, Callable[[int, int], tuple]]:
    from pytorch_metric_learning import losses as L
    from pytorch_metric_learning import miners as M

    return {
        "triplet_batch_all": lambda c, d: (L.TripletMarginLoss(margin=0.2), None),
        "triplet_batch_hard": lambda c, d: (L.TripletMarginLoss(margin=0.2), M.BatchHardMiner()),
        "triplet_semi_hard": lambda c, d: (
            L.TripletMarginLoss(margin=0.2),
            M.TripletMarginMiner(margin=0.2, type_of_triplets="semihard"),
        ),
        "contrastive": lambda c, d: (L.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0), None),
        "circle": lambda c, d: (L.CircleLoss(m=0.25, gamma=256), None),
        "multi_similarity": lambda c, d: (
            L.MultiSimilarityLoss(alpha=2, beta=50, base=0.5),
            M.MultiSimilarityMiner(0.1),
        ),
        "supcon": lambda c, d: (L.SupConLoss(temperature=0.1), None),
        "normface": lambda c, d: (L.NormalizedSoftmaxLoss(c, d, temperature=1 / 32), None),
        "cosface": lambda c, d: (L.CosFaceLoss(c, d, margin=0.35, scale=64), None),
        "arcface": lambda c, d: (L.ArcFaceLoss(c, d, margin=28.6, scale=64), None),
        "subcenter_arcface": lambda c, d: (
            L.SubCenterArcFaceLoss(num_classes=c, embedding_size=d, margin=28.6, scale=64, sub_centers=3),
            None,
        ),
        "sphereface": lambda c, d: (L.SphereFaceLoss(c, d, margin=4, scale=1), None),
    }


CASES = [
    Case("triplet_batch_all", "triplet", {"margin": 0.2}, pml_b3=True, miner=("batch_all", {})),
    Case("triplet_batch_hard", "triplet", {"margin": 0.2}, miner=("batch_hard", {})),
    Case("triplet_semi_hard", "triplet", {"margin": 0.2}, pml_b3=True, miner=("semi_hard", {"selection": "all"})),
    Case("triplet_semi_hard_facenet", "triplet", {"margin": 0.2}, miner=("semi_hard", {})),  # hardest semi-hard only
    Case("contrastive", "contrastive", {}),
    Case("circle", "circle", {"m": 0.25, "gamma": 256}),
    Case("multi_similarity", "multi_similarity", {}, miner=("multi_similarity", {"epsilon": 0.1})),
    Case("supcon", "supcon", {"temperature": 0.1}),
    Case("softmax", "softmax", {}),
    Case("normface", "normface", {"scale": 32.0}),
    Case("cosface", "cosface", {"scale": 64.0, "margin": 0.35}),
    Case("arcface", "arcface", {"scale": 64.0, "margin": 0.5}),
    Case("subcenter_arcface", "arcface", {"scale": 64.0, "margin": 0.5, "subcenters": 3}),
    Case("combined_margin", "combined_margin", {}),
    Case("sphereface", "sphereface", {}),
    Case("center", "center", {}),
    Case("circle_class", "circle_class", {}),
]


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident set size
        return True
    except OSError:
        return False


def measure(fn: Callable[[], torch.Tensor], repeats: int, budget_s: float, memory: bool) -> float | None:
    """Median ms of fn + backward, or (``memory``) the peak MiB above the starting resident set."""
    fn().backward()  # warm-up
    if memory:
        if not _reset_peak():
            return None
        base = _rss_kib("VmRSS")
        fn().backward()
        return round((_rss_kib("VmHWM") - base) / 1024, 1)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn().backward()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def run_case(case: Case, b: int, d: int, repeats: int, budget_s: float, pml: dict[str, Callable], memory: bool) -> dict:
    """Time (or measure the memory of) one case at batch size b and dimension d, facemetric then PML."""
    p = b // K
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(b, d, generator=g), dim=1).requires_grad_(True)
    y = torch.arange(p).repeat_interleave(K)
    extra: dict = {"num_classes": p, "embedding_dim": d} if loss_needs_classes(case.loss) else {}
    if case.miner is not None:
        extra["miner"] = build_miner(case.miner[0], **case.miner[1])
    loss = build_loss(case.loss, **case.options, **extra)

    def ours() -> torch.Tensor:
        x.grad = None
        return loss(x, y)

    unit = "peak_mib" if memory else "ms"
    row: dict = {"loss": case.name, "B": b, "d": d}
    row[f"facemetric_{unit}"] = measure(ours, repeats, budget_s, memory)
    if case.name in pml:
        if case.pml_b3 and b > 2048:
            row["pml"] = f"skipped: PML builds a B^3 = {b**3 / 2**30:.0f} Gi-element triplet mask"
            return row
        pml_loss, miner = pml[case.name](p, d)

        def theirs() -> torch.Tensor:
            x.grad = None
            return pml_loss(x, y, miner(x, y)) if miner is not None else pml_loss(x, y)

        row[f"pml_{unit}"] = measure(theirs, repeats, budget_s, memory)
        if not memory:
            row["speedup"] = round(row["pml_ms"] / row["facemetric_ms"], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/loss_speed.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=[f"{b}x{d}" for b in (256, 1024, 4096) for d in (128, 512)],
        help="BxD batch sizes and embedding dimensions",
    )
    parser.add_argument("--losses", nargs="+", help="subset of case names (default: all)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per measurement at most (after one run)")
    parser.add_argument("--no-pml", action="store_true", help="facemetric only")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pml = {} if args.no_pml else _pml_cases()
    cases = [c for c in CASES if not args.losses or c.name in args.losses]
    rows = []
    for size in args.sizes:
        b, d = (int(v) for v in size.lower().split("x"))
        for case in cases:
            rows.append(run_case(case, b, d, args.repeats, args.budget, pml, args.memory_only))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.memory_only:
        print(json.dumps(rows))
        return 0
    # Peaks come from a child process whose large allocations are mmapped and returned on free, so
    # the resident-set peak is the real one; that setting slows allocation, hence a separate pass.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    child = [
        sys.executable,
        __file__,
        "--memory-only",
        *(argv if argv is not None else sys.argv[1:]),
    ]
    peaks = json.loads(subprocess.run(child, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout)
    for row, peak in zip(rows, peaks):
        row.update({k: v for k, v in peak.items() if k.endswith("peak_mib") or k == "pml"})
    print(
        json.dumps(
            {
                "benchmark": "losses",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "K": K,
                "rows": rows,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
