"""Measurement behind the dlib backend's third template point (``DLIB_TEMPLATE_112``).

    python benchmarks/dlib_template.py [--images ../shared/data/lfw-devtrain/images] [--count 200]

dlib's 5-point model marks the base of the nose, not the nose tip of ArcFace's template. For
evenly spaced LFW photos this warps each face by its two eye centres alone onto ArcFace's eye
points and reports where the nose base lands (mean and std, 112x112 coordinates). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from facemetric.data.align import TEMPLATE_112, similarity_transform
from facemetric.data.align.dlib import DlibAligner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="../shared/data/lfw-devtrain/images", help="folder per person of photos")
    parser.add_argument("--count", type=int, default=200, help="photos sampled (evenly spaced)")
    args = parser.parse_args(argv)
    files = sorted(Path(args.images).glob("*/*.jpg"))
    files = files[:: max(1, len(files) // args.count)][: args.count]
    aligner = DlibAligner()
    noses = []
    for path in files:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        rects, _, _ = aligner.finder.hog.run(pixels, 0, 0)
        if not len(rects):
            continue
        shape = aligner.predictor(pixels, rects[0])
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
        eyes = np.array(sorted([points[0:2].mean(0), points[2:4].mean(0)], key=lambda p: p[0]))
        matrix = similarity_transform(eyes, TEMPLATE_112[:2])
        noses.append(matrix[:, :2] @ points[4] + matrix[:, 2])
    found = np.array(noses)
    print(
        json.dumps(
            {
                "benchmark": "dlib_template",
                "photos": len(files),
                "faces": len(found),
                "nose_base_mean": found.mean(0).round(2).tolist(),
                "nose_base_std": found.std(0).round(2).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
