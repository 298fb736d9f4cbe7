"""dlib's face detectors on photos in the wild: face-found rate and CPU seconds per photo, and the speed-up of
detecting in worker processes.

    python benchmarks/detectors.py --data ../shared/data/celeba-199 --limit 400 \\
        --out benchmarks/results/<date>-detectors.json

Takes ``--limit`` photos spread evenly over the dataset (every k-th photo of the manifest, so most people
are in) and cuts them with the ``--align`` aligner (``dlib-chip``: what ``dlib-resnet`` embeds; ``dlib``:
``prepare --align dlib``) in this process, one photo at a time, as :func:`facemetric.data.cache.decode_manifest`
does with ``workers=1``. Reports, as JSON (printed, and written to ``--out``):

* ``detectors.hog``: every photo through the HOG detector (the default): photos with a face found, found
  rate, seconds per photo (decode + detection + landmarks + crop).
* ``detectors.hog+cnn``: HOG, then the CNN on the photos where HOG found nothing. A photo HOG finds
  a face in goes through exactly the same code with ``hog+cnn``, so only HOG's misses are run again
  (with the ``hog+cnn`` aligner: HOG then CNN, as in use); time = HOG's time on the found photos +
  that run. ``found_by_cnn``: faces only the CNN found.
* ``detectors.cnn``: the CNN alone, on the first ``--cnn-limit`` of the photos (it costs seconds a
  photo), beside HOG's result on the same photos.
* ``workers``: ``decode_manifest`` with the HOG aligner in ``--workers`` processes against the serial
  run above (same photos): seconds, speed-up, and whether the outputs are identical (images,
  detections, failures, order).
* ``cnn_sides`` (with ``--cnn-sides 320,400,500``): the CNN alone on HOG's misses with each
  ``cnn_max_side``: faces found and seconds per photo, to choose the default side.

Timings are of this machine (``cpus``: the CPUs this process may use); run it with nothing else busy.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.atomic import write_json
from facemetric.core.spec import ImageSpec
from facemetric.data.align import build_aligner
from facemetric.data.align.dlib import CNN_MAX_SIDE
from facemetric.data.batch_align import available_cpus
from facemetric.data.cache import PackedImages, decode_manifest
from facemetric.data.sources import Manifest, scan_source


def spread(manifest: Manifest, limit: int) -> Manifest:
    """``limit`` photos of ``manifest`` taken at even steps (all of them when it holds fewer)."""
    n = len(manifest)
    rows = np.unique(np.linspace(0, n - 1, min(limit, n)).round().astype(int)) if n else np.zeros(0, int)
    return manifest.subset(rows.tolist())


def timed_decode(
    manifest: Manifest, align: str, detector: str, workers: int, **options: Any
) -> tuple[PackedImages, float]:
    """``decode_manifest`` of ``manifest`` with a fresh ``align`` aligner using ``detector``, and its seconds."""
    aligner = build_aligner(align, size=150 if align == "dlib-chip" else 112, detector=detector, **options)
    spec = ImageSpec(aligner.size, aligner.size, 3, align=align)
    started = time.perf_counter()
    packed = decode_manifest(manifest, spec, workers=workers, progress=False, aligner=aligner)
    return packed, time.perf_counter() - started


def found_rows(packed: PackedImages) -> set[int]:
    return set(np.asarray(packed.source_index, np.int64).tolist())


def row(photos: int, found: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "photos": photos,
        "found": found,
        "found_rate": round(found / photos, 4) if photos else 0.0,
        "seconds": round(seconds, 2),
        "seconds_per_photo": round(seconds / photos, 4) if photos else 0.0,
        **extra,
    }


def identical(a: PackedImages, b: PackedImages) -> bool:
    return (
        np.array_equal(np.asarray(a.images), np.asarray(b.images))
        and np.array_equal(np.asarray(a.source_index), np.asarray(b.source_index))
        and a.detections == b.detections
        and a.bad == b.bad
        and a.paths == b.paths
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/celeba-199"), help="photos (any layout)")
    parser.add_argument("--limit", type=int, default=400, help="photos taken, evenly spread (default 400)")
    parser.add_argument("--cnn-limit", type=int, default=50, help="photos the CNN alone runs on (default 50)")
    parser.add_argument("--align", choices=["dlib", "dlib-chip"], default="dlib-chip")
    parser.add_argument("--workers", type=int, default=2, help="processes of the workers comparison (default 2)")
    parser.add_argument("--cnn-sides", default="", help="comma-separated cnn_max_side values tried on HOG's misses")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)

    manifest = spread(scan_source(args.data), args.limit)
    n = len(manifest)
    report: dict[str, Any] = {
        "benchmark": "detectors",
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/detectors.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": str(args.data),
        "photos": n,
        "align": args.align,
        "cnn_max_side": CNN_MAX_SIDE,
        "cpus": available_cpus(),
        "python": platform.python_version(),
    }

    hog, hog_seconds = timed_decode(manifest, args.align, "hog", workers=1)
    hog_found = found_rows(hog)
    missed = [i for i in range(n) if i not in hog_found]
    # per-photo HOG time is not measured one by one: the found photos' share is HOG's total minus its misses' time
    _, hog_missed_seconds = timed_decode(manifest.subset(missed), args.align, "hog", workers=1)
    both, both_seconds = timed_decode(manifest.subset(missed), args.align, "hog+cnn", workers=1)
    by_cnn = len(found_rows(both))
    report["detectors"] = {
        "hog": row(n, len(hog_found), hog_seconds),
        "hog+cnn": row(
            n,
            len(hog_found) + by_cnn,
            hog_seconds - hog_missed_seconds + both_seconds,
            found_by_cnn=by_cnn,
            hog_misses=len(missed),
        ),
    }
    first = list(range(min(args.cnn_limit, n)))
    cnn, cnn_seconds = timed_decode(manifest.subset(first), args.align, "cnn", workers=1)
    cnn_found = found_rows(cnn)
    hog_first = hog_found & set(first)
    report["detectors"]["cnn"] = row(
        len(first),
        len(cnn_found),
        cnn_seconds,
        hog_found_on_these=len(hog_first),
        cnn_only=len(cnn_found - hog_first),
        hog_only=len(hog_first - cnn_found),
    )

    parallel, parallel_seconds = timed_decode(manifest, args.align, "hog", workers=args.workers)
    report["workers"] = {
        "detector": "hog",
        "workers": args.workers,
        "serial_seconds": round(hog_seconds, 2),
        "workers_seconds": round(parallel_seconds, 2),
        "speedup": round(hog_seconds / parallel_seconds, 2) if parallel_seconds else None,
        "identical": identical(hog, parallel),
    }

    sides = [int(s) for s in args.cnn_sides.split(",") if s.strip()]
    if sides and missed:
        report["cnn_sides"] = {}
        for side in sides:
            packed, seconds = timed_decode(manifest.subset(missed), args.align, "cnn", 1, cnn_max_side=side)
            report["cnn_sides"][str(side)] = row(len(missed), len(found_rows(packed)), seconds)

    print(json.dumps(report, indent=1))
    if args.out:
        write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
