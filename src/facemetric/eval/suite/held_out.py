"""A training run evaluated on its own held-out identities (``facemetric report RUN``).

:func:`evaluate_run` embeds the run's held-out people with its checkpoint and evaluates them with an
identity-disjoint pair protocol (the pairs training validated on), an open-set split and retrieval;
:func:`evaluate_run_to_folder` writes that to ``RUN/eval``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from facemetric.eval.errors import EvaluationError
from facemetric.eval.identification.protocol import build_open_set_split
from facemetric.eval.suite.document import DataDescription
from facemetric.eval.suite.embeddings import EvalResult, PairsInput, evaluate_embeddings
from facemetric.eval.suite.folder import write_eval_dir
from facemetric.eval.verification.protocol import held_out_pair_protocol

log = logging.getLogger("facemetric")


def run_dir_of(model: str | Path) -> str | None:
    """The training run folder a checkpoint sits in (it has config.yaml and metrics.jsonl), if any."""
    folder = Path(model).resolve().parent
    return str(folder) if (folder / "metrics.jsonl").is_file() else None


def evaluate_run(
    run_dir: str | Path,
    checkpoint: str | Path | None = None,
    far: float = 1e-2,
    progress: bool = True,
    batch_size: int = 256,
) -> tuple[EvalResult, DataDescription, Path]:
    """Evaluate a run's checkpoint on its held-out identities (the run's own data split).

    The pairs are the ones training validated on (:func:`~facemetric.eval.verification.protocol.held_out_pair_protocol`:
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
    embedder = ModelEmbedder.from_checkpoint(ckpt)  # a bad checkpoint is refused before the photos are decoded
    cfg = load_config(run / "config.yaml")
    val = load_dataset(cfg.data, progress).val
    if val is None or len(val.identity_names) < 4:
        raise EvaluationError(
            f"{run} holds out {0 if val is None else len(val.identity_names)} identities (data.val_identities); a "
            "report needs at least 4. Evaluate on your own protocol instead: facemetric eval --out DIR ..."
        )
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
    data: DataDescription = {
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
