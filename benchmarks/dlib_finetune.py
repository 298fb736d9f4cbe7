"""Benchmark: fine-tuning dlib's pretrained network on CelebA-199, measured before and after.

    python benchmarks/dlib_finetune.py [--data ../shared/data] [--work /tmp/dlib-finetune]
        [--epochs 2] [--set KEY=VALUE ...] [--out results.json]

1. ``facemetric prepare celeba-199 --align dlib-chip``: dlib's 150x150 chips, what its network reads.
2. ``facemetric train`` with ``model: {name: dlib_resnet, pretrained: dlib}`` (:data:`CONFIG`:
   dlib's own pair loss on its raw descriptors, SGD at dlib's final learning rate, the stem and
   first level frozen). ``data.val_identities`` CelebA people are held out of training; of the
   training people, a "household" of 10 keeps only 5 photos each in training (what a user
   fine-tunes on and enrols); their other photos are set aside as probes.
3. Before (dlib's weights) and after (the run's ``last.pt``, not the best epoch: no choice is
   made on the held-out people), on photos the run never trained on:
   * held-out CelebA people: verification on the run's identity-disjoint validation pairs;
   * LFW ``pairsDevTrain.txt`` (2,200 pairs, 10-fold accuracy): the chips are cut once by dlib
     and both networks embed them; a photo without a detectable face falls back to its centre
     crop, as ``facemetric eval``'s default;
   * face unlock: the household enrols its 5 training photos each; probes are their other
     photos and strangers (held-out people: half calibrate the threshold at 1% false accepts,
     the other half test it): TP (the right person accepted), FN (rejected, or taken for someone
     else), TN (stranger rejected), FP (stranger accepted).

Prints JSON (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facemetric.core.atomic import write_json

CONFIG = {
    "data": {"image_size": [150, 150], "val_identities": 50, "cache_dir": None, "workers": 1, "val_pairs": 3000},
    "model": {
        "name": "dlib_resnet",
        "embedding_dim": 128,
        "pretrained": "dlib",
        "freeze": 2,
        "options": {"normalize": False},
    },
    # dlib's loss_metric: raw descriptors, same person closer than 0.6 - 0.04, others farther than 0.6 + 0.04
    "loss": {"name": "contrastive", "options": {"pos_margin": 0.56, "neg_margin": 0.64}},
    "sampler": {"p": 16, "k": 4},
    # dlib trained with SGD (momentum 0.9) down to lr 1e-4: fine-tuning continues there. Adam's
    # equal-size steps wreck its tiny convolution weights (mean |w| 5e-4 in the last level, scaled
    # by affine gammas near 9): -2.6 LFW points at lr 3e-5 (BENCHMARKS.md)
    "optim": {"name": "sgd", "lr": 1e-4, "weight_decay": 0.0},
    "scheduler": {"name": "warmup_cosine", "options": {"warmup_epochs": 0.2}},
    "train": {"progress": False},
}


def _prepare(data: Path, work: Path) -> Path:
    from facemetric.data.prepare import PrepareOptions, prepare

    out = work / "celeba-chips"
    prepare(data / "celeba-199", out, PrepareOptions(size=150, align="dlib-chip"), progress=False)
    return out


def _lfw_chips(data: Path) -> tuple[np.ndarray, Any, int]:
    """dlib chips of every photo of pairsDevTrain (centre crop where no face is found), the pairs,
    and how many photos fell back."""
    from facemetric.data.images import open_image, resize_crop
    from facemetric.embedders import load_embedder
    from facemetric.eval.verification.lfw_pairs import parse_pairs, resolve_pairs

    folder = data / "lfw-devtrain"
    pairs = parse_pairs(folder / "pairsDevTrain.txt")
    resolved = resolve_pairs(pairs, folder / "images")
    paths = sorted({p for pair in resolved for p in pair[:2]})
    index = {p: k for k, p in enumerate(paths)}
    embedder = load_embedder("dlib-resnet")
    crops = embedder.crop_files(paths)
    chips = np.zeros((len(paths), 150, 150, 3), np.uint8)
    chips[crops.index] = np.asarray(crops.images)
    for k, _ in crops.failures:
        chips[k] = resize_crop(open_image(paths[k], channels=3), embedder.spec)
    i = np.array([index[p[0]] for p in resolved])
    j = np.array([index[p[1]] for p in resolved])
    same = np.array([pair.same for pair in pairs], np.int8)
    return (
        chips,
        (i, j, same, np.array([pair.fold if pair.fold is not None else -1 for pair in pairs])),
        len(crops.failures),
    )


def _lfw_accuracy(model: torch.nn.Module, normalization: Any, chips: np.ndarray, pairs: Any) -> dict[str, float]:
    from facemetric.embedders.torch_model import embed_array
    from facemetric.eval.verification.metrics import verification_report

    emb = embed_array(model, chips, 64, normalization=normalization)
    i, j, same, folds = pairs
    scores = (emb[i] * emb[j]).sum(1)
    report = verification_report(scores, same, folds=folds if (folds >= 0).all() else None)
    return {"accuracy": round(report.accuracy, 4), "accuracy_std": round(report.accuracy_std, 4)}


def _face_unlock(
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    probes: np.ndarray,
    probe_labels: np.ndarray,
    calibration: np.ndarray,
    strangers: np.ndarray,
) -> dict[str, Any]:
    """Enrol ``gallery`` (max over each person's photos), calibrate the accept threshold at 1% false
    accepts on ``calibration`` strangers, then decide ``probes`` (enrolled people) and ``strangers``."""
    from facemetric.eval.primitives import calibrate_threshold

    names = np.unique(gallery_labels)

    def top(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = np.stack([(rows @ gallery[gallery_labels == n].T).max(1) for n in names], 1)
        return names[scores.argmax(1)], scores.max(1)

    threshold = calibrate_threshold(top(calibration)[1], 0.01, "calibration strangers")
    who, score = top(probes)
    accepted, right = score >= threshold.value, who == probe_labels
    stranger_accepted = top(strangers)[1] >= threshold.value
    return {
        "enrolled_people": len(names),
        "enrolled_photos": len(gallery),
        "threshold": round(threshold.value, 4),
        "calibration_strangers": len(calibration),
        "TP": int(np.sum(accepted & right)),
        "FN": int(np.sum(~(accepted & right))),
        "FN_taken_for_someone_else": int(np.sum(accepted & ~right)),
        "TN": int(np.sum(~stranger_accepted)),
        "FP": int(np.sum(stranger_accepted)),
        "true_accept_rate": round(float(np.mean(accepted & right)), 4),
        "false_accept_rate": round(float(np.mean(stranger_accepted)), 4),
    }


def _household(train: Any, people: int, photos: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``train`` to keep, the household's kept rows (enrolled) and its set-aside rows (probes)."""
    labels = np.asarray(train.labels)
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels)
    eligible = np.flatnonzero(counts >= photos + 5)
    chosen = rng.choice(eligible, people, replace=False)
    enrolled, probes = [], []
    for person in chosen:
        rows = rng.permutation(np.flatnonzero(labels == person))
        enrolled += rows[:photos].tolist()
        probes += rows[photos:].tolist()
    keep = np.setdiff1d(np.arange(len(labels)), probes)
    return keep, np.asarray(enrolled), np.asarray(probes)


def run(data: Path, work: Path, epochs: int, overrides: list[str]) -> dict[str, Any]:
    import yaml

    from facemetric.core.config import load_config
    from facemetric.data.dataset import load_dataset
    from facemetric.embedders.torch_model import embed_array
    from facemetric.models import build_embedding_model
    from facemetric.train.build import build_run
    from facemetric.train.weights import initialise

    start = time.time()
    chips_cache = _prepare(data, work)
    prepared = time.time() - start
    config = work / "finetune.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    cfg = load_config(
        config, [f"data.source={chips_cache}", f"train.out={work / 'run'}", f"train.epochs={epochs}", *overrides]
    )
    split = load_dataset(cfg.data, progress=False)
    val_set = split.val
    assert val_set is not None
    keep, enrolled, probes = _household(split.train, 10, 5, seed=1)
    everything = split.train
    run = build_run(cfg, data=dataclasses.replace(split, train=everything.subset(keep)))
    before_val = run.validate_untrained().model_dump()
    normalization = run.data.spec.normalization
    val_labels = np.asarray(val_set.labels)
    people = np.unique(val_labels)
    calibration_rows = np.isin(val_labels, people[::2])
    household_labels = np.asarray(everything.labels)

    def unlock(model: torch.nn.Module) -> dict[str, Any]:
        def emb(images: Any) -> np.ndarray:
            return embed_array(model, images, 64, normalization=normalization)

        strangers = emb(val_set.images)
        return _face_unlock(
            emb(everything.images[enrolled]),
            household_labels[enrolled],
            emb(everything.images[probes]),
            household_labels[probes],
            strangers[calibration_rows],
            strangers[~calibration_rows],
        )

    pretrained = build_embedding_model(cfg.model, run.data.spec)
    initialise(pretrained, cfg.model)
    pretrained.eval()
    before_unlock = unlock(pretrained)
    t = time.time()
    result = run.fit()
    train_seconds = time.time() - t
    after_unlock = unlock(run.model)
    saved = work / "lfw-chips.npz"  # dlib's chips do not depend on the network: cut once per work folder
    if saved.is_file():
        with np.load(saved) as f:
            lfw_chips, lfw_pairs, fallbacks = f["chips"], (f["i"], f["j"], f["same"], f["fold"]), int(f["fallbacks"])
    else:
        lfw_chips, lfw_pairs, fallbacks = _lfw_chips(data)
        i, j, same, fold = lfw_pairs
        np.savez(saved, chips=lfw_chips, i=i, j=j, same=same, fold=fold, fallbacks=fallbacks)
    before_lfw = _lfw_accuracy(pretrained, normalization, lfw_chips, lfw_pairs)
    after_lfw = _lfw_accuracy(run.model, normalization, lfw_chips, lfw_pairs)
    val = result.val.summary() if result.val else {}
    return {
        "benchmark": "dlib_finetune",
        "date": datetime.date.today().isoformat(),
        "config": cfg.to_dict(),
        "train_images": len(run.data.train.labels),
        "train_identities": len(run.data.train.identity_names),
        "held_out_identities": int(len(people)),
        "held_out_images": int(len(val_labels)),
        "prepare_seconds": round(prepared, 1),
        "train_seconds": round(train_seconds, 1),
        "held_out_celeba": {
            "before": {k: before_val.get(k) for k in ("accuracy", "auc", "tar_at_far")},
            "after": {k: val.get(k) for k in ("accuracy", "auc", "tar_at_far")},
            "pairs": before_val.get("num_positive", 0) + before_val.get("num_negative", 0),
        },
        "lfw_pairsDevTrain": {
            "before": before_lfw,
            "after": after_lfw,
            "photos_without_face_centre_cropped": fallbacks,
            "change_points": round(100 * (after_lfw["accuracy"] - before_lfw["accuracy"]), 2),
        },
        "face_unlock_household": {
            "household": "10 training people, 5 photos each trained on and enrolled; their other photos are probes",
            "before": before_unlock,
            "after": after_unlock,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/dlib-finetune"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    report = run(args.data, args.work, args.epochs, args.set)
    print(json.dumps(report, indent=1))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
