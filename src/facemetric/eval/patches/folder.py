"""A patch evaluation folder (``facemetric eval --data RELEASE --patches --out DIR``): what its report is rendered from.

Files (format ``facemetric-patches/1``; ``eval.json`` is written last, so its presence means complete):

* ``eval.json``: the model or baseline, the release and split, the three tasks' mAP per level and
  kind, counts and sampling settings (:class:`~facemetric.eval.patches.result.PatchEvalDocument`);
* ``descriptors.npz``: the descriptors of a seeded sample of points in all their 16 images
  (``descriptors``, ``points`` as ``<sequence>/<index>``, ``images`` as ``ref``, ``e1`` ... ``t5``),
  for the report's t-SNE map.

The files of a face evaluation (``facemetric eval --out``) are removed from the folder, so it never
mixes two evaluations.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.atomic import write_atomic, write_npz
from facemetric.eval.patches.result import PATCH_EVAL_FORMAT, PatchEvalDocument, PatchEvalMeta, PatchTaskResults

FACE_FILES = ("scores.npz", "errors.npz", "embeddings.npz", "decisions.csv")


def is_patch_eval_dir(path: str | Path) -> bool:
    """True when ``path`` holds a complete patch evaluation (an ``eval.json`` of this format)."""
    try:
        return json.loads((Path(path) / "eval.json").read_text()).get("format") == PATCH_EVAL_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def patch_document(results: PatchTaskResults, meta: PatchEvalMeta) -> PatchEvalDocument:
    """``eval.json``'s content: ``meta`` (model, describer, patch_size, data) and the results."""
    return PatchEvalDocument(created=time.strftime("%Y-%m-%dT%H:%M:%S"), **dict(meta), **dict(results))


def write_patch_eval_dir(
    out: str | Path, results: PatchTaskResults, meta: PatchEvalMeta, sample: dict[str, np.ndarray]
) -> Path:
    """Write the evaluation to ``out``: ``descriptors.npz`` (``sample``), then ``eval.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").unlink(missing_ok=True)  # incomplete until rewritten
    for name in FACE_FILES:
        (out / name).unlink(missing_ok=True)
    write_npz(out / "descriptors.npz", sample)
    write_atomic(out / "eval.json", patch_document(results, meta).model_dump_json(indent=1) + "\n")
    return out


def brief_patch_summary(doc: PatchEvalDocument) -> str:
    """The JSON a terminal shows: the document without its time, its format, the four verification lists
    behind the balanced / imbalanced means and the list of sequences (``eval.json`` keeps them all)."""
    lists = {"intra_balanced", "intra_imbalanced", "inter_balanced", "inter_imbalanced"}
    exclude: dict[str, Any] = {"created": True, "format": True, "verification": lists, "data": {"sequences"}}
    return doc.model_dump_json(indent=1, exclude=exclude)
