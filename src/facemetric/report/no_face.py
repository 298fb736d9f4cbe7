"""The report's section on photos without a detectable face: the policy, the photos, the pairs they affected,
the people left unenrolled and the retrieval photos left out (``eval.json`` lists them all)."""

from __future__ import annotations

from facemetric.eval.suite.document import NoFacePhoto, NoFaceReport
from facemetric.report.document import Block, Para, Section, Table, how_to_read
from facemetric.report.formatting import num

MAX_NO_FACE_ROWS = 50  # photos / pairs without a face listed in the report (eval.json lists all)


def _no_face_table(photos: list[NoFacePhoto], used_as: str) -> Table:
    """Photos without a face: path, open-set subset (when any has one), what was done, detector and its message."""
    shown = photos[:MAX_NO_FACE_ROWS]
    if any(p.subset for p in shown):
        return Table(
            ("Photo", "Open-set subset", "Used as", "Detection backend", "Detector's message"),
            [(p.path, p.subset or "", used_as, p.detection.backend, p.reason) for p in shown],
        )
    return Table(
        ("Photo", "Used as", "Detection backend", "Detector's message"),
        [(p.path, used_as, p.detection.backend, p.reason) for p in shown],
    )


def _more(shown: int, total: int, what: str) -> list[Block]:
    if total <= shown:
        return []
    return [Para(f"... and {total - shown} more {what}: eval.json (no_face) lists them all.")]


def no_face_section(report: NoFaceReport | None) -> Section | None:
    """Photos in which the model found no face, and the pairs they affected; None when there were none."""
    if report is None or not report.affected():
        return None
    section = Section(
        "Photos without a detectable face",
        [
            how_to_read(
                "The model finds the face before embedding it; in these photos its detector found none. The policy "
                "(facemetric eval --no-face) says what became of them: fallback embeds the central crop the model's "
                "spec cuts without detection, reject turns them away as a deployed system would (a pair with one is "
                "scored -1, a non-match), fail stops the evaluation."
            ),
            Para(f"{report.summary()}: {report.rule}."),
        ],
    )
    used_as = "central crop" if report.policy == "fallback" else "turned away"
    if report.photos:
        section.blocks.append(_no_face_table(report.photos, used_as))
        section.blocks += _more(MAX_NO_FACE_ROWS, len(report.photos), "photos")
    if report.pairs:
        rows = [
            (num(p.line), p.path1, p.path2, "same" if p.same else "different", num(p.score))
            for p in report.pairs[:MAX_NO_FACE_ROWS]
        ]
        section.blocks.append(Table(("Pairs file line", "Photo 1", "Photo 2", "Person", "Score"), rows))
        section.blocks += _more(MAX_NO_FACE_ROWS, len(report.pairs), "pairs")
    if report.not_enrolled:
        section.blocks.append(
            Para(
                f"Not enrolled (every gallery photo without a face): {', '.join(report.not_enrolled)}; their probes "
                "are unknown people to the system."
            )
        )
    ret = report.retrieval
    if ret is not None and ret.photos:
        section.blocks.append(
            Para(f"Retrieval dataset: {ret.n_photos} photos without a face, {ret.left_out} of them left out.")
        )
        section.blocks.append(_no_face_table(ret.photos, used_as))
        section.blocks += _more(MAX_NO_FACE_ROWS, len(ret.photos), "photos")
    return section
