"""The pretrained dlib-resnet is a model like any other: `eval` runs pairs, open-set and retrieval protocols on it,
and `embed`, `gallery` and `serve` take it by the same --model argument (also spelt --checkpoint / --embedder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("dlib")
pytestmark = pytest.mark.slow

PEOPLE, SHOTS = 12, 5


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facemetric", "-q", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def photos(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 ORL people x 5 photos, as a folder per person (links to the real files)."""
    from facemetric.core.errors import MissingDependencyError
    from facemetric.data.align.dlib import dlib_model_dir

    try:
        dlib_model_dir()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("orl") / "photos"
    for person in range(1, PEOPLE + 1):
        (root / f"s{person}").mkdir(parents=True)
        for shot in range(1, SHOTS + 1):
            (root / f"s{person}" / f"{shot}.pgm").symlink_to(shared_data / "orl" / f"s{person}" / f"{shot}.pgm")
    return root


def test_eval_runs_every_protocol_on_the_pretrained_model(photos: Path, tmp_path: Path) -> None:
    pairs, split = tmp_path / "pairs.csv", tmp_path / "split.csv"
    assert (
        _cli(
            "protocol", "pairs", "--data", str(photos), "-o", str(pairs), "--folds", "4", "--pairs-per-fold", "20"
        ).returncode
        == 0
    )
    assert _cli("protocol", "open-set", "--data", str(photos), "-o", str(split)).returncode == 0
    done = _cli(
        "eval",
        "--model",
        "dlib-resnet",
        "--pairs",
        str(pairs),
        "--open-set",
        str(split),
        "--retrieval",
        "--data",
        str(photos),
        "--out",
        str(tmp_path / "eval"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["checkpoint"] == "dlib-resnet" and summary["embedding_dim"] == 128
    assert summary["verification"]["accuracy"] >= 0.9  # ORL is easy for the pretrained network
    assert summary["identification"]["closed_set"]["rank1"] >= 0.9
    assert summary["retrieval"]["precision_at_1"] >= 0.9
    crops = np.load(tmp_path / "eval" / "errors.npz")["image1"]
    assert crops.shape[1:] == (150, 150, 3) or len(crops) == 0  # dlib's face chips, as the network saw them
    report = _cli("report", str(tmp_path / "eval"))
    assert report.returncode == 0 and (tmp_path / "eval" / "report.html").is_file()


def test_embed_gallery_and_serve_take_the_same_argument(photos: Path, tmp_path: Path) -> None:
    from servers import start_server, stop_server

    embedded = _cli("embed", "--model", "dlib-resnet", "--data", str(photos), "-o", str(tmp_path / "e.npz"))
    assert embedded.returncode == 0, embedded.stderr[-3000:]
    data = np.load(tmp_path / "e.npz")
    assert data["embeddings"].shape == (PEOPLE * SHOTS, 128)

    gallery = tmp_path / "gallery"
    assert _cli("gallery", "--gallery", str(gallery), "init", "--model", "dlib-resnet").returncode == 0
    imported = _cli("gallery", "--gallery", str(gallery), "import", "--data", str(photos), "--per-person", "1")
    assert imported.returncode == 0, imported.stderr[-3000:]
    same = _cli(
        "gallery", "--gallery", str(gallery), "--model", "dlib-resnet", "identify", str(photos / "s3" / "4.pgm")
    )
    assert same.returncode == 0 and json.loads(same.stdout)["candidates"][0]["name"] == "s3"
    other = _cli("gallery", "--gallery", str(gallery), "--model", "dlib-resnet?upsample=0", "list")
    assert other.returncode == 2 and "Scores across models mean nothing" in other.stderr  # another model: refused

    proc, url = start_server(tmp_path / "served", "--model", "dlib-resnet")  # a new gallery for this model
    try:
        assert httpx.get(f"{url}/api/identities").json() == []
        with open(photos / "s5" / "1.pgm", "rb") as f:
            answer = httpx.post(f"{url}/api/enroll", data={"name": "s5"}, files={"files": ("1.pgm", f.read())})
        assert answer.status_code == 200, answer.text
    finally:
        stop_server(proc)


def test_onnx_export_and_torch_port_give_the_same_metrics(photos: Path, tmp_path: Path) -> None:
    """`facemetric export --model dlib-resnet` writes the port to ONNX; `eval` of the file and of the port in torch
    agree."""
    pairs = tmp_path / "pairs.csv"
    assert (
        _cli(
            "protocol", "pairs", "--data", str(photos), "-o", str(pairs), "--folds", "2", "--pairs-per-fold", "15"
        ).returncode
        == 0
    )
    onnx_file = tmp_path / "dlib-resnet.onnx"
    exported = _cli("export", "--model", "dlib-resnet", "-o", str(onnx_file), "--legacy-exporter")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert json.loads(exported.stdout)["max_abs_diff"] < 1e-4
    summaries = {}
    for label, model in (("torch", "dlib-resnet?backend=torch"), ("onnx", str(onnx_file))):
        done = _cli(
            "eval", "--model", model, "--pairs", str(pairs), "--data", str(photos), "--out", str(tmp_path / label)
        )
        assert done.returncode == 0, done.stderr[-3000:]
        summaries[label] = json.loads(done.stdout)["verification"]
    for key in ("accuracy", "auc", "eer"):
        assert summaries["onnx"][key] == pytest.approx(summaries["torch"][key], abs=1e-6), key


def test_gallery_enrolled_with_dlibs_own_network_works_with_the_port(photos: Path, tmp_path: Path) -> None:
    """Galleries made before the port (dlib's C++ network) keep working: the port gives the same vectors."""
    gallery = tmp_path / "gallery"
    assert _cli("gallery", "--gallery", str(gallery), "init", "--model", "dlib-resnet?backend=dlib").returncode == 0
    imported = _cli(
        "gallery",
        "--gallery",
        str(gallery),
        "--model",
        "dlib-resnet?backend=dlib",
        "import",
        "--data",
        str(photos),
        "--per-person",
        "1",
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    for person in (2, 7, 11):
        found = _cli(
            "gallery",
            "--gallery",
            str(gallery),
            "--model",
            "dlib-resnet",
            "identify",
            str(photos / f"s{person}" / "3.pgm"),
        )
        assert found.returncode == 0, found.stderr[-3000:]
        assert json.loads(found.stdout)["candidates"][0]["name"] == f"s{person}"
