"""Benchmark: row L2-normalisation forward + backward, facemetric's closed form vs ``F.normalize``.

    python benchmarks/normalize.py

Median milliseconds over 200 passes for (B, d) in {(1024, 512), (4096, 512), (768, 512)} (the
last: a margin head's class weights). Prints JSON.
"""

from __future__ import annotations

import json
import statistics
import time

import torch
import torch.nn.functional as F

from facemetric.ops.normalize import normalize_rows


def _median_ms(fn, x: torch.Tensor, grad: torch.Tensor, repeats: int = 200) -> float:
    for _ in range(5):
        fn(x).backward(grad)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x).backward(grad)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    rows = []
    for b, d in ((1024, 512), (4096, 512), (768, 512)):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(b, d, generator=g, requires_grad=True)
        grad = torch.randn(b, d, generator=g)
        ours = _median_ms(normalize_rows, x, grad)
        theirs = _median_ms(lambda t: F.normalize(t, dim=1), x, grad)
        rows.append(
            {
                "B": b,
                "d": d,
                "facemetric_ms": round(ours, 3),
                "F.normalize_ms": round(theirs, 3),
                "speedup": round(theirs / ours, 2),
            }
        )
    print(
        json.dumps(
            {"benchmark": "normalize", "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
