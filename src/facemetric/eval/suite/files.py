"""From protocol files to an evaluation (``facemetric eval``): a pairs file, an open-set split CSV, a dataset.

:func:`evaluate_files` takes any of an LFW pairs file or pairs CSV, an open-set split CSV and a dataset for
retrieval; every image is checked before any work and each distinct image is decoded and embedded once.
Photos in which the model's detector finds no face follow a stated policy
(:mod:`facemetric.eval.suite.no_face`). :func:`evaluate_pairs_file` is its verification summary for one
pairs file (what the demo prints).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.embedder import Embedder
from facemetric.data.prepared import is_prepared, load_prepared, prepared_spec
from facemetric.data.sources import scan_source
from facemetric.eval.errors import EvaluationError, MissingImageError
from facemetric.eval.identification.files import read_open_set_csv
from facemetric.eval.pose import PoseBreakdown, photo_yaws, pose_breakdown
from facemetric.eval.primitives import calibrate_threshold
from facemetric.eval.suite.document import (
    DataDescription,
    EvalSummary,
    NoFaceCounts,
    NoFaceReport,
    NoFaceRetrieval,
    PairsFileReport,
)
from facemetric.eval.suite.embeddings import EvalResult, PairsInput, evaluate_embeddings
from facemetric.eval.suite.no_face import (
    check_policy,
    detection_records,
    no_face_photo,
    no_face_rule,
    protocol_crops,
    protocol_no_face,
    refuse_no_face,
    sort_failures,
)
from facemetric.eval.verification.files import read_pairs_csv
from facemetric.eval.verification.lfw_pairs import parse_pairs, resolve_pairs

log = logging.getLogger("facemetric")


class _Items:
    """Distinct image paths in first-seen order, with the identity and display name of each."""

    def __init__(self, root: Path | None) -> None:
        self.paths: list[Path] = []
        self.identities: list[str] = []
        self.index: dict[Path, int] = {}
        self.root = root

    def add(self, path: Path, identity: str) -> int:
        if path not in self.index:
            self.index[path] = len(self.paths)
            self.paths.append(path)
            self.identities.append(identity)
        return self.index[path]

    def display(self) -> list[str]:
        out = []
        for p in self.paths:
            try:
                out.append(p.relative_to(self.root).as_posix() if self.root else str(p))
            except ValueError:
                out.append(str(p))
        return out


def _require_files(located: list[tuple[int, Path]], source: Path) -> None:
    """Every (line, image) of a protocol CSV exists, or MissingImageError naming the first lines."""
    missing = [(line, p) for line, p in located if not p.is_file()]
    if missing:
        shown = "; ".join(f"line {line}: {p}" for line, p in missing[:5])
        raise MissingImageError(
            f"{len(missing)} image(s) named in {source} do not exist: {shown}. Relative paths "
            "are read from --data (default: the CSV's folder)"
        )


def _pairs_input(pairs_path: Path, images: Path | None, items: _Items) -> tuple[PairsInput, list[int]]:
    if pairs_path.suffix.lower() == ".csv":
        listed = read_pairs_csv(pairs_path, images)
        pairs = list(zip(listed.path1, listed.path2))
        same, fold, lines = listed.same, listed.fold, listed.lines
        names = [(a.parent.name, b.parent.name) for a, b in pairs]
        _require_files([(line, p) for line, pair in zip(lines, pairs) for p in pair], pairs_path)
    else:  # resolve_pairs has checked every image and names the lines of missing ones
        if images is None:
            raise EvaluationError(f"{pairs_path} is an LFW-format pairs file: give --data, the folder of its people")
        parsed = parse_pairs(pairs_path)
        pairs = resolve_pairs(parsed, images, pairs_path)
        same = np.array([int(p.same) for p in parsed], np.int8)
        fold = np.array([p.fold for p in parsed], np.int64) if parsed[0].fold is not None else None
        lines = [p.line for p in parsed]
        names = [(p.name1, p.name2) for p in parsed]
    i = np.array([items.add(a, n1) for (a, _), (n1, _) in zip(pairs, names)], np.int64)
    j = np.array([items.add(b, n2) for (_, b), (_, n2) in zip(pairs, names)], np.int64)
    return PairsInput(i, j, same, fold, f"pairs file {pairs_path}"), list(lines)


def _open_set_input(split_path: Path, images: Path | None, items: _Items) -> dict[int, str]:
    split = read_open_set_csv(split_path, images)
    _require_files([(k + 2, p) for k, p in enumerate(split.paths)], split_path)
    subset: dict[int, str] = {}
    for p, name, s in zip(split.paths, split.identities, split.subset):
        k = items.add(p, str(name))
        if subset.setdefault(k, str(s)) != s:
            raise EvaluationError(f"{split_path}: {p} is listed in two subsets ({subset[k]} and {s})")
    return subset


def _dataset(
    source: str | Path, embedder: Embedder, layout: str, progress: bool, policy: str = "fallback"
) -> tuple[Any, list[str], list[str], NoFaceRetrieval | None, list[dict] | None]:
    """Crops, display paths and identities of a dataset folder/CSV or a prepared cache, its photos
    without a face (None for a prepared cache: nothing is detected) and the detection records of the
    others. Unreadable files are left out with a warning; photos without a face follow ``policy``."""
    if is_prepared(source):
        spec = prepared_spec(source)
        if (spec.height, spec.width, spec.channels) != (
            embedder.spec.height,
            embedder.spec.width,
            embedder.spec.channels,
        ):
            raise EvaluationError(
                f"{source} holds {spec.height}x{spec.width}x{spec.channels} crops but the model takes "
                f"{embedder.spec.height}x{embedder.spec.width}x{embedder.spec.channels}: prepare it again with --size"
            )
        packed = load_prepared(source)
        return packed.images, list(packed.paths), [packed.identity_names[k] for k in packed.labels], None, None
    manifest = scan_source(source, layout)
    paths = list(manifest.paths)
    crops = embedder.crop_files(paths, progress)
    unreadable, no_face = sort_failures(paths, crops, embedder, policy == "fallback")
    if unreadable:
        k, reason = unreadable[0]
        log.warning(
            "%d image(s) of %s cannot be read and are left out, e.g. %s: %s", len(unreadable), source, paths[k], reason
        )
    if policy == "fail":
        refuse_no_face(no_face, paths, f"the retrieval dataset {source}")
    images: Any = crops.images
    kept = crops.index.tolist()
    added = [m for m in no_face if m.crop is not None]
    if added:  # fallback: the central crops join the detected faces, in the dataset's order
        kept = sorted(kept + [m.position for m in added])
        row = {k: r for r, k in enumerate(kept)}
        spec = embedder.spec
        images = np.zeros((len(kept), spec.height, spec.width, spec.channels), np.uint8)
        images[[row[k] for k in crops.index.tolist()]] = np.asarray(crops.images)
        for m in added:
            images[row[m.position]] = m.crop
    report = NoFaceRetrieval(
        n_photos=len(no_face),
        left_out=len(no_face) - len(added),
        photos=[no_face_photo(str(paths[m.position]), m) for m in no_face],
    )
    if no_face:
        log.warning(
            "%d photo(s) of the retrieval dataset %s have no detectable face (--no-face %s): %s",
            len(no_face),
            source,
            policy,
            "their central crops are used" if added else "left out",
        )
    records = detection_records(paths, crops)
    return images, [str(paths[k]) for k in kept], [manifest.identities[k] for k in kept], report, records


def evaluate_files(
    embedder: Embedder,
    *,
    pairs: str | Path | None = None,
    images: str | Path | None = None,
    open_set: str | Path | None = None,
    retrieval: str | Path | None = None,
    layout: str = "auto",
    far: float = 1e-2,
    flip: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    no_face: str = "fallback",
    pose: str = "auto",
) -> tuple[EvalResult, DataDescription]:
    """Evaluate ``embedder`` on the given protocol files; returns the result and a data description.

    ``pose`` says where each photo's yaw comes from for the verification by head pose
    (:func:`facemetric.eval.pose.photo_yaws`: ``auto``, ``names``, ``detector``, ``none``).

    ``no_face`` says what becomes of a photo in which the model's detector finds no face:
    ``fallback`` (the model's central crop is embedded instead), ``reject`` (turned away as a
    deployed system would: pairs scored as non-matches, probes rejected, gallery photos not
    enrolled, retrieval images left out) or ``fail`` (:class:`EvaluationError` naming them).
    ``result.summary.no_face`` lists the photos and pairs affected.
    """
    policy = check_policy(no_face)
    if pairs is None and open_set is None and retrieval is None:
        raise EvaluationError("nothing to evaluate: give a pairs file, an open-set split CSV or a retrieval dataset")
    root = Path(images) if images is not None else None
    items = _Items(root)
    data: DataDescription = {}
    # the split's images first: decisions.csv then lists the test probes in the split file's order
    subset_of = _open_set_input(Path(open_set), root, items) if open_set is not None else None
    pairs_input, lines = _pairs_input(Path(pairs), root, items) if pairs is not None else (None, [])
    result = EvalResult(summary=EvalSummary())
    report = NoFaceReport(policy=policy, rule=no_face_rule(policy, embedder.spec), n_photos=0, n_pairs=0)
    if items.paths:
        what = " and ".join(str(p) for p in (pairs, open_set) if p is not None)
        decoded, missing, records = protocol_crops(items.paths, embedder, progress, what, policy)
        turned_away = None
        if policy == "reject" and missing:
            turned_away = np.zeros(len(items.paths), bool)
            turned_away[[m.position for m in missing]] = True
            emb = np.zeros((len(items.paths), embedder.dim), np.float32)  # rows of photos turned away: unused
            if not turned_away.all():
                emb[~turned_away] = embedder.embed_crops(decoded[~turned_away], batch_size, flip, progress)
        else:
            emb = embedder.embed_crops(decoded, batch_size, flip, progress)
        subset = None
        if subset_of is not None:
            subset = np.array([subset_of.get(k, "") for k in range(len(items.paths))])
        display = items.display()
        result = evaluate_embeddings(
            emb,
            decoded,
            display,
            items.identities,
            pairs=pairs_input,
            open_set=subset,
            far=far,
            rejected=turned_away,
        )
        report = protocol_no_face(report, missing, display, items.identities, pairs_input, lines, result, subset)
        if pairs_input is not None and result.scores is not None:
            result.summary.pose = _pose(items.paths, records, pairs_input, result.scores, far, pose)
        if records:  # by the paths as the report shows them
            shown = dict(zip(map(str, items.paths), display))
            result.detections = [{**r, "path": shown.get(r["path"], r["path"])} for r in records]
        data.update(
            {
                "images": len(items.paths),
                **({"pairs": str(pairs)} if pairs else {}),
                **({"open_set": str(open_set)} if open_set else {}),
            }
        )
    if retrieval is not None:
        ret_images, ret_paths, ret_names, report.retrieval, ret_records = _dataset(
            retrieval, embedder, layout, progress, policy
        )
        if ret_records:
            result.detections = (result.detections or []) + ret_records
        ret_emb = embedder.embed_crops(ret_images, batch_size, flip, progress)
        ret = evaluate_embeddings(ret_emb, ret_images, ret_paths, ret_names, retrieval=True)
        result.summary.retrieval = ret.summary.retrieval
        result.embeddings = ret.embeddings  # the retrieval set: usually the widest view of the identities
        data.update({"retrieval": str(retrieval), "retrieval_images": len(ret_paths)})
    result.summary.no_face = report
    data["description"] = ", ".join(f"{k} {v}" for k, v in data.items())
    return result, data


def _pose(
    paths: list[Path],
    records: list[dict] | None,
    pairs: PairsInput,
    scores: dict[str, np.ndarray],
    far: float,
    source: str,
) -> PoseBreakdown | None:
    """Verification by the head's yaw at the threshold for ``far`` on all impostor pairs, or None when the photos'
    yaws are not known (``source``: :data:`facemetric.eval.pose.POSE_SOURCES`)."""
    found = photo_yaws(paths, records, source)
    if found is None:
        return None
    yaws, where = found
    s, same = scores["scores"], scores["same"]
    if not (same == 0).any():
        return None
    threshold = calibrate_threshold(s[same == 0], far).value
    rule = f"the threshold for FAR {far:g} on all the impostor pairs (the value to deploy)"
    known = int(np.sum(~np.isnan(yaws)))
    return pose_breakdown(
        s, same, yaws[pairs.i], yaws[pairs.j], threshold, rule, where, photos=len(paths), photos_with_yaw=known
    )


def evaluate_pairs_file(
    embedder: Embedder,
    pairs_path: str | Path,
    images_root: str | Path | None = None,
    flip: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    no_face: str = "fallback",
) -> PairsFileReport:
    """Accuracy (k-fold, thresholds chosen on the other folds), AUC, EER and TAR@FAR for a pairs file:
    the verification summary of :func:`evaluate_files` without its curve points, plus the pairs file,
    pair and image counts (what the demo prints) and, under ``no_face``, the policy and how many photos
    had no detectable face and how many pairs they affected."""
    result, data = evaluate_files(
        embedder,
        pairs=pairs_path,
        images=images_root,
        flip=flip,
        batch_size=batch_size,
        progress=progress,
        no_face=no_face,
    )
    assert result.summary.verification is not None and result.summary.no_face is not None
    missing = result.summary.no_face
    verification = result.summary.verification
    return PairsFileReport(
        **{name: value for name, value in verification if name != "curves"},  # the curve points left out
        pairs_file=str(pairs_path),
        num_pairs=verification.num_positive + verification.num_negative,
        num_images=int(data["images"]),
        flip=flip,
        no_face=NoFaceCounts(policy=missing.policy, photos=missing.n_photos, pairs=missing.n_pairs),
    )
