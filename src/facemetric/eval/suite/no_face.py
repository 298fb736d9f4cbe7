"""Photos in which the model's detector finds no face: a stated policy, never an accident of the data.

``no_face`` (``facemetric eval --no-face``): ``fallback`` (default) embeds the central crop of the model's
:class:`~facemetric.core.spec.ImageSpec` (what the model sees without detection), ``reject`` turns them away
as a deployed system would (see :func:`facemetric.eval.suite.embeddings.evaluate_embeddings`), ``fail``
stops the evaluation naming them. Unreadable files are never "without a face": they stop the evaluation
under every policy. The photos and pairs affected are recorded in the results (``no_face``,
:class:`~facemetric.eval.suite.document.NoFaceReport`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.embedder import Embedder, FaceCrops
from facemetric.core.faces import Detection
from facemetric.core.spec import ImageSpec
from facemetric.data.images import ImageDecodeError, open_image, resize_crop
from facemetric.eval.errors import EvaluationError
from facemetric.eval.suite.document import NoFacePair, NoFacePhoto, NoFacePolicy, NoFaceReport
from facemetric.eval.suite.embeddings import REJECTED_SCORE, EvalResult, PairsInput

log = logging.getLogger("facemetric")

NO_FACE_POLICIES: tuple[NoFacePolicy, ...] = ("fallback", "reject", "fail")


def no_face_rule(policy: str, spec: ImageSpec) -> str:
    """What ``policy`` does with a photo in which no face is detected, in words (``NoFaceReport.rule``)."""
    if policy == "fallback":
        return (
            f"cut as the model's spec cuts a photo without detection (its central {spec.crop:g} resized to "
            f"{spec.height}x{spec.width}), then embedded and scored like every other photo"
        )
    if policy == "reject":
        return (
            f"turned away, as a deployed system that refuses such photos: a pair with one is scored "
            f"{REJECTED_SCORE:g} (the lowest cosine: a non-match at every threshold above it); an open-set gallery "
            "photo is not enrolled (a person left without one is unknown to the system and out of the CMC), a "
            "validation probe is left out of the threshold calibration, a test probe is rejected (no "
            "correspondence: a known one counts as not identified, an unknown one as no false alarm); retrieval "
            "leaves such images out"
        )
    return "the evaluation stops, naming the photos"


def check_policy(no_face: str) -> NoFacePolicy:
    for policy in NO_FACE_POLICIES:
        if no_face == policy:
            return policy
    raise EvaluationError(f"no_face must be one of {', '.join(NO_FACE_POLICIES)}, got {no_face!r}")


@dataclass
class NoFace:
    """A readable photo in which the embedder found no face."""

    position: int  # in the list of paths given to crop_files
    reason: str
    detection: Detection
    crop: np.ndarray | None  # the spec's central crop (fallback policy)


def _backend(embedder: Embedder) -> str:
    """The name of the embedder's face detector (its aligner's, else its spec's ``align``)."""
    return str(getattr(getattr(embedder, "aligner", None), "name", None) or embedder.spec.align)


def sort_failures(
    paths: list[Path], crops: FaceCrops, embedder: Embedder, fallback: bool
) -> tuple[list[tuple[int, str]], list[NoFace]]:
    """The photos ``crop_files`` left out, as (unreadable files, readable photos without a face).

    A file that decodes is a photo in which no face was found; with ``fallback`` its crop is the
    spec's central crop, as :class:`~facemetric.embedders.base.CropEmbedder` cuts a photo without a detector.
    """
    unreadable: list[tuple[int, str]] = []
    no_face: list[NoFace] = []
    backend = _backend(embedder)
    for k, reason in crops.failures:
        try:
            image = open_image(paths[k], embedder.spec.channels)
        except ImageDecodeError:
            unreadable.append((k, reason))
            continue
        except Exception as exc:  # a decoder bug: the file is unusable, not a photo without a face
            unreadable.append((k, f"{type(exc).__name__}: {exc}"))
            continue
        size = [image.width, image.height]
        if fallback:
            crop = resize_crop(image, embedder.spec)
            no_face.append(NoFace(k, reason, Detection(f"{backend}/fallback", False, image_size=size), crop))
        else:
            no_face.append(NoFace(k, reason, Detection(backend, False, image_size=size), None))
    return unreadable, no_face


def listed(entries: list[tuple[Path | str, str]]) -> str:
    shown = "; ".join(f"{path}: {reason}" for path, reason in entries[:5])
    return shown + (f"; and {len(entries) - 5} more" if len(entries) > 5 else "")


def refuse_no_face(no_face: list[NoFace], paths: list[Path], what: str) -> None:
    if no_face:
        raise EvaluationError(
            f"{len(no_face)} photo(s) named in {what} have no detectable face (--no-face fail): "
            f"{listed([(paths[m.position], m.reason) for m in no_face])}. Give --no-face fallback (the model's "
            "central crop) or --no-face reject (turned away: non-matches, rejected probes) to evaluate anyway"
        )


def protocol_crops(
    paths: list[Path], embedder: Embedder, progress: bool, what: str, policy: str
) -> tuple[Any, list[NoFace], list[dict] | None]:
    """One crop per image, cut as ``embedder`` expects, the photos without a face, and the detection
    records of the others (:func:`detection_records`).

    An unreadable image fails the evaluation; a photo without a face follows ``policy``: its crop is
    the spec's central crop (fallback) or zeros, never embedded (reject), or the evaluation stops (fail).
    """
    crops = embedder.crop_files(paths, progress)
    records = detection_records(paths, crops)
    if not crops.failures:
        return crops.images, [], records
    unreadable, no_face = sort_failures(paths, crops, embedder, policy == "fallback")
    if unreadable:
        raise EvaluationError(
            f"{len(unreadable)} image(s) named in {what} cannot be read: "
            f"{listed([(paths[k], reason) for k, reason in unreadable])}. These are not photos without a face "
            "(--no-face does not apply): replace or remove them"
        )
    if policy == "fail":
        refuse_no_face(no_face, paths, what)
    spec = embedder.spec
    images = np.zeros((len(paths), spec.height, spec.width, spec.channels), np.uint8)
    images[crops.index] = np.asarray(crops.images)
    for m in no_face:
        if m.crop is not None:
            images[m.position] = m.crop
    return images, no_face, records


def detection_records(paths: Sequence[Any], crops: FaceCrops) -> list[dict] | None:
    """``detections.jsonl``'s rows for the photos ``crops`` (``crop_files``'s answer) cut with a detector:
    the photo's path, then its detection record (box, score, landmarks, faces, image size, pose); None
    when the model crops without detecting."""
    rows = [
        {"path": str(paths[int(k)]), **det.to_dict()}
        for k, det in zip(crops.index.tolist(), crops.detections)
        if det.backend != "crop"
    ]
    return rows or None


def no_face_photo(path: str, m: NoFace, subset: str | None = None) -> NoFacePhoto:
    return NoFacePhoto(path=path, reason=m.reason, detection=m.detection, subset=subset or None)


def protocol_no_face(
    report: NoFaceReport,
    missing: list[NoFace],
    display: list[str],
    identities: list[str],
    pairs: PairsInput | None,
    lines: list[int],
    result: EvalResult,
    subset: np.ndarray | None,
) -> NoFaceReport:
    """``report`` with the photos of the pairs file / open-set split without a face and what they affected."""
    if not missing:
        return report
    flagged = np.zeros(len(display), bool)
    flagged[[m.position for m in missing]] = True
    role = (lambda k: str(subset[k]) or None) if subset is not None else (lambda k: None)
    report.photos = [no_face_photo(display[m.position], m, role(m.position)) for m in missing]
    report.n_photos = len(missing)
    if pairs is not None and result.scores is not None:
        scores = result.scores["scores"]
        hit = np.flatnonzero(flagged[pairs.i] | flagged[pairs.j])
        report.pairs = [
            NoFacePair(
                index=int(k),
                line=lines[k] if k < len(lines) else None,
                path1=display[int(pairs.i[k])],
                path2=display[int(pairs.j[k])],
                same=bool(pairs.same[k]),
                score=float(scores[k]),
            )
            for k in hit
        ]
        report.n_pairs = len(hit)
    if subset is not None:
        roles = [str(subset[m.position]) for m in missing if subset[m.position]]
        report.open_set = {name: roles.count(name) for name in sorted(set(roles))}
        if report.policy == "reject":
            gallery = subset == "gallery"
            names = np.asarray(identities)
            enrolled = set(names[gallery & ~flagged].tolist())
            report.not_enrolled = sorted(set(names[gallery].tolist()) - enrolled)
    log.warning("%s: %s", report.summary(), listed([(p.path, p.reason) for p in report.photos]))
    return report
