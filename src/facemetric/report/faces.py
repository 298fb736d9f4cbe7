"""The report of a face evaluation folder (``facemetric eval --out``): the subtitle and the sections, in order.

Each task has its section module (:mod:`.verification`, :mod:`.identification`, :mod:`.retrieval`); this
module puts them together with the metrics table, the photos without a face, the training curves and the
t-SNE map of the embeddings.
"""

from __future__ import annotations

from pathlib import Path

from facemetric.eval.suite.document import EvalDocument
from facemetric.report.document import Figure, Section, Table, how_to_read, not_available
from facemetric.report.formatting import num
from facemetric.report.identification import identification_rows, identification_section
from facemetric.report.load import ReportError, load_eval, load_npz
from facemetric.report.no_face import no_face_section
from facemetric.report.plots import tsne_plot
from facemetric.report.pose import pose_section
from facemetric.report.retrieval import retrieval_rows, retrieval_section
from facemetric.report.training import training_section
from facemetric.report.verification import (
    det_section,
    error_gallery_section,
    roc_section,
    scores_section,
    verification_rows,
)


def _metrics_section(doc: EvalDocument) -> Section:
    section = Section(
        "Metrics",
        [
            how_to_read(
                "Accuracy is the fraction of pairs classified correctly, each fold using the threshold chosen on the "
                "other folds (mean ± standard deviation over folds). AUC is the probability that a random genuine "
                "(same-person) pair scores higher than a random impostor pair. EER (equal error rate) is the error "
                "rate at the threshold where the false accept rate equals the false reject rate. TAR @ FAR = f is the "
                "fraction of genuine pairs accepted at the strictest threshold that accepts at most a fraction f of "
                "impostor pairs. Identification and retrieval figures are explained in their sections."
            )
        ],
    )
    rows = []
    if doc.verification is not None:
        rows += verification_rows(doc.verification)
    if doc.identification is not None:
        rows += identification_rows(doc.identification)
    if doc.retrieval is not None:
        rows += retrieval_rows(doc.retrieval)
    if rows:
        section.blocks.append(Table(("Metric", "Value"), rows))
    else:
        section.blocks.append(not_available("eval.json has no verification, identification or retrieval results."))
    return section


def _embeddings_section(eval_dir: Path) -> Section:
    section = Section(
        "Embeddings (t-SNE)",
        [
            how_to_read(
                "t-SNE maps the embeddings to 2-D keeping near neighbours near. Compact clusters of one colour that do "
                "not mix mean the model separates those identities; distances between clusters and cluster sizes "
                "carry little meaning. At most 20 identities (those with the most images) are shown."
            )
        ],
    )
    arrays = load_npz(eval_dir / "embeddings.npz", ("embeddings", "identities"))
    if arrays is None:
        section.blocks.append(not_available(f"{eval_dir / 'embeddings.npz'} not found."))
        return section
    if arrays["embeddings"].ndim != 2:
        raise ReportError(
            f"{eval_dir / 'embeddings.npz'}: embeddings must be (N, D), got shape "
            f"{arrays['embeddings'].shape}; re-run `facemetric eval --out DIR`"
        )
    png = tsne_plot(arrays["embeddings"], arrays["identities"])
    if png is None:
        section.blocks.append(
            not_available(f"too few points ({len(arrays['embeddings'])}) for a t-SNE plot (5 needed).")
        )
    else:
        section.blocks.append(Figure("tsne.png", "t-SNE of the embeddings", png))
    return section


def _meta(doc: EvalDocument) -> list[tuple[str, str]]:
    """The subtitle: checkpoint, time, data, embedding size, test-time flip and the evaluation's notes."""
    meta = [("Checkpoint", doc.checkpoint), ("Created", doc.created)]
    items = sorted(doc.data.items(), key=lambda kv: kv[0] != "description")
    meta += [("Data" if k == "description" else f"Data {k}", num(x)) for k, x in items]
    meta += [("Embedding dimension", num(doc.embedding_dim)), ("Test-time flip", num(doc.flip))]
    if doc.no_face is not None and doc.no_face.affected():
        meta.append(("Photos without a face", doc.no_face.summary()))
    return meta + [("Note", note) for note in doc.notes]


def _sections(doc: EvalDocument, eval_dir: Path) -> list[Section]:
    """The sections of a face report, in order; a section whose inputs are absent says so."""
    v = doc.verification
    no_face = no_face_section(doc.no_face)
    pose = pose_section(doc.pose)
    return [
        _metrics_section(doc),
        *([no_face] if no_face is not None else []),
        roc_section(v),
        det_section(v),
        scores_section(v, eval_dir),
        *([pose] if pose is not None else []),
        training_section(doc, eval_dir),
        _embeddings_section(eval_dir),
        error_gallery_section(v, eval_dir),
        identification_section(doc, eval_dir),
        retrieval_section(doc),
    ]


def face_report(eval_dir: Path) -> tuple[list[tuple[str, str]], list[Section]]:
    """The subtitle (label, value) and the sections of the report of a face evaluation folder."""
    doc = load_eval(eval_dir)
    return _meta(doc), _sections(doc, eval_dir)
