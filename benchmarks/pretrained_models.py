"""Benchmark: the pretrained models and their fusions, detection included, on the shared data's people.

    python benchmarks/pretrained_models.py --out benchmarks/results/DATE-pretrained-models.json
    python benchmarks/pretrained_models.py --sets celeba --models dlib-resnet arcface-mbf --limit 300   # a quick look

Every model sees raw photos: each finds and cuts its own faces (``dlib-resnet``: dlib's HOG detector and
landmarks; ``?detector=yunet`` and the ONNX recognisers: YuNet), and a photo in which it finds no face
counts against it (a pair with such a photo is scored -1, a probe is turned away, an enrolment photo
without a face enrols a random vector). None of these models was trained on these people by facemetric
(what their publishers trained on is theirs: dlib on about 3 million faces of its own collection,
SFace and ArcFace on WebFace/MS1M-class sets of celebrities, so some of CelebA's or LFW's people may be
among them); a student (``--models runs/NAME/last.pt``) must not have trained on them either.

Sets (``--data``, default ``../shared/data``):

* ``lfw``: LFW ``pairsDevTrain.txt`` (1,100 matched and 1,100 mismatched pairs), 10-fold accuracy;
* ``celeba``: the 199 CelebA people's raw photos (faces small or large, anywhere in the frame): an
  identity-disjoint pair protocol (10 folds, up to 6,000 pairs of each kind) and an open-set split (30 %
  of the people never enrolled, one photo enrolled per known person, the threshold set at FAR 1 % on the
  validation unknowns and measured on the test probes: DIR@1 %);
* ``orl`` (40 people, 400 photos) and ``yale`` (15 people, 164 photos): the same two protocols;
* ``qmul``: qmul-multiview (29 people, head turned across the view sphere): each person's frontal photos
  (tilt 90, pan 90) enrolled, every other photo a probe, by pan band (degrees from frontal): rank-1 and
  TAR at FAR 1e-3 (a probe against its own person's template and against everyone else's).

Fusions (``A+B``) are scored from their members' embeddings (each member's unit vector weighted as
:class:`~facemetric.embedders.fusion.FusionEmbedder` weights it: the same vectors, since every member
of a fusion is cut from the same YuNet detection; tests/embedders/test_fusion.py); their photo time is
one YuNet search plus the cuts, their face time the sum of the members'.

Speed: ``ms_photo``: finding and cutting the face (one process, no workers), per photo; ``ms_face``:
the network, per face, at batch 64 on every core (ONNX Runtime on the CPU for the ONNX recognisers and
dlib's port).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from common import SHARED_DATA, orl_files
from facemetric.embedders import load_embedder
from facemetric.embedders.fusion import FusionEmbedder

SETS = ("lfw", "celeba", "orl", "yale", "qmul")
MODELS = ("dlib-resnet?detector=hog", "dlib-resnet", "sface", "arcface-mbf")
FUSIONS = ("dlib-resnet+sface", "arcface-mbf+sface", "arcface-mbf+dlib-resnet", "arcface-mbf+dlib-resnet+sface")
PAN_BANDS = ((0, 20), (30, 50), (60, 90))  # degrees from frontal (qmul)
FAR_OPEN_SET = 0.01


@dataclass
class Photos:
    """A set's photos, their people, and what its protocols need (pairs of LFW, poses of qmul)."""

    files: list[Path]
    labels: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # i, j, same, fold
    pan: np.ndarray | None = None
    tilt: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def load_set(name: str, data: Path, limit: int | None) -> Photos:
    """The photos of set ``name`` under ``data`` (``limit``: about that many photos of whole people, or pairs)."""
    if name == "lfw":
        from facemetric.eval.verification.lfw_pairs import parse_pairs, resolve_pairs

        root = data / "lfw-devtrain"
        pairs = parse_pairs(root / "pairsDevTrain.txt")
        if limit:
            pairs = pairs[:: max(1, len(pairs) // limit)]
        resolved = resolve_pairs(pairs, root / "images", root / "pairsDevTrain.txt")
        files = sorted({p for pair in resolved for p in pair})
        where = {p: k for k, p in enumerate(files)}
        i = np.array([where[a] for a, _ in resolved])
        j = np.array([where[b] for _, b in resolved])
        same = np.array([p.same for p in pairs], dtype=np.int64)
        fold = np.arange(len(pairs)) % 10  # folds of matched and mismatched pairs alike
        labels = np.array([p.parent.name for p in files])
        return Photos(files, labels, (i, j, same, fold))
    if name == "celeba":
        root = data / "celeba-199"
        with open(root / "labels.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        files, labels = [root / r["image"] for r in rows], np.array([r["identity"] for r in rows])
    elif name == "orl":
        paths, people, _ = orl_files(data / "orl")
        files, labels = paths, people.astype(str)
    elif name == "yale":
        files = sorted(p for p in (data / "yale").glob("subject*") if p.is_file())
        labels = np.array([p.name.split(".")[0] for p in files])
    elif name == "qmul":
        files = sorted((data / "qmul-multiview").glob("*/*.ras"))
        stems = [p.stem.split("_") for p in files]
        photos = Photos(
            files,
            np.array([p.parent.name for p in files]),
            pan=np.array([int(s[-1]) for s in stems]),
            tilt=np.array([int(s[-2]) for s in stems]),
        )
        if limit:
            keep = whole_people(photos.labels, limit)
            photos = Photos([files[k] for k in keep], photos.labels[keep], pan=photos.pan[keep], tilt=photos.tilt[keep])
        return photos
    else:
        raise SystemExit(f"unknown set {name!r}: choose from {', '.join(SETS)}")
    if limit:
        keep = whole_people(labels, limit)
        files, labels = [files[k] for k in keep], labels[keep]
    return Photos(list(files), labels)


def whole_people(labels: np.ndarray, limit: int) -> np.ndarray:
    """Rows of the first people (in sorted order) that hold about ``limit`` photos: protocols need whole people."""
    people, counts = np.unique(labels, return_counts=True)
    chosen = people[: max(4, int(np.searchsorted(np.cumsum(counts), limit)) + 1)]
    return np.flatnonzero(np.isin(labels, chosen))


@dataclass
class Embedded:
    """One model's embeddings of a set: unit rows where a face was found (zeros elsewhere)."""

    emb: np.ndarray
    found: np.ndarray
    ms_photo: float
    ms_face: float


def crop_key(embedder: Any) -> tuple:
    """Models that cut photos the same way share one cut per set (sface and arcface-mbf: YuNet's 112 crops)."""
    spec = embedder.spec
    return spec.align, spec.height, spec.width, getattr(embedder, "detector", None), getattr(embedder, "pad", None)


def embed_set(embedder: Any, photos: Photos, crops_cache: dict) -> Embedded:
    """Cut (or reuse the cut of a model that cuts alike) and embed every photo of the set."""
    key = crop_key(embedder)
    if key not in crops_cache:
        start = time.perf_counter()
        cut = embedder.crop_files(photos.files, progress=False, workers=0)
        crops_cache[key] = (cut, (time.perf_counter() - start) / len(photos.files) * 1e3)
    cut, ms_photo = crops_cache[key]
    emb = np.zeros((len(photos.files), embedder.dim), np.float32)
    found = np.zeros(len(photos.files), bool)
    start = time.perf_counter()
    if len(cut):
        emb[cut.index] = embedder.embed_crops(cut.images, batch_size=64)
        found[cut.index] = True
    ms_face = (time.perf_counter() - start) / max(1, len(cut)) * 1e3
    return Embedded(emb, found, round(ms_photo, 2), round(ms_face, 2))


def fuse(fusion: FusionEmbedder, parts: list[Embedded]) -> Embedded:
    """A fusion's embeddings from its members' (the same vectors its ``embed_crops`` gives on shared cuts)."""
    weights = np.asarray(fusion.weights, np.float64)
    scale = np.sqrt(weights / weights.sum()).astype(np.float32)
    found = np.logical_and.reduce([p.found for p in parts])
    emb = np.concatenate([p.emb * s for p, s in zip(parts, scale)], axis=1)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.where(found[:, None], emb / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
    ms_photo = max(p.ms_photo for p in parts if p is not None)  # one YuNet search; the slowest cut bounds it
    return Embedded(emb, found, round(ms_photo, 2), round(sum(p.ms_face for p in parts), 2))


def pair_scores(e: Embedded, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine of each pair; -1 when either photo has no face."""
    scores = np.einsum("nd,nd->n", e.emb[i], e.emb[j]).astype(np.float64)
    return np.where(e.found[i] & e.found[j], scores, -1.0)


def verification(e: Embedded, i: np.ndarray, j: np.ndarray, same: np.ndarray, fold: np.ndarray) -> dict[str, float]:
    from facemetric.eval.verification.metrics import verification_report

    r = verification_report(pair_scores(e, i, j), same, folds=fold)
    return {
        "accuracy": round(r.accuracy, 4),
        "auc": round(r.auc, 4),
        "tar_at_far_1e-3": round(r.tar_at_far["1e-03"], 4),
        "pairs": int(len(i)),
    }


def open_set(e: Embedded, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """DIR at the threshold calibrated at FAR 1 % on the validation unknowns, measured on the test probes."""
    from facemetric.eval.identification.open_set import open_set_report
    from facemetric.eval.identification.protocol import build_open_set_split

    split = build_open_set_split(labels, 0.3, 1, seed).subset
    rng = np.random.default_rng(seed)
    emb = e.emb.copy()
    lost = ~e.found
    random = rng.normal(size=(int(lost.sum()), emb.shape[1])).astype(np.float32)
    emb[lost] = random / np.linalg.norm(random, axis=1, keepdims=True)  # a photo that enrols nothing useful
    gallery = split == "gallery"
    val = np.isin(split, ["val_known", "val_unknown"]) & e.found
    test = np.isin(split, ["test_known", "test_unknown"])
    r = open_set_report(
        emb[gallery], labels[gallery], emb[val], labels[val], emb[test], labels[test],
        target_far=FAR_OPEN_SET, test_rejected=lost[test],
    )  # fmt: skip
    return {
        "dir_at_far_1e-2": round(r.test.dir, 4),
        "false_alarm_rate": round(r.test.false_alarm_rate, 4),
        "rank1": round(r.test.rank1, 4),
    }


def by_pan(e: Embedded, photos: Photos) -> dict[str, Any]:
    """qmul: frontal photos enrolled, the others probed, by pan band: rank-1 and TAR at FAR 1e-3."""
    assert photos.pan is not None and photos.tilt is not None
    frontal = (photos.pan == 90) & (photos.tilt == 90)
    people = np.unique(photos.labels)
    templates = np.zeros((len(people), e.emb.shape[1]), np.float32)
    for k, person in enumerate(people):
        rows = frontal & (photos.labels == person) & e.found
        if rows.any():
            t = e.emb[rows].mean(0)
            templates[k] = t / np.linalg.norm(t)
    out: dict[str, Any] = {}
    off = np.abs(photos.pan - 90)
    for lo, hi in PAN_BANDS:
        probes = ~frontal & (off >= lo) & (off <= hi)
        own = np.searchsorted(people, photos.labels[probes])
        scores = e.emb[probes] @ templates.T  # (probes, people)
        scores[~e.found[probes]] = -1.0
        genuine = scores[np.arange(len(own)), own]
        mask = np.ones_like(scores, bool)
        mask[np.arange(len(own)), own] = False
        impostor = scores[mask]
        threshold = np.quantile(impostor, 1 - 1e-3, method="higher")
        rank1 = (scores.argmax(1) == own) & e.found[probes]
        out[f"pan_{lo}-{hi}"] = {
            "probes": int(probes.sum()),
            "found": round(float(e.found[probes].mean()), 4),
            "rank1": round(float(rank1.mean()), 4),
            "tar_at_far_1e-3": round(float(np.mean(genuine > threshold)), 4),
        }
    return out


def evaluate(e: Embedded, photos: Photos, name: str) -> dict[str, Any]:
    result: dict[str, Any] = {"found": round(float(e.found.mean()), 4), "ms_photo": e.ms_photo, "ms_face": e.ms_face}
    if name == "qmul":
        result.update(by_pan(e, photos))
        return result
    if photos.pairs is not None:
        result.update(verification(e, *photos.pairs))
        return result
    from facemetric.eval.verification.protocol import held_out_pair_protocol

    protocol = held_out_pair_protocol(photos.labels, 6000, seed=0)
    result.update(verification(e, protocol.i, protocol.j, protocol.same, protocol.fold))
    result.update(open_set(e, photos.labels))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="models run on every photo")
    parser.add_argument("--fusions", nargs="*", default=list(FUSIONS), help="fusions of those models (A+B)")
    parser.add_argument("--limit", type=int, default=None, help="about this many photos (pairs for lfw) a set")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args()
    embedders = {ref: load_embedder(ref) for ref in args.models}
    fusions = {ref: load_embedder(ref) for ref in args.fusions}
    run = {e.reference for e in embedders.values()}
    for ref, fusion in fusions.items():  # before any set is embedded, not after the first
        assert isinstance(fusion, FusionEmbedder)
        missing = [m.reference for m in fusion.members if m.reference not in run]
        if missing:
            names = " ".join(missing)
            raise SystemExit(f"fusion {ref}: run its members too (--models ... {names}), or --fusions alone")
    results: dict[str, Any] = {}
    for set_name in args.sets:
        photos = load_set(set_name, args.data, args.limit)
        crops: dict = {}
        embedded: dict[str, Embedded] = {}
        for ref, embedder in embedders.items():
            embedded[embedder.reference] = embed_set(embedder, photos, crops)
            print(f"{set_name}: {ref} done", flush=True)
        for fusion in fusions.values():
            assert isinstance(fusion, FusionEmbedder)
            embedded[fusion.reference] = fuse(fusion, [embedded[m.reference] for m in fusion.members])
        results[set_name] = {
            "photos": len(photos.files),
            "people": int(len(np.unique(photos.labels))),
            "models": {ref: evaluate(e, photos, set_name) for ref, e in embedded.items()},
        }
        print(json.dumps({set_name: results[set_name]}, indent=1), flush=True)
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "command": "python benchmarks/pretrained_models.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if v is not None and k != "data"
        ),  # fmt: skip
        "weights": {ref: getattr(f, "weights", None) for ref, f in fusions.items()},
        "sets": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
