"""From files to an evaluation: pairs files, open-set split CSVs, datasets, or a training run.

* :func:`evaluate_files` (``facemetric eval``): any of an LFW pairs file or pairs CSV, an
  open-set split CSV and a dataset for retrieval; every image is checked before any work and
  each distinct image is decoded and embedded once.
* :func:`evaluate_run` (``facemetric report RUN``): the run's held-out identities, with an
  identity-disjoint pair protocol, an open-set split and retrieval built on them.

Photos in which the model's detector finds no face follow a stated policy (``no_face``,
``facemetric eval --no-face``), never an accident of the data: ``fallback`` (default) embeds the
central crop of the model's :class:`~facemetric.core.spec.ImageSpec` (what the model sees without
detection), ``reject`` turns them away as a deployed system would (see
:func:`facemetric.eval.suite.evaluate_embeddings`), ``fail`` stops the evaluation naming them.
Unreadable files are never "without a face": they stop the evaluation under every policy. The
photos and pairs affected are recorded in the results (``no_face``,
:class:`~facemetric.core.results.NoFaceReport`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.embedder import Embedder, FaceCrops
from facemetric.core.errors import FacemetricError
from facemetric.core.faces import Detection
from facemetric.core.results import (
    EvalSummary,
    NoFacePair,
    NoFacePhoto,
    NoFacePolicy,
    NoFaceReport,
    NoFaceRetrieval,
)
from facemetric.core.spec import ImageSpec
from facemetric.data.images import ImageDecodeError, open_image, resize_crop
from facemetric.data.prepared import is_prepared, load_prepared, prepared_spec
from facemetric.data.sources import scan_source
from facemetric.eval.lfw_pairs import MissingImageError, parse_pairs, resolve_pairs
from facemetric.eval.protocol_files import read_open_set_csv, read_pairs_csv
from facemetric.eval.protocols import build_open_set_split, held_out_pair_protocol
from facemetric.eval.suite import REJECTED_SCORE, EvalResult, PairsInput, evaluate_embeddings

log = logging.getLogger("facemetric")

NO_FACE_POLICIES: tuple[NoFacePolicy, ...] = ("fallback", "reject", "fail")


class EvaluationError(FacemetricError, RuntimeError):
    """The protocol cannot be evaluated as asked (e.g. an image it needs is unreadable)."""


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
            "are read from --images (default: the CSV's folder)"
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
            raise EvaluationError(f"{pairs_path} is an LFW-format pairs file: give --images, the folder of its people")
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
    listed = read_open_set_csv(split_path, images)
    _require_files([(k + 2, p) for k, p in enumerate(listed.paths)], split_path)
    subset: dict[int, str] = {}
    for p, name, s in zip(listed.paths, listed.identities, listed.subset):
        k = items.add(p, str(name))
        if subset.setdefault(k, str(s)) != s:
            raise EvaluationError(f"{split_path}: {p} is listed in two subsets ({subset[k]} and {s})")
    return subset


def _check_policy(no_face: str) -> NoFacePolicy:
    for policy in NO_FACE_POLICIES:
        if no_face == policy:
            return policy
    raise EvaluationError(f"no_face must be one of {', '.join(NO_FACE_POLICIES)}, got {no_face!r}")


@dataclass
class _NoFace:
    """A readable photo in which the embedder found no face."""

    position: int  # in the list of paths given to crop_files
    reason: str
    detection: Detection
    crop: np.ndarray | None  # the spec's central crop (fallback policy)


def _backend(embedder: Embedder) -> str:
    """The name of the embedder's face detector (its aligner's, else its spec's ``align``)."""
    return str(getattr(getattr(embedder, "aligner", None), "name", None) or embedder.spec.align)


def _sort_failures(
    paths: list[Path], crops: FaceCrops, embedder: Embedder, fallback: bool
) -> tuple[list[tuple[int, str]], list[_NoFace]]:
    """The photos ``crop_files`` left out, as (unreadable files, readable photos without a face).

    A file that decodes is a photo in which no face was found; with ``fallback`` its crop is the
    spec's central crop, as :class:`~facemetric.embedders.base.CropEmbedder` cuts a photo without a detector.
    """
    unreadable: list[tuple[int, str]] = []
    no_face: list[_NoFace] = []
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
            no_face.append(_NoFace(k, reason, Detection(f"{backend}/fallback", False, image_size=size), crop))
        else:
            no_face.append(_NoFace(k, reason, Detection(backend, False, image_size=size), None))
    return unreadable, no_face


def _listed(entries: list[tuple[Path | str, str]]) -> str:
    shown = "; ".join(f"{path}: {reason}" for path, reason in entries[:5])
    return shown + (f"; and {len(entries) - 5} more" if len(entries) > 5 else "")


def _refuse_no_face(no_face: list[_NoFace], paths: list[Path], what: str) -> None:
    if no_face:
        raise EvaluationError(
            f"{len(no_face)} photo(s) named in {what} have no detectable face (--no-face fail): "
            f"{_listed([(paths[m.position], m.reason) for m in no_face])}. Give --no-face fallback (the model's "
            "central crop) or --no-face reject (turned away: non-matches, rejected probes) to evaluate anyway"
        )


def _crops(paths: list[Path], embedder: Embedder, progress: bool, what: str, policy: str) -> tuple[Any, list[_NoFace]]:
    """One crop per image, cut as ``embedder`` expects, and the photos without a face.

    An unreadable image fails the evaluation; a photo without a face follows ``policy``: its crop is
    the spec's central crop (fallback) or zeros, never embedded (reject), or the evaluation stops (fail).
    """
    crops = embedder.crop_files(paths, progress)
    if not crops.failures:
        return crops.images, []
    unreadable, no_face = _sort_failures(paths, crops, embedder, policy == "fallback")
    if unreadable:
        raise EvaluationError(
            f"{len(unreadable)} image(s) named in {what} cannot be read: "
            f"{_listed([(paths[k], reason) for k, reason in unreadable])}. These are not photos without a face "
            "(--no-face does not apply): replace or remove them"
        )
    if policy == "fail":
        _refuse_no_face(no_face, paths, what)
    spec = embedder.spec
    images = np.zeros((len(paths), spec.height, spec.width, spec.channels), np.uint8)
    images[crops.index] = np.asarray(crops.images)
    for m in no_face:
        if m.crop is not None:
            images[m.position] = m.crop
    return images, no_face


def _no_face_photo(path: str, m: _NoFace, subset: str | None = None) -> NoFacePhoto:
    return NoFacePhoto(path=path, reason=m.reason, detection=m.detection, subset=subset or None)


def _dataset(
    source: str | Path, embedder: Embedder, layout: str, progress: bool, policy: str = "fallback"
) -> tuple[Any, list[str], list[str], NoFaceRetrieval | None]:
    """Crops, display paths and identities of a dataset folder/CSV or a prepared cache, and its photos
    without a face (None for a prepared cache: nothing is detected). Unreadable files are left out with
    a warning; photos without a face follow ``policy``."""
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
        return packed.images, list(packed.paths), [packed.identity_names[k] for k in packed.labels], None
    manifest = scan_source(source, layout)
    paths = list(manifest.paths)
    crops = embedder.crop_files(paths, progress)
    unreadable, no_face = _sort_failures(paths, crops, embedder, policy == "fallback")
    if unreadable:
        k, reason = unreadable[0]
        log.warning(
            "%d image(s) of %s cannot be read and are left out, e.g. %s: %s", len(unreadable), source, paths[k], reason
        )
    if policy == "fail":
        _refuse_no_face(no_face, paths, f"the retrieval dataset {source}")
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
        photos=[_no_face_photo(str(paths[m.position]), m) for m in no_face],
    )
    if no_face:
        log.warning(
            "%d photo(s) of the retrieval dataset %s have no detectable face (--no-face %s): %s",
            len(no_face),
            source,
            policy,
            "their central crops are used" if added else "left out",
        )
    return images, [str(paths[k]) for k in kept], [manifest.identities[k] for k in kept], report


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
) -> tuple[EvalResult, dict[str, Any]]:
    """Evaluate ``embedder`` on the given protocol files; returns the result and a data description.

    ``no_face`` says what becomes of a photo in which the model's detector finds no face:
    ``fallback`` (the model's central crop is embedded instead), ``reject`` (turned away as a
    deployed system would: pairs scored as non-matches, probes rejected, gallery photos not
    enrolled, retrieval images left out) or ``fail`` (:class:`EvaluationError` naming them).
    ``result.summary.no_face`` lists the photos and pairs affected.
    """
    policy = _check_policy(no_face)
    if pairs is None and open_set is None and retrieval is None:
        raise EvaluationError("nothing to evaluate: give a pairs file, an open-set split CSV or a retrieval dataset")
    root = Path(images) if images is not None else None
    items = _Items(root)
    data: dict[str, Any] = {}
    # the split's images first: decisions.csv then lists the test probes in the split file's order
    subset_of = _open_set_input(Path(open_set), root, items) if open_set is not None else None
    pairs_input, lines = _pairs_input(Path(pairs), root, items) if pairs is not None else (None, [])
    result = EvalResult(summary=EvalSummary())
    report = NoFaceReport(policy=policy, rule=no_face_rule(policy, embedder.spec), n_photos=0, n_pairs=0)
    if items.paths:
        what = " and ".join(str(p) for p in (pairs, open_set) if p is not None)
        decoded, missing = _crops(items.paths, embedder, progress, what, policy)
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
        report = _protocol_no_face(report, missing, display, items.identities, pairs_input, lines, result, subset)
        data.update(
            {
                "images": len(items.paths),
                **({"pairs": str(pairs)} if pairs else {}),
                **({"open_set": str(open_set)} if open_set else {}),
            }
        )
    if retrieval is not None:
        ret_images, ret_paths, ret_names, report.retrieval = _dataset(retrieval, embedder, layout, progress, policy)
        ret_emb = embedder.embed_crops(ret_images, batch_size, flip, progress)
        ret = evaluate_embeddings(ret_emb, ret_images, ret_paths, ret_names, retrieval=True)
        result.summary.retrieval = ret.summary.retrieval
        result.embeddings = ret.embeddings  # the retrieval set: usually the widest view of the identities
        data.update({"retrieval": str(retrieval), "retrieval_images": len(ret_paths)})
    result.summary.no_face = report
    data["description"] = ", ".join(f"{k} {v}" for k, v in data.items())
    return result, data


def _protocol_no_face(
    report: NoFaceReport,
    missing: list[_NoFace],
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
    report.photos = [_no_face_photo(display[m.position], m, role(m.position)) for m in missing]
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
    log.warning("%s: %s", report.summary(), _listed([(p.path, p.reason) for p in report.photos]))
    return report


def run_dir_of(model: str | Path) -> str | None:
    """The training run folder a checkpoint sits in (it has config.yaml and metrics.jsonl), if any."""
    folder = Path(model).resolve().parent
    return str(folder) if (folder / "metrics.jsonl").is_file() else None


def evaluate_pairs_file(
    embedder: Embedder,
    pairs_path: str | Path,
    images_root: str | Path | None = None,
    flip: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    no_face: str = "fallback",
) -> dict[str, Any]:
    """Accuracy (k-fold, thresholds chosen on the other folds), AUC, EER and TAR@FAR for a pairs file:
    the verification summary of :func:`evaluate_files` without its curve points, plus the pairs file,
    pair and image counts (what the demo and ``bench.verification`` print) and, under ``no_face``,
    the policy and how many photos had no detectable face and how many pairs they affected."""
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
    report = result.summary.verification.model_dump(exclude={"curves"})
    report.update(
        pairs_file=str(pairs_path),
        num_pairs=report["num_positive"] + report["num_negative"],
        num_images=data["images"],
        flip=flip,
        no_face={"policy": missing.policy, "photos": missing.n_photos, "pairs": missing.n_pairs},
    )
    return report


def evaluate_run(
    run_dir: str | Path,
    checkpoint: str | Path | None = None,
    far: float = 1e-2,
    progress: bool = True,
    batch_size: int = 256,
) -> tuple[EvalResult, dict[str, Any], Path]:
    """Evaluate a run's checkpoint on its held-out identities (the run's own data split).

    The pairs are the ones training validated on (:func:`~facemetric.eval.protocols.held_out_pair_protocol`:
    identity-disjoint folds, ``data.val_pairs`` genuine pairs in all), plus an open-set split (30%
    of the held-out people unknown) and retrieval over them. Returns the result, a data
    description and the checkpoint used.
    """
    from facemetric.core.config import load_config
    from facemetric.data.dataset import load_dataset
    from facemetric.embedders.torch_model import ModelEmbedder

    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise EvaluationError(
            f"{run} is not a training run folder (no config.yaml); give the --out of facemetric train"
        )
    ckpt = (
        Path(checkpoint) if checkpoint else next((run / n for n in ("best.pt", "last.pt") if (run / n).is_file()), None)
    )
    if ckpt is None:
        raise EvaluationError(f"{run} has no best.pt or last.pt checkpoint yet; train first")
    cfg = load_config(run / "config.yaml")
    val = load_dataset(cfg.data, progress).val
    if val is None or len(val.identity_names) < 4:
        raise EvaluationError(
            f"{run} holds out {0 if val is None else len(val.identity_names)} identities (data.val_identities); a "
            "report needs at least 4. Evaluate on your own protocol instead: facemetric eval --out DIR ..."
        )
    embedder = ModelEmbedder.from_checkpoint(ckpt)
    emb = embedder.embed_crops(val.images, batch_size, False, progress)
    names = np.array([val.identity_names[k] for k in val.labels])
    notes: list[str] = []
    protocol = held_out_pair_protocol(names, cfg.data.val_pairs, seed=cfg.data.split_seed)
    pairs = PairsInput(
        protocol.i,
        protocol.j,
        protocol.same,
        protocol.fold,
        f"{len(protocol)} pairs over the run's held-out identities, {protocol.n_folds} "
        "identity-disjoint folds (the pairs validation used during training)",
    )
    try:
        split = build_open_set_split(names, 0.3, 1, seed=cfg.data.split_seed).subset
    except ValueError as exc:
        split, note = None, f"no open-set evaluation: {exc}"
        notes.append(note)
        log.warning(note)
    result = evaluate_embeddings(
        emb, val.images, list(val.paths), names.tolist(), pairs=pairs, open_set=split, retrieval=True, far=far
    )
    result.notes += notes
    data = {
        "description": f"{cfg.data.source}: {len(val.identity_names)} held-out identities, {len(val)} images "
        f"(data.split_seed {cfg.data.split_seed})",
        "source": str(cfg.data.source),
        "images": len(val),
        "identities": len(val.identity_names),
    }
    return result, data, ckpt


def evaluate_run_to_folder(
    run_dir: str | Path, checkpoint: str | Path | None = None, far: float = 1e-2, progress: bool = True
) -> Path:
    """:func:`evaluate_run` written to ``RUN/eval`` (what ``facemetric report RUN`` renders); returns that folder."""
    from facemetric.eval.evaldir import write_eval_dir

    run = Path(run_dir)
    result, data, used = evaluate_run(run, checkpoint, far, progress)
    assert result.embeddings is not None  # evaluate_run always samples the embeddings
    meta = {
        "checkpoint": str(used),
        "run_dir": str(run.resolve()),
        "flip": False,
        "data": data,
        "embedding_dim": int(result.embeddings["embeddings"].shape[1]),
    }
    return write_eval_dir(run / "eval", result, meta)
