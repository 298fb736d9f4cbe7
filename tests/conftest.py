"""Shared fixtures: the real datasets beside the repo, and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# the PostgreSQL server, a database per test and the gallery locations of both stores (tests/pg_fixtures.py)
pytest_plugins = ["pg_fixtures"]

# ../shared/data beside the repository, or wherever FACEMETRIC_SHARED_DATA points
SHARED_DATA = Path(os.environ.get("FACEMETRIC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Converted model weights go to a folder of this test session, not the user's ~/.cache."""
    if "FACEMETRIC_CACHE" not in os.environ:
        os.environ["FACEMETRIC_CACHE"] = str(tmp_path_factory.mktemp("facemetric-cache"))
        yield
        del os.environ["FACEMETRIC_CACHE"]
    else:
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (LFW dev-train, CelebA-199, ORL, Yale); tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synthetic_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic folder-per-identity dataset: 12 identities x 6 images, 48 px."""
    from facemetric.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("faces") / "data", 12, 6, size=48, seed=3, progress=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(synthetic_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint trained for one epoch on :func:`synthetic_faces` (48 px iresnet_tiny): a real, fast model."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("tiny") / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "facemetric",
            "-q",
            "train",
            "--data",
            str(synthetic_faces),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--set",
            "data.image_size=[48, 48]",
            "--set",
            "data.val_identities=4",
            "--set",
            "data.cache_dir=null",
            "--set",
            "sampler.p=4",
            "--set",
            "train.progress=false",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "last.pt"
