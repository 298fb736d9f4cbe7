"""Reading an evaluation folder back for its report: ``eval.json`` validated against its typed document, and
the ``.npz`` arrays, with errors that name the file and the field and say how to rewrite the folder."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from facemetric.core.errors import FacemetricError
from facemetric.eval.suite.document import EVAL_FORMAT, EvalDocument

MAX_PROBLEMS = 5  # validation problems listed in one ReportError


class ReportError(FacemetricError, ValueError):
    """The folder is not a readable facemetric evaluation folder; the message says which file and what to do."""


def _field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path: ``('verification', 'per_fold', 3)`` -> ``verification.per_fold[3]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the document)"


def validation_problem(error: Any) -> str:
    """One validation problem: the field and what is wrong with it."""
    where = _field_path(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field (renamed or misspelt?)"
    if error["type"] == "missing":
        return f"{where}: missing"
    got = repr(error.get("input"))
    return f"{where}: {error['msg']} (got {got[:60] + '...' if len(got) > 60 else got})"


def load_eval(eval_dir: Path) -> EvalDocument:
    """``eval.json`` of ``eval_dir``, checked to be a facemetric-eval/1 document and validated."""
    path = eval_dir / "eval.json"
    if not path.is_file():
        raise ReportError(
            f"{path} not found: {eval_dir} is not a facemetric evaluation folder. Run "
            "`facemetric eval ... --out DIR` and pass DIR."
        )
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(
            f"{path} cannot be read as JSON ({e}); re-run `facemetric eval --out DIR` to rewrite it"
        ) from e
    found = raw.get("format") if isinstance(raw, dict) else f"a JSON {type(raw).__name__}"
    if found != EVAL_FORMAT:
        raise ReportError(
            f"{path} has format {found!r}, expected {EVAL_FORMAT!r}: only folders written by "
            "`facemetric eval --out DIR` can be rendered"
        )
    try:
        return EvalDocument.model_validate_json(text)
    except ValidationError as e:
        errors = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")  # renames first
        problems = [validation_problem(err) for err in errors]
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise ReportError(
            f"{path} does not match the {EVAL_FORMAT} results this version reads: "
            f"{'; '.join(problems[:MAX_PROBLEMS])}{more}. Re-run `facemetric eval --out DIR` to rewrite it"
        ) from None


def load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of ``path`` (all of the same length), or None when the file is absent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ReportError(f"{path} cannot be read as an .npz file ({e}); re-run `facemetric eval --out DIR`") from e
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ReportError(
            f"{path} lacks the arrays {missing} (it holds {sorted(arrays)}); it was not written by this "
            "version of `facemetric eval`: re-run it to rewrite the folder"
        )
    lengths = {k: len(arrays[k]) for k in keys if arrays[k].ndim}
    if len(set(lengths.values())) != 1 or len(lengths) != len(keys):
        raise ReportError(f"{path}: the arrays {keys} must be 1-D or more and of one length, got lengths {lengths}")
    return {k: arrays[k] for k in keys}
