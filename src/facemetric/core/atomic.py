"""The one atomic writer: a reader (or a crash) sees a file's old contents or its new ones, never half.

Every file a run, an evaluation, a prepared cache or a gallery leaves is written through here:
the data go to a temporary file beside the target, which is then renamed over it (a rename
within one folder is atomic on POSIX and Windows). :func:`atomic_path` serves writers that need
a file name (``torch.save``, ``np.save``, ``onnx.save``); :func:`write_atomic` takes bytes or
text; :func:`write_json`, :func:`write_csv` and :func:`write_npz` are the formats used most.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


@contextmanager
def atomic_path(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename it over ``path``.

    The parent folder is created. ``fsync`` flushes the file to disk before the rename, for
    records that must survive a power cut (checkpoints, the gallery). The temporary file is
    removed if anything fails, so an interrupted write leaves no debris.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # only there when writing failed


def write_atomic(path: str | Path, data: bytes | str, fsync: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns ``path``."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, fsync) as tmp, open(tmp, "xb") as f:  # not mkstemp: its 0600 mode makes files private
        f.write(payload)
    return Path(path)


def write_json(path: str | Path, value: Any, fsync: bool = False) -> Path:
    """``value`` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(value, indent=1) + "\n", fsync)


def write_npz(path: str | Path, arrays: dict[str, Any], compressed: bool = False) -> Path:
    """Arrays as an ``.npz`` file, atomically (``np.savez`` would leave half a file on a crash)."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return write_atomic(path, buf.getvalue())


def write_csv(path: str | Path, header: list[str], rows: Iterable[Iterable[Any]], lineterminator: str = "\n") -> Path:
    """A header and rows as CSV (the csv module's quoting), atomically."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    return write_atomic(path, buf.getvalue())


@contextmanager
def made_for_good(folder: str | Path) -> Iterator[Path]:
    """``folder`` made (with its missing parents) for what the block writes; when the block fails, the folders
    this call made are removed again with what the block wrote into them: a refused command leaves no half-made
    folder behind. A folder that existed before is never removed."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)  # the outermost folder this call made
        raise
