"""``facemetric protocol``: evaluation protocols built from a dataset (pair folds, open-set split)."""

from __future__ import annotations

import argparse

from facemetric.cli.common import add_layout, log, print_json

HELP = "build evaluation protocols from a dataset: pair folds, open-set split"


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
            "path,identity,subset. Paths are written relative to DATA: evaluate with --images DATA."
        ),
    )
    psub = p.add_subparsers(dest="protocol", required=True, metavar="KIND")
    q = psub.add_parser("pairs", help="verification pairs in identity-disjoint folds")
    q.add_argument("data", help="dataset folder or CSV")
    q.add_argument("-o", "--output", required=True, help="output file: .csv, or .txt for the LFW pairs format")
    q.add_argument("--folds", type=int, default=10, help="number of identity-disjoint folds (default 10)")
    q.add_argument(
        "--pairs-per-fold",
        type=int,
        default=300,
        help="genuine pairs per fold, and as many impostor pairs (default 300: LFW's 6,000 in all)",
    )
    q.add_argument("--seed", type=int, default=0)
    add_layout(q)
    q = psub.add_parser("open-set", help="gallery / known / unknown split for open-set identification")
    q.add_argument("data", help="dataset folder or CSV")
    q.add_argument("-o", "--output", required=True, help="output CSV")
    q.add_argument(
        "--unknown-fraction", type=float, default=0.3, help="fraction of the people never enrolled (default 0.3)"
    )
    q.add_argument("--gallery-per-identity", type=int, default=1, help="images enrolled per known person (default 1)")
    q.add_argument("--seed", type=int, default=0)
    add_layout(q)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.eval.protocol_files import make_open_set_split, make_pair_protocol

    if args.protocol == "pairs":
        summary = make_pair_protocol(args.data, args.output, args.folds, args.pairs_per_fold, args.seed, args.layout)
    else:
        summary = make_open_set_split(
            args.data, args.output, args.unknown_fraction, args.gallery_per_identity, args.seed, args.layout
        )
    for note in summary["notes"]:
        log.warning("%s protocol: %s", args.protocol, note)
    usage = summary.pop("usage")
    print_json(summary)
    log.info("evaluate with: %s", usage)
    return 0
