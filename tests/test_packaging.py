"""The built wheel is the library and nothing else: no benchmark scripts, no tests, its data files present."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file list of a wheel built from a copy of the project (the checkout itself is left untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    project = work / "project"
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = work.glob("facemetric-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_no_benchmark_or_test_code(wheel_files: list[str]) -> None:
    modules = [f for f in wheel_files if f.endswith(".py")]
    assert "facemetric/cli/__init__.py" in modules and "facemetric/core/registry.py" in modules
    assert not [f for f in wheel_files if f.startswith(("benchmarks/", "tests/")) or "/bench/" in f]
    # everything in the wheel is the package (plus its metadata)
    assert {f.split("/")[0] for f in wheel_files} == {
        "facemetric",
        next(f for f in wheel_files if ".dist-info/" in f).split("/")[0],
    }


def test_wheel_carries_its_data_files(wheel_files: list[str]) -> None:
    assert "facemetric/serve/page.html" in wheel_files
    assert any(f.startswith("facemetric/report/templates/") and f.endswith(".j2") for f in wheel_files)
