"""Benchmark: where a cheaper arcface-mbf starts before distillation, and what a smaller face still holds.

    .venv/bin/python benchmarks/student_start.py --out benchmarks/results/2026-12-07-student-start.json

On CelebA-199's raw photos (``benchmarks/pretrained_models.py``'s protocol: YuNet's detection, the ArcFace
template at 112, identity-disjoint pairs), with no training:

* ``teacher``: arcface-mbf's own network (``arcface_mbf_slim`` at full width, 112 pixels);
* ``teacher on N-pixel faces``: the same network on each crop scaled down to N pixels and back up to 112: what
  a student reading N pixels could at best reach, if the face's information is what limits it;
* ``student before training, N pixels``: ``arcface_mbf_slim`` at N pixels started from the teacher's weights
  (``model.pretrained: arcface-mbf``, its linear layer resized), on the crops scaled to N;
* ``half width before training``: ``width: 0.5`` (a quarter of the cost at 112), the teacher's strongest
  channels kept.

BENCHMARKS.md (issue 33, the student of arcface-mbf) reads these figures.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from common import SHARED_DATA
from facemetric.embedders import load_embedder
from facemetric.models import build_model, model_spec
from facemetric.models.mbf_prune import teacher_network
from pretrained_models import Embedded, evaluate, load_set

SIDES = (64, 56)


def resized(images: np.ndarray, side: int, back: bool) -> np.ndarray:
    """The crops at ``side`` pixels (bilinear), and back at 112 with ``back``."""
    out = []
    for image in images:
        small = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR, reducing_gap=None)
        out.append(np.asarray(small.resize((112, 112), Image.Resampling.BILINEAR) if back else small))
    return np.stack(out)


def scores(net: torch.nn.Module, images: np.ndarray, cut: Any, photos: Any) -> dict[str, Any]:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    with torch.no_grad():
        emb = torch.cat([net.eval()(x[k : k + 128]) for k in range(0, len(x), 128)]).numpy()
    full = np.zeros((len(photos.files), emb.shape[1]), np.float32)
    found = np.zeros(len(photos.files), bool)
    full[cut.index], found[cut.index] = emb, True
    result = evaluate(Embedded(full, found, 0.0, 0.0), photos, "celeba")
    return {k: result[k] for k in ("accuracy", "tar_at_far_1e-3", "rank1")}


def student(side: int, width: float) -> torch.nn.Module:
    net = build_model("arcface_mbf_slim", embedding_dim=512, in_channels=3, input_size=(side, side), width=width)
    model_spec("arcface_mbf_slim").pretrained["arcface-mbf"].load(net)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args()
    torch.manual_seed(0)
    photos = load_set("celeba", args.data, None)
    cut = load_embedder("arcface-mbf").crop_files(photos.files, progress=False, workers=0)
    images = np.asarray(cut.images)
    rows: dict[str, Any] = {"teacher": scores(teacher_network(), images, cut, photos)}
    for side in SIDES:
        rows[f"teacher on {side}-pixel faces"] = scores(teacher_network(), resized(images, side, True), cut, photos)
        small = resized(images, side, False)
        rows[f"student before training, {side} pixels"] = scores(student(side, 1.0), small, cut, photos)
    rows["half width before training"] = scores(student(112, 0.5), images, cut, photos)
    for name, row in rows.items():
        print(f"{name}: {row}", flush=True)
    report = {"date": date.today().isoformat(), "set": "celeba-199 raw photos", "photos": len(photos.files)}
    report["rows"] = rows
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
