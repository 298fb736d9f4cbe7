"""From files to an evaluation: pairs files, open-set split CSVs, datasets, or a training run.

* :func:`evaluate_files` (``facemetric eval``): any of an LFW pairs file or pairs CSV, an
  open-set split CSV and a dataset for retrieval; every image is checked before any work and
  each distinct image is decoded and embedded once.
* :func:`evaluate_run` (``facemetric report RUN``): the run's held-out identities, with an
  identity-disjoint pair protocol, an open-set split and retrieval built on them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.core.embedder import Embedder
from facemetric.core.errors import FacemetricError
from facemetric.core.results import EvalSummary
from facemetric.data.prepared import is_prepared, load_prepared, prepared_spec
from facemetric.data.sources import scan_source
from facemetric.eval.lfw_pairs import MissingImageError, parse_pairs, resolve_pairs
from facemetric.eval.protocol_files import read_open_set_csv, read_pairs_csv
from facemetric.eval.protocols import build_open_set_split, held_out_pair_protocol
from facemetric.eval.suite import EvalResult, PairsInput, evaluate_embeddings

log = logging.getLogger("facemetric")


class EvaluationError(FacemetricError, RuntimeError):
    """The protocol cannot be evaluated as asked (e.g. an image it needs is unreadable)."""


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


def _pairs_input(pairs_path: Path, images: Path | None, items: _Items) -> PairsInput:
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
    return PairsInput(i, j, same, fold, f"pairs file {pairs_path}")


def _open_set_input(split_path: Path, images: Path | None, items: _Items) -> dict[int, str]:
    listed = read_open_set_csv(split_path, images)
    _require_files([(k + 2, p) for k, p in enumerate(listed.paths)], split_path)
    subset: dict[int, str] = {}
    for p, name, s in zip(listed.paths, listed.identities, listed.subset):
        k = items.add(p, str(name))
        if subset.setdefault(k, str(s)) != s:
            raise EvaluationError(f"{split_path}: {p} is listed in two subsets ({subset[k]} and {s})")
    return subset


def _crops(paths: list[Path], embedder: Embedder, progress: bool, what: str) -> Any:
    """Every image cut as ``embedder`` expects; any image without a crop fails the evaluation."""
    crops = embedder.crop_files(paths, progress)
    if crops.failures:
        details = "; ".join(f"{paths[k]}: {reason}" for k, reason in crops.failures[:5])
        raise EvaluationError(f"{len(crops.failures)} image(s) named in {what} cannot be used: {details}")
    return crops.images


def _dataset(source: str | Path, embedder: Embedder, layout: str, progress: bool) -> tuple[Any, list[str], list[str]]:
    """Crops, display paths and identities of a dataset folder/CSV or a prepared cache."""
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
        return packed.images, list(packed.paths), [packed.identity_names[k] for k in packed.labels]
    manifest = scan_source(source, layout)
    crops = embedder.crop_files(manifest.paths, progress)
    if crops.failures:
        k, reason = crops.failures[0]
        log.warning(
            "%d image(s) of %s cannot be used and are left out, e.g. %s: %s",
            len(crops.failures),
            source,
            manifest.paths[k],
            reason,
        )
    kept = crops.index.tolist()
    return crops.images, [str(manifest.paths[k]) for k in kept], [manifest.identities[k] for k in kept]


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
) -> tuple[EvalResult, dict[str, Any]]:
    """Evaluate ``embedder`` on the given protocol files; returns the result and a data description."""
    if pairs is None and open_set is None and retrieval is None:
        raise EvaluationError("nothing to evaluate: give a pairs file, an open-set split CSV or a retrieval dataset")
    root = Path(images) if images is not None else None
    items = _Items(root)
    data: dict[str, Any] = {}
    # the split's images first: decisions.csv then lists the test probes in the split file's order
    subset_of = _open_set_input(Path(open_set), root, items) if open_set is not None else None
    pairs_input = _pairs_input(Path(pairs), root, items) if pairs is not None else None
    result = EvalResult(summary=EvalSummary())
    if items.paths:
        what = " and ".join(str(p) for p in (pairs, open_set) if p is not None)
        decoded = _crops(items.paths, embedder, progress, what)
        emb = embedder.embed_crops(decoded, batch_size, flip, progress)
        subset = None
        if subset_of is not None:
            subset = np.array([subset_of.get(k, "") for k in range(len(items.paths))])
        result = evaluate_embeddings(
            emb, decoded, items.display(), items.identities, pairs=pairs_input, open_set=subset, far=far
        )
        data.update(
            {
                "images": len(items.paths),
                **({"pairs": str(pairs)} if pairs else {}),
                **({"open_set": str(open_set)} if open_set else {}),
            }
        )
    if retrieval is not None:
        ret_images, ret_paths, ret_names = _dataset(retrieval, embedder, layout, progress)
        ret_emb = embedder.embed_crops(ret_images, batch_size, flip, progress)
        ret = evaluate_embeddings(ret_emb, ret_images, ret_paths, ret_names, retrieval=True)
        result.summary.retrieval = ret.summary.retrieval
        result.embeddings = ret.embeddings  # the retrieval set: usually the widest view of the identities
        data.update({"retrieval": str(retrieval), "retrieval_images": len(ret_paths)})
    data["description"] = ", ".join(f"{k} {v}" for k, v in data.items())
    return result, data


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
) -> dict[str, Any]:
    """Accuracy (k-fold, thresholds chosen on the other folds), AUC, EER and TAR@FAR for a pairs file:
    the verification summary of :func:`evaluate_files` without its curve points, plus the pairs file,
    pair and image counts (what the demo and ``bench.verification`` print)."""
    result, data = evaluate_files(
        embedder, pairs=pairs_path, images=images_root, flip=flip, batch_size=batch_size, progress=progress
    )
    assert result.summary.verification is not None
    report = result.summary.verification.model_dump(exclude={"curves"})
    report.update(
        pairs_file=str(pairs_path),
        num_pairs=report["num_positive"] + report["num_negative"],
        num_images=data["images"],
        flip=flip,
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
