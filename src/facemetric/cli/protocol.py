"""``facemetric protocol``: evaluation protocols built from a dataset (pair folds, open-set split, course layout,
an HPatches-style patch benchmark from photos)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from facemetric.cli.common import RAW, add_data, add_layout, add_out, add_output, log, print_json
from facemetric.eval.course import NO_MATCH_LABEL

if TYPE_CHECKING:
    from facemetric.eval.course.result import CourseLayoutSummary
    from facemetric.eval.identification.result import OpenSetSplitSummary
    from facemetric.eval.verification.result import PairProtocolSummary

HELP = "build evaluation protocols from a dataset: pair folds, open-set split, course layout, patch benchmark"
# facemetric.eval.patches.sequences.JITTER, written out so that the parser imports no numpy (a test compares them)
JITTER_HELP = """\
  level  rotation  scale   anisotropy  shift (of the side)  median overlap
  e      +-10 deg  +-10 %  +-10 %      +-6 %                0.85 (the release's easy: ~0.85)
  h      +-20 deg  +-25 %  +-15 %      +-12 %               0.72 (the release's hard: ~0.72)
  t      +-30 deg  +-35 %  +-25 %      +-16 %               0.62"""


DATA_HELP = "the dataset: a folder per person, a CSV image,identity or flat files named after the person"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "protocol",
        help=HELP,
        description=(
            "Reproducible evaluation protocols from any identity dataset (folder per person, CSV or flat files). "
            "`pairs`: balanced genuine/impostor pairs in identity-disjoint folds (a person is in one fold only), "
            "written as an LFW pairs file (.txt, needs LFW file naming) or a CSV path1,path2,same,fold. `open-set`: a "
            "gallery of known people, known probes and unknown people's probes, each probe set split into validation "
            "(threshold calibration) and test, the unknown people of validation and test being different people; CSV "
            "path,identity,subset. Paths are written relative to DATA: evaluate with --data DATA. `course`: the "
            "CMU 11-785 HW2P2 folder layout (classification train/dev/test, verification known/unknown_dev/"
            "unknown_test with verification_dev.csv, and the answer keys), the classification and verification "
            "people disjoint. `patches`: an HPatches-style patch benchmark (i_/v_ sequences of 65x65 patches) "
            "made from any folder of photos."
        ),
    )
    psub = p.add_subparsers(dest="protocol", required=True, metavar="KIND")
    q = psub.add_parser("pairs", help="verification pairs in identity-disjoint folds")
    add_data(q, DATA_HELP)
    add_output(q, "the pairs file: .csv, or .txt for the LFW pairs format")
    q.add_argument("--folds", type=int, default=10, help="number of identity-disjoint folds (default 10)")
    q.add_argument(
        "--pairs-per-fold",
        type=int,
        default=300,
        help="genuine pairs per fold, and as many impostor pairs (default 300: LFW's 6,000 in all)",
    )
    q.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    add_layout(q)
    q = psub.add_parser("open-set", help="gallery / known / unknown split for open-set identification")
    add_data(q, DATA_HELP)
    add_output(q, "the split CSV (path,identity,subset)")
    q.add_argument(
        "--unknown-fraction", type=float, default=0.3, help="fraction of the people never enrolled (default 0.3)"
    )
    q.add_argument("--gallery-per-identity", type=int, default=1, help="images enrolled per known person (default 1)")
    q.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    add_layout(q)
    _add_course(psub)
    _add_patches(psub)
    p.set_defaults(run=run)


def _add_course(psub: argparse._SubParsersAction) -> None:
    q = psub.add_parser(
        "course",
        help="the CMU 11-785 HW2P2 classification + verification folder layout",
        description=(
            "Writes OUT/classification/{train,dev}/<identity>/ and classification/test/ (flat, numbered in a random "
            "order), OUT/verification/known/<identity>/, verification/unknown_dev/ with verification_dev.csv "
            f"(image,label: the identity or the no-match label {NO_MATCH_LABEL}) and verification/unknown_test/, the "
            "answer keys OUT/answers/classification_test.csv and verification_test.csv, and OUT/course.json. "
            "Verification people are other people than the classification people; the absent (never enrolled) "
            "people of unknown_dev and unknown_test are different people. DATA: any dataset (folder per person, CSV, "
            "flat files) or a `facemetric prepare` output, whose crops are written as PNG."
        ),
    )
    add_data(q, DATA_HELP + ", or a `facemetric prepare` output")
    add_out(q, "the course layout's folder (new or empty)")
    q.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    q.add_argument(
        "--verification-fraction",
        type=float,
        default=0.3,
        help="fraction of the people kept for verification, never seen in classification (default 0.3; at least 3 "
        "people; people with fewer than --min-class-images images join them)",
    )
    q.add_argument(
        "--dev-fraction",
        type=float,
        default=0.15,
        help="fraction of each classification person's images in classification/dev (default 0.15; at least 1)",
    )
    q.add_argument(
        "--test-fraction",
        type=float,
        default=0.15,
        help="fraction of each classification person's images in classification/test (default 0.15; at least 1)",
    )
    q.add_argument(
        "--known-per-identity",
        type=int,
        default=1,
        help="images enrolled in verification/known per known person (default 1); the rest are probes",
    )
    q.add_argument(
        "--absent-fraction",
        type=float,
        default=0.3,
        help="fraction of the verification people never enrolled, whose probes are labelled no-match (default "
        "0.3; at least 2)",
    )
    q.add_argument(
        "--min-class-images",
        type=int,
        default=3,
        help="images a person needs to be a classification class (default 3, the least: train, dev and test)",
    )
    q.add_argument(
        "--link",
        default="symlink",
        choices=["symlink", "hardlink", "copy"],
        help="how photo files are placed: absolute symbolic links (default: for your own benchmarks; a link's "
        "target names the source file, and so, in a folder per person, the person), hard links or copies (for a "
        "layout handed to students)",
    )
    q.add_argument("--overwrite", action="store_true", help="replace the course layout in an OUT that is not empty")
    add_layout(q)


def _add_patches(psub: argparse._SubParsersAction) -> None:
    q = psub.add_parser(
        "patches",
        help="an HPatches-style patch benchmark (i_/v_ sequences of 65x65 patches) made from photos",
        formatter_class=RAW,
        description=f"""\
The HPatches layout (Balntas et al., CVPR 2017) built from any folder of photos (read recursively; unreadable,
too small or textureless photos are skipped and listed in OUT/skipped.csv). Each photo is the reference of one
sequence: i_<name> (illumination: the same view under five strong photometric changes: colour re-weighting,
gamma, a smooth illumination field, gain and offset, noise, JPEG) or v_<name> (viewpoint: five random
homographies, mild photometric change). Points: SIFT (DoG) keypoints, strongest first, spread out, whose
upright square region (side: --magnification x the keypoint's diameter) stays in view in every target.

OUT/<sequence>/ holds ref.png, e1..e5.png, h1..h5.png, t1..t5.png (vertical stacks of 65x65 grey patches, patch
k of each the same point) and H_ref_1..H_ref_5 (reference -> target homographies); OUT/splits.json (split a,
train and test sequences), OUT/skipped.csv, OUT/benchmark.json (options, counts; written last). Patches eK,
hK and tK are target K read through its homography after a per-patch jitter of the region (drawn uniformly
in +- these; median overlap: of the region's disc with its jittered image):
{JITTER_HELP}

The same photos, seed and options give byte-identical files. Needs OpenCV: pip install 'facemetric[patches]'.
example:
  facemetric protocol patches --data photos/ --out patch-release --points 100 --max-photos 100 --seed 0
  facemetric prepare --data patch-release --out caches/patches-train --patches --patch-split a --patch-part train""",
    )
    add_data(q, "a folder of photos (read recursively)")
    add_out(q, "the release's folder (new or empty)")
    q.add_argument("--points", type=int, default=100, help="patches (points) per sequence at most (default 100)")
    q.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    q.add_argument(
        "--kinds",
        default="both",
        choices=["both", "illum", "view"],
        help="sequence kinds: both (a seeded coin per photo, default), illum (i_ only) or view (v_ only)",
    )
    q.add_argument(
        "--max-photos",
        type=int,
        default=None,
        help="make at most this many sequences, photos taken in a seeded random order (default: every photo)",
    )
    q.add_argument(
        "--magnification",
        type=float,
        default=5.0,
        help="measurement region side / keypoint diameter (default 5, HPatches' factor; clamped to 16..256 pixels)",
    )
    q.add_argument(
        "--train-fraction",
        type=float,
        default=2 / 3,
        help="fraction of each kind's sequences in splits.json's train part (default 2/3)",
    )
    q.add_argument("--max-side", type=int, default=1024, help="larger photos are shrunk to this side (default 1024)")
    q.add_argument("--overwrite", action="store_true", help="replace the patch benchmark built in OUT before")


def _run_patches(args: argparse.Namespace) -> int:
    from facemetric.eval.patches.benchmark import build_patch_benchmark

    summary = build_patch_benchmark(
        args.data,
        args.out,
        points=args.points,
        seed=args.seed,
        kinds=args.kinds,
        max_photos=args.max_photos,
        magnification=args.magnification,
        train_fraction=args.train_fraction,
        max_side=args.max_side,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    result = summary.model_dump()
    skipped = result.pop("skipped")
    for file, reason in skipped[:10]:
        log.warning("patches protocol: skipped %s: %s", file, reason)
    if len(skipped) > 10:
        log.warning("patches protocol: %d more skipped photos, listed in %s/skipped.csv", len(skipped) - 10, args.out)
    print_json({**result, "skipped": len(skipped)})
    log.info(
        "train on it: facemetric prepare --data %s --out caches/patches-train --patches --patch-split a "
        "--patch-part train; facemetric train configs/patches/hardnet.yaml; evaluate: facemetric eval --model MODEL "
        "--data %s --patches --patch-split a --patch-part test",
        args.out,
        args.out,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from facemetric.core.errors import FacemetricError
    from facemetric.data.sources import DatasetError

    if args.protocol == "patches":
        return _run_patches(args)
    try:
        summary = _make(args)
    except FacemetricError as exc:  # the one line names the dataset it is about
        if str(args.data) in str(exc):
            raise
        raise DatasetError(f"{args.data}: {exc}") from None
    for note in summary.notes:
        log.warning("%s protocol: %s", args.protocol, note)
    print_json(summary.model_dump(exclude={"usage"}))
    log.info("%s with: %s", "use it" if args.protocol == "course" else "evaluate", summary.usage)
    return 0


def _make(args: argparse.Namespace) -> CourseLayoutSummary | PairProtocolSummary | OpenSetSplitSummary:
    """The protocol ``args`` asks for, written."""
    from facemetric.eval.course.layout import write_course_layout
    from facemetric.eval.identification.files import make_open_set_split
    from facemetric.eval.verification.files import make_pair_protocol

    if args.protocol == "course":
        return write_course_layout(
            args.data,
            args.out,
            seed=args.seed,
            layout=args.layout,
            link=args.link,
            overwrite=args.overwrite,
            verification_fraction=args.verification_fraction,
            dev_fraction=args.dev_fraction,
            test_fraction=args.test_fraction,
            known_per_identity=args.known_per_identity,
            absent_fraction=args.absent_fraction,
            min_class_images=args.min_class_images,
        )
    if args.protocol == "pairs":
        return make_pair_protocol(args.data, args.output, args.folds, args.pairs_per_fold, args.seed, args.layout)
    return make_open_set_split(
        args.data, args.output, args.unknown_fraction, args.gallery_per_identity, args.seed, args.layout
    )
