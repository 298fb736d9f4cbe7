"""``facemetric prepare``: detect, align and pack photos once into a memory-mapped training cache."""

from __future__ import annotations

import argparse

from facemetric.cli.common import RAW, add_layout, log, print_json

HELP = "detect + align + decode photos once into a packed training cache"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help=HELP,
        formatter_class=RAW,
        description=(
            "Scan SOURCE (folder per person, CSV, or flat files), decode every image, find and align the face, and "
            "write OUT: images.npy (N x size x size x C uint8, read memory-mapped), manifest.csv, detections.jsonl, "
            "skipped.csv (every input left out, with why), summary.json and contact_sheet.png. Interrupted runs "
            "resume; a rerun on an up-to-date cache does nothing. Train on it with --data OUT."
        ),
        epilog="""alignment backends:
  none    the whole photo, centre-cropped to a square and resized
  center  the central --center-fraction of pre-aligned photos (LFW deep-funneled, ORL)
  opencv  Haar cascade face + eye detection (needs opencv-python-headless<5 or Debian opencv-data)
  dlib    HOG detector + 5 landmarks, warped onto the ArcFace 112x112 template (pip install 'facemetric[align]')
""",
    )
    p.add_argument("source", help="dataset folder or CSV")
    p.add_argument("out", help="output folder for the cache")
    p.add_argument("--size", type=int, default=112, help="side of the square crops in pixels (default 112)")
    p.add_argument(
        "--align",
        default="center",
        choices=["none", "center", "opencv", "dlib"],
        help="how faces are found and cut (default center; see below)",
    )
    p.add_argument("--channels", type=int, default=3, choices=[1, 3], help="3 = RGB (default), 1 = grey")
    p.add_argument("--center-fraction", type=float, default=0.55, help="--align center: fraction of the photo kept")
    p.add_argument("--max-upsample", type=int, default=1, help="--align dlib: 2x upsamplings tried for small faces")
    add_layout(p, "SOURCE")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count; 0 = none)")
    p.add_argument("--overwrite", action="store_true", help="replace an OUT that holds a different cache")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facemetric.data.prepare import PrepareOptions, prepare

    offered = {"fraction": args.center_fraction, "max_upsample": args.max_upsample}
    options = PrepareOptions.for_backend(args.size, args.align, args.channels, offered, args.layout)
    result = prepare(
        args.source, args.out, options, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet
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
