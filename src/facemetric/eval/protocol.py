"""LFW-protocol verification of a checkpoint on a pairs file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facemetric.data.cache import decode_manifest
from facemetric.data.protocols import parse_pairs, resolve_pairs
from facemetric.data.sources import Manifest
from facemetric.eval.embed import Embedder
from facemetric.eval.pairs import cosine_scores
from facemetric.eval.verification import verification_report


class EvaluationError(RuntimeError):
    """The protocol cannot be evaluated as asked (e.g. an image it needs is unreadable)."""


def evaluate_pairs_file(
    embedder: Embedder, pairs_path: str | Path, images_root: str | Path, flip: bool = False,
    batch_size: int = 256, progress: bool = True,
) -> dict[str, Any]:
    """Accuracy (10-fold, thresholds chosen on the other folds), AUC, EER and TAR@FAR for a pairs file.

    Every image is checked before any work; each distinct image is decoded and embedded once.
    Folds come from the file when its header has them, else stratified folds are made.
    """
    pairs = parse_pairs(pairs_path)
    paths = resolve_pairs(pairs, images_root, pairs_path)
    unique = sorted({p for pair in paths for p in pair})
    index = {p: k for k, p in enumerate(unique)}
    packed = decode_manifest(Manifest(unique, [str(p.parent.name) for p in unique], Path(images_root), "pairs"),
                             embedder.spec, progress=progress)
    if packed.bad:
        lines = {str(p): [pair.line for pair, pp in zip(pairs, paths) if p in pp] for p in unique}
        details = "; ".join(f"{path} (line(s) {lines[path][:3]}): {reason}" for path, reason in packed.bad[:5])
        raise EvaluationError(f"{len(packed.bad)} image(s) named in {pairs_path} cannot be decoded: {details}")
    emb = embedder.embed_array(packed.images, batch_size, flip, progress)
    i = np.array([index[a] for a, _ in paths])
    j = np.array([index[b] for _, b in paths])
    same = np.array([int(p.same) for p in pairs])
    folds = np.array([p.fold for p in pairs]) if pairs[0].fold is not None else None
    report = verification_report(cosine_scores(emb, i, j), same, folds=folds)
    report.update(pairs_file=str(pairs_path), num_pairs=len(pairs), num_images=len(unique), flip=flip)
    return report
