"""Benchmark: augmented 112x112 training batches per second, packed cache vs JPEG folders.

    python benchmarks/data_pipeline.py                                   # LFW dev-train from ../shared/data
    python benchmarks/data_pipeline.py --source PHOTOS --cache DIR --batches 300 --train-epochs 1

Both loaders deliver the same P x K batches (P=32, K=4) with the same kind of augmentation
(random translation, horizontal flip, brightness and contrast jitter), normalised float32
(N, 3, 112, 112), through a torch DataLoader with the same number of worker processes, timed
over ``--batches`` batches after the first (300: about four LFW epochs, one stream), the two
loaders alternating ``--repeats`` times (median reported):

* ``cache``: facemetric's loader: rows gathered from the memory-mapped ``prepare`` output,
  translated/mirrored as uint8, jittered and normalised per batch into a shared ring of
  float32 slots (:mod:`facemetric.data.loader`);
* ``folder``: the usual ImageFolder approach: per image, PIL decodes the JPEG, crops and resizes,
  augments with PIL, converts to a tensor; the DataLoader collates.

With ``--train-epochs`` it also trains ``iresnet_tiny`` on the cache and reports the fraction of
the step loop spent waiting for data. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch.utils.data import DataLoader, Dataset

from facemetric.core.config import AugmentConfig
from facemetric.data.loader import RunBatches, batch_loader
from facemetric.data.prepare import PrepareOptions, prepare
from facemetric.data.prepared import load_prepared, prepared_spec
from facemetric.data.sampler import PKSampler

SIZE, P, K = 112, 32, 4


class FolderImages(Dataset):
    """One image per item, decoded and augmented with PIL (torchvision ImageFolder style)."""

    def __init__(self, paths: list[str], labels: np.ndarray, fraction: float, shift: float) -> None:
        self.paths, self.labels, self.fraction, self.shift = paths, labels, fraction, shift

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rng = random.Random(i)
        img = Image.open(self.paths[i]).convert("RGB")
        side = min(img.size) * self.fraction
        left, top = (img.width - side) / 2, (img.height - side) / 2
        pad = side * self.shift
        dx, dy = rng.uniform(-pad, pad), rng.uniform(-pad, pad)
        img = img.resize(
            (SIZE, SIZE), Image.Resampling.BILINEAR, box=(left + dx, top + dy, left + dx + side, top + dy + side)
        )
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.2))
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        return x, int(self.labels[i])


def _rate(loader, batches: int) -> float:
    """Images per second over ``batches`` batches after the first (worker start-up excluded)."""
    it = iter(loader)
    next(it)
    images, start = 0, time.perf_counter()
    for _ in range(batches):
        item = next(it)
        x = item.images if hasattr(item, "images") else item[0]
        assert x.dtype == torch.float32 and x.shape[1:] == (3, SIZE, SIZE)
        images += len(x)
    return images / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../shared/data/lfw-devtrain", help="photos (folder per person)")
    parser.add_argument("--cache", default=".cache/bench-data-lfw112", help="prepare output (built when missing)")
    parser.add_argument("--fraction", type=float, default=0.55, help="central fraction kept (LFW: 0.55)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=300, help="batches timed per loader (300: about 4 LFW epochs)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating measurements per loader; the median is reported"
    )
    parser.add_argument("--train-epochs", type=int, default=0, help="also train this many epochs on the cache")
    args = parser.parse_args(argv)

    t = time.time()
    prep = prepare(
        args.source,
        args.cache,
        PrepareOptions(SIZE, "center", align_options={"fraction": args.fraction}),
        progress=False,
    )
    prepare_s = round(time.time() - t, 1)
    data, spec = load_prepared(args.cache), prepared_spec(args.cache)
    sampler = PKSampler(data.labels, P, K, "repeat", 2, seed=0)
    steps = sampler.batches_per_epoch
    aug = AugmentConfig(flip=True, shift=0.08, brightness=0.2, contrast=0.2)
    stream = RunBatches(data, sampler.epoch, steps, 0, args.batches + 1, aug, spec.normalization, 0)
    batches = [stream.picked(k) for k in range(args.batches + 1)]
    folder = FolderImages(data.paths, data.labels, args.fraction, 0.08)
    cache_rates, folder_rates = [], []
    for _ in range(args.repeats):  # alternating, so a slow spell of a shared machine hits both loaders alike
        cache_rates.append(_rate(batch_loader(stream, args.workers, P * K), args.batches))
        folder_loader = DataLoader(
            folder,
            batch_sampler=[b.tolist() for b in batches],
            num_workers=args.workers,
            prefetch_factor=4 if args.workers else None,
        )
        folder_rates.append(_rate(folder_loader, args.batches))
    cache_rate, folder_rate = float(np.median(cache_rates)), float(np.median(folder_rates))
    result = {
        "benchmark": "data",
        "source": args.source,
        "images": len(data),
        "size": SIZE,
        "batch": P * K,
        "workers": args.workers,
        "torch_threads": torch.get_num_threads(),
        "prepare_seconds": prepare_s,
        "prepare_up_to_date": prep.up_to_date,
        "timed_batches": args.batches,
        "repeats": args.repeats,
        "cache_images_per_s": round(cache_rate, 1),
        "folder_images_per_s": round(folder_rate, 1),
        "speedup": round(cache_rate / folder_rate, 2),
        "cache_runs": [round(r, 1) for r in cache_rates],
        "folder_runs": [round(r, 1) for r in folder_rates],
    }
    if args.train_epochs:
        result["training"] = _train(args.cache, args.train_epochs)
    print(json.dumps(result, indent=1))


def _train(cache: str, epochs: int) -> dict:
    """A real (short) training run on the cache: its data-wait fraction per epoch and speed."""
    import tempfile

    from facemetric.core.config import load_config
    from facemetric.train.build import build_run

    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            None,
            [
                f"data.source={cache}",
                "data.image_size=[112, 112]",
                "data.val_identities=0.05",
                "data.workers=1",
                f"train.epochs={epochs}",
                f"train.out={out}",
                "train.progress=false",
                "sampler.p=16",
                "sampler.k=4",
            ],
        )
        run = build_run(cfg)
        start = time.time()
        result = run.fit()
        seconds = time.time() - start
        steps = result.global_step
    return {
        "model": cfg.model.name,
        "epochs": epochs,
        "steps": steps,
        "batch": cfg.sampler.p * cfg.sampler.k,
        "seconds": round(seconds, 1),
        "images_per_s": round(steps * cfg.sampler.p * cfg.sampler.k / seconds, 1),
        "data_wait_fraction": [h["data_wait_fraction"] for h in run.trainer.history],
        "val_accuracy": result.val.summary().get("accuracy") if result.val else None,
    }


if __name__ == "__main__":
    main()
