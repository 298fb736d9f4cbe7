"""A trained checkpoint leaves the training code as ONNX; eval and embed run from the file alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facemetric", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def exported(synthetic_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("export")
    run = _cli(
        "-q",
        "train",
        "--data",
        str(synthetic_faces),
        "--out",
        str(out / "run"),
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
    assert run.returncode == 0, run.stderr[-3000:]
    result = _cli("-q", "export", "--model", str(out / "run" / "last.pt"), "-o", str(out / "model.onnx"))
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "run" / "last.pt", out / "model.onnx", json.loads(result.stdout)


def test_export_is_checked_against_torch(exported) -> None:
    _, onnx_path, report = exported
    assert report["max_abs_diff"] < 1e-4 and report["batch_sizes_checked"] == [1, 3]
    import onnx

    model = onnx.load(str(onnx_path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 48, 48]  # dynamic batch, fixed image
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["facemetric.image_spec"])["height"] == 48
    assert json.loads(meta["facemetric.model"])["name"] == "iresnet_tiny"


def test_embed_and_eval_from_the_onnx_file_match_the_checkpoint(
    exported, synthetic_faces: Path, tmp_path: Path
) -> None:
    checkpoint, onnx_path, _ = exported
    outputs = {}
    for tag, model in (("pt", checkpoint), ("onnx", onnx_path)):
        result = _cli(
            "-q",
            "embed",
            "--model",
            str(model),
            "--data",
            str(synthetic_faces),
            "-o",
            str(tmp_path / f"{tag}.npz"),
            "--flip",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[tag] = np.load(tmp_path / f"{tag}.npz")
    assert list(outputs["pt"]["paths"]) == list(outputs["onnx"]["paths"])
    assert np.abs(outputs["pt"]["embeddings"] - outputs["onnx"]["embeddings"]).max() < 1e-4

    pairs = tmp_path / "pairs.txt"
    genuine = [f"person_{i:03d}\t1\t2" for i in range(12)]
    impostor = [f"person_{i:03d}\t1\tperson_{(i + 1) % 12:03d}\t3" for i in range(12)]
    pairs.write_text("2\t6\n" + "\n".join(genuine[:6] + impostor[:6] + genuine[6:] + impostor[6:]) + "\n")
    reports = {}
    for tag, model in (("pt", checkpoint), ("onnx", onnx_path)):
        result = _cli("-q", "eval", "--model", str(model), "--pairs", str(pairs), "--data", str(synthetic_faces))
        assert result.returncode == 0, result.stderr[-3000:]
        reports[tag] = json.loads(result.stdout)["verification"]
    assert reports["pt"]["accuracy"] == reports["onnx"]["accuracy"]
    assert abs(reports["pt"]["auc"] - reports["onnx"]["auc"]) < 1e-3


def test_export_errors_are_clear(tmp_path: Path) -> None:
    result = _cli("-q", "export", "--model", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "m.onnx"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    not_ours = tmp_path / "plain.onnx"
    not_ours.write_bytes(b"not an onnx file")
    result = _cli("-q", "embed", "--model", str(not_ours), "--data", str(tmp_path), "-o", str(tmp_path / "e.npz"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
