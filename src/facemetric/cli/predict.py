"""``facemetric predict``: submission files for a course-style task (classification, known-or-nobody mapping)."""

from __future__ import annotations

import argparse

from facemetric.cli.common import (
    RAW,
    add_batch_size,
    add_far,
    add_model,
    add_output,
    add_test,
    input_file,
    input_folder,
    log,
    print_json,
)
from facemetric.core.matching import TEMPLATES
from facemetric.eval.course import NO_MATCH_LABEL

HELP = "predict a flat test folder: identity classification, or known-person-or-nobody mapping (CSV submissions)"

EPILOG = """examples:
  facemetric predict classify --model runs/course/best.pt --test course/classification/test -o classification.csv \\
      --dev course/classification/dev
  facemetric predict classify --model dlib-resnet --test course/classification/test -o classification.csv \\
      --known course/classification/train --per-identity 10
  facemetric predict map --model runs/course/best.pt --known course/verification/known \\
      --dev-csv course/verification/verification_dev.csv --test course/verification/unknown_test -o verification.csv
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help=HELP,
        formatter_class=RAW,
        epilog=EPILOG,
        description=(
            "Course-style tasks (the layout `facemetric protocol course` builds, e.g. CMU 11-785 HW2P2).\n"
            "`classify`: the identity of every image of a flat test folder, written as image,label; scored by the "
            "run's classifier head (softmax / ArcFace / CosFace ..., without the margin) or, for any model, by the "
            "nearest identity centre of a folder per person (--known).\n"
            "`map`: every image of the test folder mapped to a known person or to the no-match label, with the "
            "rejection threshold calibrated on the dev images and their ground-truth CSV; written in that CSV's "
            "format.\n"
            "A photo that cannot be used (undecodable, no face) still gets a row; it is flagged in "
            "<output>.problems.csv and in the summary printed on stdout."
        ),
    )
    psub = p.add_subparsers(dest="task", required=True, metavar="TASK")
    q = psub.add_parser("classify", help="which training person is each test image", formatter_class=RAW)
    add_model(q)
    add_test(q, "flat folder of test images")
    add_output(q, "submission CSV: image,label (one row per test image)")
    q.add_argument(
        "--known",
        type=input_folder,
        metavar="FOLDER",
        help="a folder per identity (the train folder): classify by the nearest identity centre, the mean "
        "embedding of its photos (needed for a model without a classifier head, e.g. dlib-resnet or a pair "
        "loss; with a head, given it overrides the head)",
    )
    q.add_argument(
        "--per-identity",
        type=int,
        metavar="N",
        help="with --known: embed at most N photos per identity (default: all)",
    )
    q.add_argument(
        "--dev",
        type=input_folder,
        metavar="FOLDER",
        help="a folder per identity of other images of the same people: report top-1 / top-5 first",
    )
    _common(q)
    q.set_defaults(run=run_classify)

    q = psub.add_parser(
        "map", help="map each test image to a known person or to nobody (open-set)", formatter_class=RAW
    )
    add_model(q)
    q.add_argument(
        "--known", required=True, type=input_folder, metavar="FOLDER", help="a folder per known identity (known/<id>/*)"
    )
    q.add_argument(
        "--dev-csv",
        type=input_file,
        metavar="CSV",
        help="ground truth of the dev images (header image,label; label an identity of --known or the "
        "no-match label): calibrates the threshold",
    )
    q.add_argument(
        "--dev", type=input_folder, metavar="FOLDER", help="the dev images (default: unknown_dev beside --dev-csv)"
    )
    add_test(q, "flat folder of test images to map (unknown_test)", required=False)
    add_output(q, "submission CSV, in the dev CSV's format (needs --test)", required=False)
    q.add_argument(
        "--rule",
        default="accuracy",
        choices=["accuracy", "far"],
        help="threshold rule on dev: the best mapping accuracy (default), or the lowest threshold at which at "
        "most --far of the dev's no-match images are taken for someone",
    )
    add_far(q, "with --rule far, the fraction of the dev's no-match images taken for someone")
    q.add_argument("--threshold", type=float, help="a fixed cosine threshold instead of calibrating on dev")
    q.add_argument(
        "--template",
        default="mean",
        choices=list(TEMPLATES),
        help="score a known person by their mean embedding (default) or their best-matching photo (max)",
    )
    q.add_argument(
        "--no-match-label",
        default=NO_MATCH_LABEL,
        help=f"the label of 'nobody known' (default {NO_MATCH_LABEL})",
    )
    q.add_argument("--folds", type=int, default=5, help="folds of the cross-validated dev accuracy (default 5)")
    _common(q)
    q.set_defaults(run=run_map)


def _common(q: argparse.ArgumentParser) -> None:
    q.add_argument("--flip", action="store_true", help="add the embedding of each mirrored image")
    add_batch_size(q)


def run_classify(args: argparse.Namespace) -> int:
    from facemetric.embedders import load_embedder
    from facemetric.eval.course.classifier import (
        ClassifyError,
        centre_classifier,
        classify_folder,
        dev_accuracy,
        head_from_checkpoint,
        write_predictions,
    )

    embedder = load_embedder(args.model)
    progress = not args.quiet
    classifier = None
    if args.known:
        classifier = centre_classifier(embedder, args.known, args.per_identity, args.flip, args.batch_size, progress)
    elif str(args.model).endswith(".pt"):
        classifier = head_from_checkpoint(args.model)
    if classifier is None:
        raise ClassifyError(
            f"{args.model} has no classifier head (a pretrained model, an ONNX export or a pair loss); "
            "give --known TRAIN_FOLDER to classify by the nearest identity centre"
        )
    summary: dict = {"model": str(args.model), "by": classifier.by, "classes": len(classifier.names)}
    if args.dev:
        dev = dev_accuracy(embedder, args.dev, classifier, args.flip, args.batch_size, progress)
        summary["dev"] = dev.model_dump()
        log.info("dev: top-1 %.4f, top-5 %.4f on %d images", dev.top1, dev.top5, dev.images)
    predictions = classify_folder(embedder, args.test, classifier, args.flip, args.batch_size, progress)
    write_predictions(args.output, predictions.images, predictions.labels, predictions.flagged)
    for image, reason in predictions.flagged:
        log.warning("%s: could not be used (%s); its row has the fallback label, see the problems file", image, reason)
    summary.update(output=args.output, test=predictions.summary().model_dump())
    print_json(summary)
    return 0


def run_map(args: argparse.Namespace) -> int:
    from facemetric.embedders import load_embedder
    from facemetric.eval.course.mapping import MappingOptions, map_unknowns

    options = MappingOptions(
        rule="fmr" if args.rule == "far" else args.rule,
        target_fmr=args.far,
        threshold=args.threshold,
        template=args.template,
        no_match_label=args.no_match_label,
        flip=args.flip,
        batch_size=args.batch_size,
        folds=args.folds,
    )
    result = map_unknowns(
        load_embedder(args.model),
        args.known,
        args.dev,
        args.dev_csv,
        args.test,
        submission=args.output,
        options=options,
        progress=not args.quiet,
    )
    # the answers are in the submission file; the summary is the report (dev accuracy, breakdown, problems)
    print_json({"model": str(args.model), "threshold": result.threshold, "report": result.report.model_dump()})
    return 0
