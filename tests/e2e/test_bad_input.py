"""Bad files never stop training: each is reported once with its path and reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facemetric", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def dirty_run(
    synthetic_faces: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, subprocess.CompletedProcess]:
    data = tmp_path_factory.mktemp("dirty") / "data"
    shutil.copytree(synthetic_faces, data)
    person = data / "person_000"
    good = (person / "person_000_0001.png").read_bytes()
    from PIL import Image

    Image.open(person / "person_000_0001.png").save(person / "person_000_0007.jpg", quality=90)
    jpeg = (person / "person_000_0007.jpg").read_bytes()
    (person / "person_000_0007.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # truncated JPEG
    (data / "person_001" / "person_001_0007.jpg").write_bytes(b"")  # zero bytes
    (data / "person_002" / "person_002_0007.jpg").write_text("this is a text file, not a photo\n")
    (data / "nobody").mkdir()  # empty identity folder
    assert good  # the originals stay valid
    out = data.parent / "run"
    result = _cli(
        "train",
        "--data",
        str(data),
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
    )
    return data, out, result


def test_training_survives_and_reports_each_bad_input_once(dirty_run) -> None:
    data, out, result = dirty_run
    assert result.returncode == 0, result.stderr[-3000:]
    expected = {
        data / "person_000" / "person_000_0007.jpg": "corrupt or truncated",
        data / "person_001" / "person_001_0007.jpg": "empty file (0 bytes)",
        data / "person_002" / "person_002_0007.jpg": "not an image Pillow can read",
        data / "nobody": "identity folder contains no images",
    }
    for path, reason in expected.items():
        lines = [line for line in result.stderr.splitlines() if line.strip().startswith(f"{path}:")]
        assert len(lines) == 1, f"{path} reported {len(lines)} times"
        assert reason in lines[0]
    listed = {e["path"] for e in json.loads((out / "skipped_inputs.json").read_text())}
    assert listed == {str(p) for p in expected}
    assert (out / "last.pt").exists()


def test_embed_writes_npz_and_skips_bad_files(dirty_run, tmp_path: Path) -> None:
    import numpy as np

    data, out, _ = dirty_run
    result = _cli("-q", "embed", "--model", str(out / "last.pt"), "--data", str(data), "-o", str(tmp_path / "e.npz"))
    assert result.returncode == 0, result.stderr[-3000:]
    npz = np.load(tmp_path / "e.npz")
    assert npz["embeddings"].shape == (12 * 6, 128) and len(npz["paths"]) == len(npz["identities"]) == 72
    assert np.allclose(np.linalg.norm(npz["embeddings"], axis=1), 1, atol=1e-5)
    assert json.loads(result.stdout)["skipped"] == 4


def test_pairs_file_with_missing_image_names_the_line(dirty_run, tmp_path: Path) -> None:
    data, out, _ = dirty_run
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nperson_003\t1\t2\nperson_003\t1\tperson_004\t9\n")
    result = _cli("-q", "eval", "--model", str(out / "last.pt"), "--pairs", str(pairs), "--data", str(data))
    assert result.returncode == 2
    assert "line 3" in result.stderr and "person_004_0009.jpg" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_on_a_complete_pairs_file(dirty_run, tmp_path: Path) -> None:
    data, out, _ = dirty_run
    pairs = tmp_path / "pairs.txt"
    lines = [f"person_{i:03d}\t1\t2" for i in range(3, 9)] + [
        f"person_{i:03d}\t1\tperson_{i + 1:03d}\t3" for i in range(3, 9)
    ]
    pairs.write_text("2\t3\n" + "\n".join(lines[:3] + lines[6:9] + lines[3:6] + lines[9:]) + "\n")
    result = _cli("-q", "eval", "--model", str(out / "last.pt"), "--pairs", str(pairs), "--data", str(data), "--flip")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    report = summary["verification"]
    assert report["folds_from_file"] is True and report["n_folds"] == 2
    assert report["num_positive"] == report["num_negative"] == 6 and summary["flip"] is True
