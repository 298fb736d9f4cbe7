"""YuNet against dlib's detectors: faces found and milliseconds a photo, in the wild and by head pan.

    python benchmarks/yunet_detection.py --out benchmarks/results/DATE-yunet-detection.json

What ``dlib-resnet`` embeds is dlib's face chip; this cuts it with each detector, one photo at a time in
this process (``dlib-chip`` aligner: detection + landmarks + chip, as ``decode_manifest`` does with
one worker), on:

* ``celeba``: the CelebA-199 photos (``--limit``: about that many, evenly spread), in the wild;
* ``qmul``: qmul-multiview, every photo, by pan band (degrees from frontal): the head turned.

Detectors: ``hog`` (dlib's HOG, grey-padded photo, up to one upsampling), ``hog+cnn`` (HOG, then dlib's
MMOD CNN on the photos HOG found nothing in: HOG's time where HOG finds the face, the ``hog+cnn``
aligner's own time, HOG then the CNN, on HOG's misses) and ``yunet`` (OpenCV's YuNet: box and five points, the chip cut
from the points). ``found``: photos with a face; ``ms``: per photo. Run it with nothing else busy.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from common import SHARED_DATA, print_and_write
from facemetric.core.faces import NoFaceError
from facemetric.data.align import build_aligner
from facemetric.data.images import open_image

PAN_BANDS = ((0, 20), (30, 50), (60, 90))


def run(detector: str, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(found, seconds) per photo through the ``dlib-chip`` aligner with ``detector``."""
    aligner = build_aligner("dlib-chip", size=150, detector=detector)
    found, seconds = np.zeros(len(files), bool), np.zeros(len(files))
    for k, path in enumerate(files):
        start = time.perf_counter()
        try:
            aligner(open_image(path, 3))
            found[k] = True
        except NoFaceError:
            pass
        seconds[k] = time.perf_counter() - start
    return found, seconds


def measure(files: list[Path], groups: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every detector on ``files``; the figures for each group of rows (``all``, or pan bands)."""
    results: dict[str, Any] = {}
    hog_found, hog_s = run("hog", files)
    misses = np.flatnonzero(~hog_found)
    cnn_found, cnn_s = run("hog+cnn", [files[k] for k in misses])
    both_found, both_s = hog_found.copy(), hog_s.copy()
    both_found[misses] = cnn_found
    both_s[misses] = cnn_s  # the hog+cnn aligner's own time on them: HOG (nothing found), then the CNN
    yunet_found, yunet_s = run("yunet", files)
    for name, (found, seconds) in {
        "hog": (hog_found, hog_s),
        "hog+cnn": (both_found, both_s),
        "yunet": (yunet_found, yunet_s),
    }.items():
        results[name] = {
            group: {
                "photos": int(rows.sum()),
                "found": int(found[rows].sum()),
                "found_rate": round(float(found[rows].mean()), 4),
                "ms": round(float(seconds[rows].mean() * 1e3), 2),
            }
            for group, rows in groups.items()
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--limit", type=int, default=None, help="about this many photos of each set")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with open(args.data / "celeba-199" / "labels.csv", newline="") as f:
        celeba = [args.data / "celeba-199" / r["image"] for r in csv.DictReader(f)]
    qmul = sorted((args.data / "qmul-multiview").glob("*/*.ras"))
    if args.limit:
        celeba = celeba[:: max(1, len(celeba) // args.limit)]
        qmul = qmul[:: max(1, len(qmul) // args.limit)]
    off = np.abs(np.array([int(p.stem.split("_")[-1]) for p in qmul]) - 90)
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, one process",
        "command": "python benchmarks/yunet_detection.py" + (f" --limit {args.limit}" if args.limit else ""),
        "celeba": measure(celeba, {"all": np.ones(len(celeba), bool)}),
        "qmul": measure(
            qmul, {"all": np.ones(len(qmul), bool)} | {f"pan_{a}-{b}": (off >= a) & (off <= b) for a, b in PAN_BANDS}
        ),
    }
    print_and_write(report, args.out)


if __name__ == "__main__":
    main()
