"""Closed-set class prediction for image files: which training person is each test photo.

Two classifiers, one interface (:class:`Classifier`: embeddings in, class scores out):

* :func:`head_from_checkpoint`: the classifier head a facemetric run trained (softmax, ArcFace,
  CosFace ... scored without the margin), with the run's identity names as classes;
* :func:`centre_classifier`: the mean embedding of each identity folder's photos, for any embedder
  (a pair-loss checkpoint, an ONNX export, the pretrained ``dlib-resnet``).

:func:`classify_folder` labels every image of a flat test folder. A photo that cannot be used
(undecodable, no face) still gets a row, as a submission needs one per image: it gets the label
the other photos were most often given (the best guess without the photo) and is *flagged* in
``flagged`` with the reason. :func:`write_predictions` writes the ``image,label`` CSV and, beside
it, ``<name>.problems.csv`` listing the flagged photos.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from facemetric.core.atomic import write_csv
from facemetric.core.checkpoint import load_checkpoint
from facemetric.core.embedder import Embedder
from facemetric.core.errors import FacemetricError
from facemetric.data.sources import flat_images, scan_folders
from facemetric.eval.course.classification import centre_scores, head_scores, top_k_accuracy
from facemetric.eval.course.result import DevAccuracy, ImageProblem, PredictionSummary
from facemetric.losses import build_loss, loss_needs_classes
from facemetric.losses.margin import ClassifierLoss

log = logging.getLogger("facemetric")


class ClassifyError(FacemetricError, ValueError):
    """Classification cannot be run as asked (no head in the checkpoint, an empty folder ...)."""


@dataclass
class Classifier:
    """Class names and how to score embeddings against them (``scores(emb)`` -> (N, classes))."""

    names: list[str]
    by: str  # "head" or "centres"
    head: ClassifierLoss | None = None
    centres: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        if self.head is not None:
            return head_scores(self.head, embeddings)
        assert self.centres is not None
        return centre_scores(embeddings, self.centres)


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def head_from_checkpoint(path: str | Path) -> Classifier | None:
    """The trained classifier head of a run's checkpoint (None when its loss is a pair loss)."""
    state = load_checkpoint(path)
    cfg, names = state["config"], list(state["identity_names"])
    loss_cfg, loss_state, prefix = cfg["loss"], state.get("loss"), ""
    if loss_cfg["name"] == "distill":
        if not cfg.get("distill", {}).get("labels"):
            return None
        loss_cfg, prefix = cfg["distill"]["label_loss"], "label_loss."
    if not loss_needs_classes(loss_cfg["name"]):
        return None
    head = build_loss(
        loss_cfg["name"],
        **loss_cfg.get("options", {}),
        num_classes=len(names),
        embedding_dim=cfg["model"]["embedding_dim"],
    )
    assert isinstance(head, ClassifierLoss)
    if state.get("shards"):  # Partial FC over several processes: the shards hold consecutive classes
        parts = [_strip(shard["loss"], "head.") for shard in state["shards"]]
        weights = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    elif loss_state is not None and any(k.startswith("head.") for k in loss_state):
        weights = _strip(loss_state, "head.")  # Partial FC in one process
    elif loss_state is not None:
        weights = _strip(loss_state, prefix) if prefix else dict(loss_state)
    else:
        raise ClassifyError(f"{path}: holds no loss weights, so no classifier head; classify with --known")
    try:
        head.load_state_dict(weights)
    except RuntimeError as exc:
        raise ClassifyError(f"{path}: its {loss_cfg['name']} head does not load ({exc})") from None
    return Classifier(names, "head", head=head.eval())


def centre_classifier(
    embedder: Embedder,
    known: str | Path,
    per_identity: int | None = None,
    flip: bool = False,
    batch_size: int = 64,
    progress: bool = True,
    seed: int = 0,
) -> Classifier:
    """Class centres from a folder per identity (``known/<identity>/*``): each identity's mean
    embedding over up to ``per_identity`` photos (all when None, else a seeded draw)."""
    manifest = scan_folders(known)
    ids = np.asarray(manifest.identities)
    rows = np.arange(len(ids))
    if per_identity is not None:
        rng = np.random.default_rng(seed)
        rows = np.sort(
            np.concatenate([rng.permutation(np.flatnonzero(ids == n))[:per_identity] for n in np.unique(ids)])
        )
    batch = embedder.embed_files([manifest.paths[k] for k in rows], batch_size, flip, progress)
    names = sorted(set(ids[rows].tolist()))
    index = {n: k for k, n in enumerate(names)}
    centres = np.zeros((len(names), embedder.dim), np.float64)
    np.add.at(centres, [index[ids[rows[k]]] for k in batch.index], batch.embeddings)
    empty = [n for n in names if not centres[index[n]].any()]
    notes = [f"{manifest.paths[rows[k]]}: left out of its class centre ({reason})" for k, reason in batch.failures]
    if empty:
        raise ClassifyError(
            f"{known}: no usable photo for {len(empty)} identities (e.g. {empty[:5]}); every class needs one "
            "(see the reasons above), or remove those folders"
        )
    for note in notes:
        log.warning(note)
    return Classifier(names, "centres", centres=centres, notes=notes)


@dataclass
class ClassPredictions:
    """One predicted label per image of a folder, in file-name order; ``flagged`` (image, reason)
    are the photos that could not be used and got the fallback label."""

    images: list[str]
    labels: list[str]
    top5: list[list[str]]
    flagged: list[tuple[str, str]]
    by: str

    def summary(self) -> PredictionSummary:
        """The predictions in numbers (what ``facemetric predict classify`` prints)."""
        return PredictionSummary(
            images=len(self.images),
            flagged=[ImageProblem(image=i, reason=r) for i, r in self.flagged],
            by=self.by,
            classes_predicted=len(Counter(self.labels)),
        )


def classify_folder(
    embedder: Embedder,
    folder: str | Path,
    classifier: Classifier,
    flip: bool = False,
    batch_size: int = 64,
    progress: bool = True,
) -> ClassPredictions:
    """The class of every image of a flat folder (sorted by file name); unusable photos are flagged."""
    paths, notes = flat_images(folder, "test")
    for note in notes:
        log.warning(note)
    batch = embedder.embed_files(paths, batch_size, flip, progress)
    top = np.zeros((len(paths), 0), np.int64)
    if len(batch):
        scores = classifier.scores(batch.embeddings)
        k = min(5, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    names = classifier.names
    labels: list[str | None] = [None] * len(paths)
    top5: list[list[str]] = [[] for _ in paths]
    for row, k in enumerate(batch.index.tolist()):
        labels[k] = names[top[row, 0]]
        top5[k] = [names[c] for c in top[row]]
    fallback = Counter(x for x in labels if x is not None).most_common(1)
    guess = fallback[0][0] if fallback else names[0]
    flagged = [(paths[k].name, reason) for k, reason in batch.failures]
    for k, _ in batch.failures:
        labels[k] = guess
    return ClassPredictions([p.name for p in paths], [str(x) for x in labels], top5, flagged, classifier.by)


def dev_accuracy(
    embedder: Embedder,
    dev: str | Path,
    classifier: Classifier,
    flip: bool = False,
    batch_size: int = 64,
    progress: bool = True,
) -> DevAccuracy:
    """Top-1 / top-5 on a folder per identity of the same people (``dev/<identity>/*``); photos of
    people who are not classes, or that cannot be used, count as errors and are reported."""
    manifest = scan_folders(dev)
    index = {n: k for k, n in enumerate(classifier.names)}
    truth = np.array([index.get(n, -1) for n in manifest.identities])
    strangers = sorted({n for n in manifest.identities if n not in index})
    batch = embedder.embed_files(manifest.paths, batch_size, flip, progress)
    n = len(manifest.paths)
    top = {1: 0.0, 5: 0.0}
    y = truth[batch.index]
    known = y >= 0
    if known.any():  # accuracy among the classifiable photos, then over all n (the others count as errors)
        top = top_k_accuracy(classifier.scores(batch.embeddings[known]), y[known], (1, 5))
    return DevAccuracy(
        top1=top[1] * known.sum() / n,
        top5=top[5] * known.sum() / n,
        images=n,
        not_a_class=int((truth < 0).sum()),
        not_a_class_examples=strangers[:5],
        unusable=[ImageProblem(image=str(manifest.paths[k]), reason=r) for k, r in batch.failures],
        by=classifier.by,
    )


def write_predictions(
    path: str | Path,
    images: Sequence[str],
    labels: Sequence[str],
    flagged: Sequence[tuple[str, str]] = (),
    header: Sequence[str] = ("image", "label"),
) -> Path:
    """The submission CSV (one ``image,label`` row per image) and, when photos were flagged,
    ``<name>.problems.csv`` (``image,reason``) beside it; a stale problems file is removed."""
    out = write_csv(path, list(header), zip(images, labels))
    problems = out.with_name(out.stem + ".problems.csv")
    if flagged:
        write_csv(problems, ["image", "reason"], flagged)
    elif problems.exists():
        problems.unlink()
    return out
