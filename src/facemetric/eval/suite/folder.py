"""An evaluation folder (``facemetric eval --out DIR``): what a report is rendered from.

Files (format ``facemetric-eval/1``; ``eval.json`` is written last, so its presence means complete):

* ``eval.json``: checkpoint, run folder, data description, the ``verification`` /
  ``identification`` / ``retrieval`` summaries that were run, ``no_face`` (evaluations of
  photo files: the policy for photos without a detectable face, and the photos and pairs affected)
  and ``pose`` (verification by the head's yaw, where the photos' yaws are known:
  :mod:`facemetric.eval.pose`);
* ``scores.npz``: every verification pair: ``scores``, ``same`` (1/0), ``fold`` (-1 without
  folds), ``path1``, ``path2``;
* ``errors.npz``: the worst false accepts and false rejects at the operating threshold:
  ``kind``, ``score``, ``path1``, ``path2`` and the two crops ``image1``, ``image2`` (uint8, as
  the model saw them, so the report needs no access to the data);
* ``embeddings.npz``: up to 3,000 ``embeddings`` with their ``identities`` (for the t-SNE map);
* ``decisions.csv``: the open-set decision per test probe, ``id,label`` (``no correspondence``
  for a probe judged not enrolled);
* ``detections.jsonl``: for a model that detects faces in photo files, one record per photo it found
  a face in: ``path``, then the detection (``backend``, ``box``, ``score``, ``landmarks``, ``faces``,
  ``image_size``, ``pose``: the head's yaw, pitch and roll in degrees where five landmarks give it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemetric.core.atomic import write_atomic, write_npz
from facemetric.eval.identification.files import write_decisions_csv
from facemetric.eval.suite.document import EVAL_FORMAT, EvalDocument

if TYPE_CHECKING:  # the suite imports FAISS and scikit-learn: not needed to read or name the format
    from facemetric.eval.suite.embeddings import EvalResult


def is_eval_dir(path: str | Path) -> bool:
    """True when ``path`` holds a complete evaluation (an ``eval.json`` of this format)."""
    try:
        return json.loads((Path(path) / "eval.json").read_text()).get("format") == EVAL_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def eval_document(result: EvalResult, meta: dict[str, Any]) -> EvalDocument:
    """``eval.json``'s content: ``meta`` (checkpoint, run_dir, embedding_dim, flip, data), the results, the notes."""
    return EvalDocument(
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        **meta,
        notes=list(result.notes),
        **{name: getattr(result.summary, name) for name in type(result.summary).model_fields},
    )


def write_eval_dir(out: str | Path, result: EvalResult, meta: dict[str, Any]) -> Path:
    """Write ``result`` with ``meta`` (checkpoint, run_dir, embedding_dim, flip, data) to ``out``.

    Files of a previous evaluation that this one does not produce are removed, so a folder never
    mixes two evaluations; ``eval.json`` is replaced last.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").unlink(missing_ok=True)  # incomplete until rewritten
    produced = {"scores.npz": result.scores, "errors.npz": result.errors, "embeddings.npz": result.embeddings}
    for name, arrays in produced.items():
        if arrays is None:
            (out / name).unlink(missing_ok=True)
        else:
            write_npz(out / name, arrays)
    if result.decisions is not None:
        write_decisions_csv(out / "decisions.csv", *result.decisions)
    else:
        (out / "decisions.csv").unlink(missing_ok=True)
    if result.detections:
        lines = "".join(json.dumps(row) + "\n" for row in result.detections)
        write_atomic(out / "detections.jsonl", lines)
    else:
        (out / "detections.jsonl").unlink(missing_ok=True)
    write_atomic(out / "eval.json", eval_document(result, meta).model_dump_json(indent=1) + "\n")
    return out


def brief_summary(doc: EvalDocument) -> str:
    """The JSON a terminal shows: the evaluation without the verification curve points and the time."""
    exclude: dict[str, Any] = {"created": True, "format": True}
    for name in ("verification", "identification", "retrieval", "no_face", "pose"):
        if getattr(doc, name) is None:
            exclude[name] = True  # not run: not shown
    if doc.verification is not None:
        exclude["verification"] = {"curves"}
    return doc.model_dump_json(indent=1, exclude=exclude)
