"""Benchmark: the evaluation protocols' own cost, after embeddings exist.

    python benchmarks/protocol_cost.py                    # 6,000-pair 10-fold protocol; retrieval on 1M x 128
    python benchmarks/protocol_cost.py --n 200000         # a smaller retrieval run

* ``verification``: LFW's protocol size, 6,000 pairs (3,000 genuine + 3,000 impostor) in 10
  identity-disjoint folds (:func:`build_pair_protocol`, timed apart) over 12,000 unit
  embeddings of 3,000 identities; the verification part of ``facemetric eval``
  (:func:`evaluate_embeddings`): scoring, k-fold accuracy with per-fold thresholds, ROC, AUC, EER,
  TAR@FAR, ROC/DET curves, the threshold at each stated FAR with its held-out check, the worst
  errors; median of ``--repeats`` wall-clock seconds. Target: < 1 s.
* ``retrieval``: ``--n`` float32 embeddings of dimension 128 (identities of ``--per-id`` images
  around random unit centres), leave-one-out :func:`retrieval_metrics` (P@1, R-precision,
  MAP@R, Recall@K) with the approximate IVF index (exact search of 10^6 x 10^6 is 2.6e14
  FLOPs, hours on this CPU), and exact search over the first ``--exact-n`` embeddings (whole
  identities: an easier problem with fewer distractors, a sanity check of the pipeline). Run in
  a child process so its peak resident memory (``ru_maxrss``) is the protocol's own. Target:
  < 4 GB peak for 10^6 x 128.

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def _clustered(n: int, dim: int, per_id: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors in identities of ``per_id`` around random centres (float32, built in blocks)."""
    rng = np.random.default_rng(seed)
    ids = n // per_id
    centres = rng.standard_normal((ids, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(ids), per_id)[:n]
    emb = np.empty((len(labels), dim), np.float32)
    for s in range(0, len(labels), 100_000):
        block = centres[labels[s : s + 100_000]] + noise * rng.standard_normal(
            (len(labels[s : s + 100_000]), dim), dtype=np.float32
        )
        emb[s : s + 100_000] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return emb, labels


def verification(repeats: int) -> dict:
    from facemetric.eval.suite.embeddings import PairsInput, evaluate_embeddings
    from facemetric.eval.verification.protocol import build_pair_protocol

    emb, labels = _clustered(12_000, 128, 4, 0.1, 0)
    names = np.array([f"id{k}" for k in labels])
    start = time.perf_counter()
    protocol = build_pair_protocol(names, n_folds=10, pairs_per_class=300, seed=0)
    build_seconds = time.perf_counter() - start
    pairs = PairsInput(protocol.i, protocol.j, protocol.same, protocol.fold, "benchmark")
    images = np.zeros((len(labels), 8, 8, 3), np.uint8)  # only the error gallery copies crops
    paths = [f"{n}/{k}.jpg" for k, n in enumerate(names)]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        report = evaluate_embeddings(emb, images, paths, list(names), pairs=pairs).summary.verification
        assert report is not None
        times.append(time.perf_counter() - start)
    return {
        "pairs": len(protocol),
        "folds": 10,
        "seconds_median": round(statistics.median(times), 4),
        "seconds_max": round(max(times), 4),
        "protocol_build_seconds": round(build_seconds, 4),
        "accuracy": round(report.accuracy, 4) if report is not None else None,
        "target_seconds": 1.0,
    }


def retrieval(n: int, per_id: int, exact_n: int, nprobe: int) -> dict:
    from facemetric.eval.retrieval.metrics import retrieval_metrics

    emb, labels = _clustered(n, 128, per_id, 0.1, 2)
    start = time.perf_counter()
    approx = retrieval_metrics(emb, labels, ks=(1, 5, 10), index="ivf", nprobe=nprobe)
    ivf_s = time.perf_counter() - start
    start = time.perf_counter()
    exact = retrieval_metrics(emb[:exact_n], labels[:exact_n], ks=(1, 5, 10))
    exact_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    keep = ("precision_at_1", "r_precision", "map_at_r", "recall_at_k")
    return {
        "n": n,
        "dim": 128,
        "per_identity": per_id,
        "ivf_nlist_nprobe": [int(round(4 * np.sqrt(n))), nprobe],
        "ivf": approx.model_dump(include=set(keep)),
        "ivf_seconds": round(ivf_s, 1),
        f"exact_first_{exact_n}": exact.model_dump(include=set(keep)),
        "exact_seconds": round(exact_s, 1),
        "embeddings_gib": round(emb.nbytes / 2**30, 3),
        "peak_rss_gib": round(peak, 2),
        "target_peak_gib": 4.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="retrieval embeddings (0: skip)")
    parser.add_argument("--per-id", type=int, default=10, help="images per identity in the retrieval data")
    parser.add_argument("--exact-n", type=int, default=20_000, help="subset searched exactly for comparison")
    parser.add_argument("--nprobe", type=int, default=32, help="IVF cells searched per query")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # the retrieval part alone, so ru_maxrss is its own
        print(json.dumps(retrieval(args.n, args.per_id, args.exact_n, args.nprobe)))
        return
    result = {"benchmark": "eval", "verification": verification(args.repeats)}
    if args.n:
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--n",
                str(args.n),
                "--per-id",
                str(args.per_id),
                "--exact-n",
                str(args.exact_n),
                "--nprobe",
                str(args.nprobe),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result["retrieval"] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
