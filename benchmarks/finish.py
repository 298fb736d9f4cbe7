"""Benchmark: the colour + normalisation pass of a uint8 batch, three ways.

    python benchmarks/finish.py [--batch 128 --size 112 --repeats 30]

* ``finish``: :func:`facemetric.data.augment.finish`: the (N, H, W, C) uint8 pixels keep their
  interleaved order (channels-last float32 out), seen as rows of 16 pixels with per-row
  coefficients; in-place passes on groups of images that fit a core's L2 cache;
* ``planes``: transpose into contiguous (N, C, H, W) float32 planes, then in-place passes
  (scale, shift, clamp per channel plane);
* ``addcmul``: one broadcasting ``addcmul`` from the channels-last uint8 view, tensor clamp bounds.

Milliseconds per batch, median of ``--repeats``, with 1 and 2 torch threads. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from facemetric.data.augment import Draws, finish

MEAN, STD = (0.54, 0.43, 0.35), (0.25, 0.22, 0.21)  # LFW-like statistics: per-channel clamp bounds


def _addcmul(images: torch.Tensor, draws: Draws) -> torch.Tensor:
    pixels = images.permute(0, 3, 1, 2)
    n, c = pixels.shape[:2]
    gain, beta = torch.from_numpy(draws.gain), torch.from_numpy(draws.beta)
    m, s = torch.tensor(MEAN).view(1, c, 1, 1), torch.tensor(STD).view(1, c, 1, 1)
    alpha = gain.view(n, 1, 1, 1) / (255.0 * s)
    gamma = (beta.view(n, 1, 1, 1) - m) / s
    return torch.addcmul(gamma, pixels, alpha).clamp_((0 - m) / s, (1 - m) / s)


def _planes(images: torch.Tensor, draws: Draws, out: torch.Tensor) -> torch.Tensor:
    n, c = images.shape[0], images.shape[-1]
    gain, beta = torch.from_numpy(draws.gain), torch.from_numpy(draws.beta)
    m, s = torch.tensor(MEAN).view(1, c, 1, 1), torch.tensor(STD).view(1, c, 1, 1)
    out.copy_(images.permute(0, 3, 1, 2))
    out.mul_(gain.view(n, 1, 1, 1) / (255.0 * s)).add_((beta.view(n, 1, 1, 1) - m) / s)
    for ch in range(c):
        out[:, ch].clamp_(-MEAN[ch] / STD[ch], (1 - MEAN[ch]) / STD[ch])
    return out


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1e3, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n = args.batch
    images = torch.from_numpy(rng.integers(0, 256, (n, args.size, args.size, 3), dtype=np.uint8))
    draws = Draws(
        rng.uniform(0.8, 1.2, n).astype(np.float32),
        rng.uniform(-0.2, 0.2, n).astype(np.float32),
        np.ones(n, np.float32),
        {},
    )
    out = torch.empty(n, 3, args.size, args.size, memory_format=torch.channels_last)
    planes = torch.empty(n, 3, args.size, args.size)
    want = _addcmul(images, draws)  # the same values three ways
    assert torch.allclose(finish(images, draws, MEAN, STD), want, atol=1e-5)
    assert torch.allclose(_planes(images, draws, planes), want, atol=1e-5)
    result: dict = {"benchmark": "finish", "batch": n, "size": args.size, "ms_per_batch": {}}
    threads = torch.get_num_threads()
    for t in sorted({1, min(2, threads)}):
        torch.set_num_threads(t)
        built = _median_ms(lambda: finish(images, draws, MEAN, STD, out=out), args.repeats)
        plane = _median_ms(lambda: _planes(images, draws, planes), args.repeats)
        base = _median_ms(lambda: _addcmul(images, draws), args.repeats)
        result["ms_per_batch"][f"{t}_threads"] = {
            "finish": built,
            "planes": plane,
            "addcmul": base,
            "speedup_vs_addcmul": round(base / built, 2),
        }
    torch.set_num_threads(threads)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
