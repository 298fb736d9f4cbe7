"""``facemetric embed``: every image of a dataset into an .npz file of embeddings."""

from __future__ import annotations

import argparse

from facemetric.cli.common import add_batch_size, add_data, add_layout, add_model, add_output, print_json

HELP = "embed every image of a dataset into an .npz file"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help=HELP,
        description=(
            "Writes embeddings (N x D float32), paths and identities to an .npz file; images that cannot be used "
            "(unreadable, or no face for a model that detects faces) are listed with the reason and left out."
        ),
    )
    add_model(p)
    add_data(p, "the photos: a folder per person, a CSV image,identity, flat files or a prepared cache")
    add_output(p, "the .npz file to write")
    add_layout(p)
    p.add_argument("--flip", action="store_true", help="add the embedding of the mirrored image")
    add_batch_size(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.data.dataset import report_skipped
    from facemetric.data.sources import DatasetError, no_usable_image
    from facemetric.embedders import load_embedder
    from facemetric.embedders.files import embed_source

    embedded = embed_source(
        load_embedder(args.model), args.data, args.layout, args.flip, args.batch_size, progress=not args.quiet
    )
    if not len(embedded.paths):
        raise DatasetError(no_usable_image(args.data, embedded.skipped))
    report_skipped(embedded.skipped)
    embedded.save(args.output)
    print_json(
        {
            "output": args.output,
            "images": len(embedded.paths),
            "embedding_dim": embedded.dim,
            "skipped": len(embedded.skipped),
        }
    )
    return 0
