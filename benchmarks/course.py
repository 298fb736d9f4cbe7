"""Benchmark: a course assignment of the CMU 11-785 HW2P2 shape, end to end, on layouts built from real photos.

    python benchmarks/course.py --source caches/celeba-112 --source caches/lfw-112 --ablation \\
        --out benchmarks/results/DATE-course.json

For each ``--source`` (a ``facemetric prepare --align dlib --size 112`` cache, or any dataset):

1. ``facemetric protocol course`` builds the layout (seed 0, the documented proportions): train/dev/test
   images of the classification people, known/unknown_dev/unknown_test of other people;
2. the course recipe trains: ``configs/course/classify.yaml`` (a NormFace classifier: cosine softmax,
   <= 21M parameters, no pretrained weights), then ``configs/course/arcface.yaml`` (ArcFace fine-tune from
   stage 1); with ``--ablation`` also ArcFace from scratch for as many epochs as both stages;
3. each model, and the pretrained ``dlib-resnet`` as the reference, predicts both tasks as a student
   would (``facemetric predict classify`` / ``predict verify``): classification by the run's head (dlib:
   the nearest identity centre of the train folder), verification with the threshold calibrated on
   unknown_dev; the submissions are scored against the answer keys the layout keeps aside.

Reported per source and model: classification dev and test top-1 (dev top-5), verification dev accuracy
(in-sample and cross-validated threshold), test accuracy with the known / no-match breakdown, training
minutes, and the all-"nobody" baseline of the mapping. Run it alone on the cores.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from facemetric.core.atomic import write_json
from facemetric.core.config import load_config
from facemetric.embedders import load_embedder
from facemetric.eval.course import NO_MATCH_LABEL
from facemetric.eval.course.classifier import (
    centre_classifier,
    classify_folder,
    dev_accuracy,
    head_from_checkpoint,
    write_predictions,
)
from facemetric.eval.course.layout import write_course_layout
from facemetric.eval.course.mapping import map_unknowns
from facemetric.train.build import build_run

DLIB = "dlib-resnet?whole_image_fallback=true"  # the course images are face crops already


def _answers(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        return {row["image"]: row["label"] for row in csv.DictReader(f)}


def score(submission: Path, answers: Path, no_match: str | None = None) -> dict[str, Any]:
    """Accuracy of a submission against an answer key (same images); with ``no_match``, split into
    the known people's images and the no-match images."""
    truth, guess = _answers(answers), _answers(submission)
    if set(truth) != set(guess):
        raise ValueError(f"{submission}: {len(set(truth) ^ set(guess))} images differ from {answers}")
    out: dict[str, Any] = {"accuracy": sum(guess[k] == v for k, v in truth.items()) / len(truth), "images": len(truth)}
    if no_match is not None:
        known = [k for k, v in truth.items() if v != no_match]
        absent = [k for k, v in truth.items() if v == no_match]
        out["known_accuracy"] = sum(guess[k] == truth[k] for k in known) / max(1, len(known))
        out["no_match_accuracy"] = sum(guess[k] == no_match for k in absent) / max(1, len(absent))
        out["known_images"], out["no_match_images"] = len(known), len(absent)
        out["all_no_match_baseline"] = len(absent) / len(truth)  # answering "nobody" for every image
    return out


def _train(
    config: str, layout: Path, out: Path, epochs: int | None, init: Path | None = None, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    overrides = [
        *extra,
        f"data.source={layout / 'classification' / 'train'}",
        f"data.dev_source={layout / 'classification' / 'dev'}",
        f"train.out={out}",
        "train.progress=false",
        *([f"train.epochs={epochs}"] if epochs else []),
        *([f"model.init={init}"] if init else []),
    ]
    cfg = load_config(config, overrides)
    started = time.perf_counter()
    result = build_run(cfg).fit()
    minutes = (time.perf_counter() - started) / 60
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = [
        {"epoch": r["epoch"], "top1": r["classify_top1"], "top5": r["classify_top5"]}
        for r in rows
        if r["kind"] == "val" and "classify_top1" in r
    ]
    return {"config": config, "epochs": result.epochs, "minutes": round(minutes, 2), "dev_curve": curve}


def _evaluate(model: str, layout: Path, work: Path, progress: bool) -> dict[str, Any]:
    embedder = load_embedder(model)
    cls, ver = layout / "classification", layout / "verification"
    started = time.perf_counter()
    classifier = head_from_checkpoint(model) if model.endswith(".pt") else None
    if classifier is None:
        classifier = centre_classifier(embedder, cls / "train", progress=progress)
    dev = dev_accuracy(embedder, cls / "dev", classifier, progress=progress)
    predicted = classify_folder(embedder, cls / "test", classifier, progress=progress)
    submission = work / "classification.csv"
    write_predictions(submission, predicted.images, predicted.labels, predicted.flagged)
    classification = {
        "by": classifier.by,
        "classes": len(classifier.names),
        "dev_top1": dev.top1,
        "dev_top5": dev.top5,
        "dev_unusable": len(dev.unusable),
        "test": score(submission, layout / "answers" / "classification_test.csv"),
        "test_flagged": len(predicted.flagged),
    }
    mapping = map_unknowns(
        embedder,
        ver / "known",
        ver / "unknown_dev",
        ver / "verification_dev.csv",
        ver / "unknown_test",
        submission=work / "verification.csv",
        progress=progress,
    )
    report = mapping.model_dump()
    verification = {
        "report": report,
        "test": score(work / "verification.csv", layout / "answers" / "verification_test.csv", NO_MATCH_LABEL),
    }
    return {
        "classification": classification,
        "verification": verification,
        "eval_minutes": round((time.perf_counter() - started) / 60, 2),
    }


def run_source(
    source: str, work: Path, epochs1: int | None, epochs2: int | None, progress: bool, ablation: bool = False
) -> dict[str, Any]:
    name = Path(source).name
    layout = work / name / "layout"
    summary = write_course_layout(source, layout, seed=0, overwrite=True).model_dump(exclude={"usage"})
    runs = work / name / "runs"
    stage1 = _train("configs/course/classify.yaml", layout, runs / "classify", epochs1)
    stage2 = _train("configs/course/arcface.yaml", layout, runs / "arcface", epochs2, runs / "classify" / "best.pt")
    training = {"stage1": stage1, "stage2": stage2}
    models = {
        "course recipe, stage 1": str(runs / "classify" / "best.pt"),
        "course recipe, stage 2 (ArcFace fine-tune)": str(runs / "arcface" / "best.pt"),
    }
    if ablation:  # is "classifier first" worth it? ArcFace from scratch for as many epochs as both stages
        total = stage1["epochs"] + stage2["epochs"]
        extra = ("model.init=null", "optim.lr=0.002")
        training["arcface_only"] = _train(
            "configs/course/arcface.yaml", layout, runs / "arcface-only", total, None, extra
        )
        models["ablation: ArcFace from scratch, same epochs"] = str(runs / "arcface-only" / "best.pt")
    models["dlib-resnet (pretrained reference)"] = DLIB
    results: dict[str, Any] = {}
    for label, model in models.items():
        folder = work / name / "eval" / str(len(results))
        folder.mkdir(parents=True, exist_ok=True)
        results[label] = _evaluate(model, layout, folder, progress)
        print(label, json.dumps({k: v for k, v in results[label]["classification"].items() if k != "by"}), flush=True)
    return {"source": source, "layout": summary, "training": training, "models": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", required=True, help="a dataset or prepared cache (repeatable)")
    parser.add_argument(
        "--work", default="runs/bench-course", help="layouts, runs and submissions (default %(default)s)"
    )
    parser.add_argument("--epochs1", type=int, help="stage-1 epochs (default: the config's)")
    parser.add_argument("--epochs2", type=int, help="stage-2 epochs (default: the config's)")
    parser.add_argument("--out", default=f"benchmarks/results/{datetime.date.today()}-course.json")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--ablation", action="store_true", help="also train ArcFace from scratch for both stages' epochs"
    )
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "date": str(datetime.date.today()),
        "command": "python benchmarks/course.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "sources": [],
    }
    for source in args.source:
        report["sources"].append(
            run_source(source, Path(args.work), args.epochs1, args.epochs2, args.progress, args.ablation)
        )
        write_json(args.out, report)  # after each source: a long run keeps what it measured
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
