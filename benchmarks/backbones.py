"""Benchmark: every backbone's size, FLOPs and CPU speed, fp32 vs bf16, contiguous vs channels-last.

    python benchmarks/backbones.py                           # speed table, all models (minutes)
    python benchmarks/backbones.py --models iresnet50 mobilefacenet --batch 8
    python benchmarks/backbones.py --speed 0 --train-steps 10   # short real runs on LFW instead

Speed: each model at its natural input (3x112x112; 1x32x32 for l2net/hardnet), 512-d embedding
(128-d for the patch models), batch ``--batch``. For each memory format (contiguous NCHW,
channels-last) and precision (fp32; bf16 autocast) it times eval-mode forward passes and
train-mode forward + backward passes (loss = sum of the embeddings) for at least ``--seconds``
after a warm-up, and reports images/s plus how far bf16 embeddings drift from fp32 (1 - cosine).

``--train-steps N``: a short real training run per model on ``lfw-devtrain`` (prepared at
112x112 RGB, or 32x32 grey for the patch models, both with ``--align center``): N steps of
P x K = 8 x 4 with the default ArcFace loss and the project's CPU defaults (warm-up shortened
to the first quarter of the run), then held-out
verification on 100 unseen identities. Reports the loss over the first and last 3 steps,
images/s and accuracy: it shows each backbone trains on real faces without NaN, not how good it
gets (that takes hours per model on this CPU). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from facemetric.models import available_models, build_natural, model_spec
from facemetric.models.budget import count_flops, count_parameters
from facemetric.models.zoo import images_per_second
from facemetric.train.callbacks import Callback, StepOutput

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def _timed(fn, batch: int, seconds: float) -> float:
    return round(images_per_second(fn, batch, seconds), 2)


def speed(name: str, batch: int, seconds: float) -> dict:
    """Parameters, FLOPs, and forward / forward+backward images/s per (format, precision)."""
    spec = model_spec(name)
    (h, w), c = spec.input_size, spec.channels
    torch.manual_seed(0)
    model = build_natural(name)
    row: dict = {
        "model": name,
        "input": [c, h, w],
        "embedding_dim": model.embedding_dim,
        "params": count_parameters(model),
        "gflops": round(count_flops(model, (c, h, w)) / 1e9, 3),
    }
    x = torch.randn(batch, c, h, w, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # before any train-mode pass moves the BN statistics
        reference = model.eval()(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x).float()
        row["bf16_max_cosine_drift"] = round(float((1 - F.cosine_similarity(low, reference)).max()), 6)
    for fmt_name, fmt in FORMATS.items():
        net, xin = model.to(memory_format=fmt), x.contiguous(memory_format=fmt)  # type: ignore[call-overload]
        for precision in ("fp32", "bf16"):
            cast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

            def forward(net: torch.nn.Module = net, xin: torch.Tensor = xin, cast: Any = cast) -> None:
                with torch.no_grad(), cast:
                    net.eval()(xin)

            def forward_backward(net: torch.nn.Module = net, xin: torch.Tensor = xin, cast: Any = cast) -> None:
                net.train()
                net.zero_grad(set_to_none=True)
                with cast:
                    out = net(xin)
                out.float().sum().backward()

            key = f"{fmt_name}/{precision}"
            row[f"forward_img_s/{key}"] = _timed(forward, batch, seconds)
            row[f"train_img_s/{key}"] = _timed(forward_backward, batch, seconds)
        print(f"{name}: {fmt_name} done", file=sys.stderr)
    return row


class LossRecorder(Callback):
    """Keeps every step's loss."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_batch_end(self, trainer: object, output: StepOutput) -> None:
        self.values.append(output.loss)


def short_run(name: str, steps: int, caches: dict[str, str]) -> dict:
    """``steps`` training steps on LFW, then held-out verification; see the module docstring."""
    from facemetric.core.config import load_config
    from facemetric.train.build import build_run

    spec = model_spec(name)
    patch = spec.channels == 1  # L2-Net / HardNet: grey patches
    (h, w), c = spec.input_size, spec.channels
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            None,
            [
                f"data.source={caches['patch' if patch else 'face']}",
                f"data.image_size=[{h}, {w}]",
                f"data.channels={c}",
                "data.val_identities=100",
                "data.val_pairs=1000",
                f"model.name={name}",
                f"model.embedding_dim={128 if patch else 512}",
                "train.epochs=1",
                f"sampler.batches_per_epoch={steps}",
                "sampler.p=8",
                "sampler.k=4",
                f"train.out={out}",
                "train.progress=false",
                "scheduler.options.warmup_epochs=0.25",  # the default warms up over a whole epoch: all of a short run
            ],
        )
        losses = LossRecorder()
        run = build_run(cfg, callbacks=[losses])
        start = time.time()
        result = run.fit()
        seconds = time.time() - start
    row = {
        "model": name,
        "steps": steps,
        "seconds": round(seconds, 1),
        "images_per_s": round(steps * 32 / seconds, 2),
        "val_accuracy": result.val.summary().get("accuracy") if result.val else None,
    }
    if losses.values:
        row["loss_first3"] = round(sum(losses.values[:3]) / len(losses.values[:3]), 4)
        row["loss_last3"] = round(sum(losses.values[-3:]) / len(losses.values[-3:]), 4)
    return row


def _caches(source: str) -> dict[str, str]:
    from facemetric.data.prepare import PrepareOptions, prepare

    caches = {"face": ".cache/bench-data-lfw112", "patch": ".cache/bench-models-lfw32-grey"}
    prepare(source, caches["face"], PrepareOptions(112, "center", align_options={"fraction": 0.55}), progress=False)
    prepare(
        source,
        caches["patch"],
        PrepareOptions(32, "center", channels=1, align_options={"fraction": 0.55}),
        progress=False,
    )
    return caches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="model names (default: every registered model)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--speed", type=float, default=1.5, help="seconds timed per measurement (0: skip speed)")
    parser.add_argument("--train-steps", type=int, default=0, help="also a short LFW training run of N steps per model")
    parser.add_argument("--source", default="../shared/data/lfw-devtrain", help="photos for --train-steps")
    args = parser.parse_args(argv)
    names = args.models or available_models()
    result: dict = {
        "benchmark": "models",
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "bf16_hardware": "avx512_bf16" in Path("/proc/cpuinfo").read_text() if sys.platform == "linux" else None,
    }
    if args.speed > 0:
        result["speed"] = [speed(n, args.batch, args.speed) for n in names]
    if args.train_steps:
        caches = _caches(args.source)
        result["short_runs"] = []
        for n in names:
            result["short_runs"].append(short_run(n, args.train_steps, caches))
            print(f"{n}: trained", json.dumps(result["short_runs"][-1]), file=sys.stderr)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
