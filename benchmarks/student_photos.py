"""The unlabelled photos a student of the pretrained models is distilled on, as one ``image,identity`` CSV.

    python benchmarks/student_photos.py --celeba10k PATH/processed_celeba_small/celeba/Archive \\
        --count 15000 [--subfolders] -o caches/student-photos.csv

Two sources, none of them a set the model benchmark scores (``benchmarks/pretrained_models.py``):

* LFW development-train photos of the people who are in no pair of ``pairsDevTrain.txt`` (2,840 photos;
  the pairs' people are the benchmark's LFW set);
* the first ``--count`` photos (by file name; with ``--subfolders``, those of its subfolder too) of
  celeba-10k (``../shared/data/celeba-10k/README.md``: 64x64 faces cut from CelebA's aligned set, fetched
  from a public repository) whose identity is not one of 7201-7499, the people of CelebA-199 and of a
  held-out set, which no model here trains on.

The identities are written (the prepared cache needs them, and ``data.val_identities`` holds some people
out for the run's own validation) but distillation never reads them.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from common import SHARED_DATA
from facemetric.eval.verification.lfw_pairs import parse_pairs

HELD_OUT = range(7201, 7500)  # CelebA-199 and a held-out set: never trained on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--celeba10k", type=Path, required=True, help="the folder of celeba-10k's 64x64 JPEGs")
    parser.add_argument(
        "--subfolders",
        action="store_true",
        help="also the photos in the folder's subfolders (the fetched Archive holds 32,601 photos at the top and "
        "57,331 in `New Folder With Items`; recipes before 2026-12-08 took the top ones only)",
    )
    parser.add_argument("--count", type=int, default=15000, help="celeba-10k photos to take")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the CSV to write")
    args = parser.parse_args()
    lfw = args.data / "lfw-devtrain"
    in_pairs = {name for p in parse_pairs(lfw / "pairsDevTrain.txt") for name in (p.name1, p.name2)}
    rows = [
        (str(photo.resolve()), f"lfw:{person.name}")
        for person in sorted((lfw / "images").iterdir())
        if person.is_dir() and person.name not in in_pairs
        for photo in sorted(person.glob("*.jpg"))
    ]
    n_lfw = len(rows)
    identity = {}
    with open(args.data / "celeba-10k" / "identity_CelebA.txt") as f:
        for line in f:
            name, person = line.split()
            if person.isdigit():  # not the header line
                identity[name] = int(person)
    taken = 0
    photos = args.celeba10k.rglob("*.jpg") if args.subfolders else args.celeba10k.glob("*.jpg")
    for photo in sorted(photos, key=lambda p: p.name):
        person = identity.get(photo.name)
        if person is None or person in HELD_OUT:
            continue
        rows.append((str(photo.resolve()), f"celeba:{person}"))
        taken += 1
        if taken == args.count:
            break
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "identity"])
        writer.writerows(rows)
    print(f"{args.output}: {n_lfw} LFW photos (people in no pairsDevTrain pair), {taken} celeba-10k photos")


if __name__ == "__main__":
    main()
