"""The photos of a prepared cache as an ``image,identity`` CSV, so another cut of exactly those photos
has the same people and the same held-out split.

    python benchmarks/same_photos.py caches/lfw-112 caches/lfw-112-photos.csv
    facemetric prepare caches/lfw-112-photos.csv caches/lfw-center-112 --align center --center-fraction 0.6

An ablation that changes only how faces are cut (centre crop vs 5-point alignment, 64 vs 112
pixels) must not also change who is held out: preparing the raw folder again would keep the
photos the aligner skipped (no face found), which changes who has 2+ photos and so the split.
Paths are written absolute, so the CSV can live anywhere.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from facemetric.core.atomic import atomic_path


def write_photo_list(cache: str | Path, out: str | Path) -> int:
    """Write ``out`` (image,identity) for every photo of the prepared ``cache``; returns how many."""
    from facemetric.data.prepared import load_prepared

    packed = load_prepared(cache)
    with atomic_path(Path(out)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "identity"])
        for path, label in zip(packed.paths, packed.labels):
            writer.writerow([os.path.abspath(path), packed.identity_names[label]])
    return len(packed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache", type=Path, help="a `facemetric prepare` output")
    parser.add_argument("out", type=Path, help="the CSV to write")
    args = parser.parse_args(argv)
    print(f"{write_photo_list(args.cache, args.out)} photos listed in {args.out}")


if __name__ == "__main__":
    main()
