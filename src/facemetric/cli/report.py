"""``facemetric report``: an HTML + Markdown report of an evaluation folder or a training run."""

from __future__ import annotations

import argparse

from facemetric.cli.common import FAR, add_far, add_model, input_folder, output_file, print_json

HELP = "HTML + Markdown report of an evaluation folder or a training run"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help=HELP,
        description=(
            "Writes report.html (self-contained: open it anywhere) and report.md with report_files/: metrics table, "
            "ROC and DET curves, genuine/impostor score histograms with the threshold, training curves, a t-SNE map "
            "of embeddings coloured by identity, the worst false accepts and false rejects, CMC and open-set tables, "
            "retrieval metrics. PATH is the --out folder of `facemetric eval`, or a training run folder: its "
            "checkpoint is then evaluated on the run's held-out identities into PATH/eval first (the pairs its "
            "validation used, an open-set split with 30%% of them unknown, retrieval)."
        ),
    )
    p.add_argument("path", type=input_folder, help="evaluation folder (facemetric eval --out) or training run folder")
    add_model(
        p,
        required=False,
        extra="; run folder only: the model evaluated on the run's held-out people (default: the run's best.pt, "
        "else last.pt; a bare file name is one of the run folder's)",
    )
    add_far(
        p,
        "run folder only, the open-set split's identification",
        default=f"default {FAR:g}; given, the run is evaluated again; not given, an existing evaluation is kept",
    )
    p.add_argument("--refresh", action="store_true", help="run folder only: evaluate again even if PATH/eval exists")
    p.add_argument("--title", help="report title")
    p.add_argument(
        "--screenshot", type=output_file, metavar="PNG", help="also render the HTML in headless Chromium to this PNG"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.report import make_report

    files = make_report(
        args.path,
        checkpoint=args.model,
        far=args.far,
        refresh=args.refresh,
        title=args.title,
        screenshot=args.screenshot,
        progress=not args.quiet,
    )
    shown = {"html": files.html, "markdown": files.markdown, "screenshot": files.screenshot}
    print_json({k: str(v) for k, v in shown.items() if v is not None})
    return 0
