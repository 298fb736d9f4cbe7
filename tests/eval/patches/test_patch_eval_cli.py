"""``facemetric eval --patches`` and ``facemetric report`` on a small synthetic HPatches release:
baselines and patch models end to end, and the errors a user can cause."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facemetric.cli import main
from facemetric.core.checkpoint import model_fingerprint, save_checkpoint
from facemetric.core.config import ModelConfig
from facemetric.core.spec import ImageSpec
from facemetric.data.hpatches import IMAGES, read_hpatches
from facemetric.eval.patches.pairs import PatchProtocolError
from facemetric.eval.patches.run import evaluate_release, patch_model
from hpatches_fakes import write_release


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release(tmp_path_factory.mktemp("hpatches") / "release")


def checkpoint(path: Path, spec: ImageSpec) -> Path:
    """A randomly initialised HardNet checkpoint taking ``spec``'s patches."""
    from facemetric.models import build_embedding_model

    cfg = ModelConfig(name="hardnet", embedding_dim=16)
    model = build_embedding_model(cfg, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "model_fingerprint": model_fingerprint(model), "image_spec": spec.to_dict()}
    save_checkpoint(path, {**state, "config": {"model": cfg.model_dump()}})
    return path


@pytest.mark.parametrize(("model", "split"), [("raw", "full"), ("sift", "a")])
def test_eval_patches_writes_the_folder_and_report_draws_it(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, split: str
) -> None:
    if model == "sift":
        pytest.importorskip("cv2")
    out = tmp_path / "eval"
    assert (
        main(
            [
                "-q",
                "eval",
                "--model",
                model,
                "--data",
                str(release),
                "--patches",
                "--patch-split",
                split,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert "verification (imbalanced)" in captured.err  # the table
    doc = json.loads((out / "eval.json").read_text())
    assert doc["format"] == "facemetric-patches/1" and doc["model"] == model
    expected = ["i_scene0", "i_scene2", "v_scene1", "v_scene3"]
    assert doc["data"]["sequences"] == (expected if split == "full" else expected[1:])  # splits.json's test part
    assert summary["counts"] == doc["counts"] and "intra_balanced" not in summary["verification"]
    for task in ("matching", "retrieval"):  # the jitter grows with the level: so do raw pixels' errors
        assert doc[task]["easy"]["all"] >= doc[task]["tough"]["all"]
        assert model != "raw" or doc[task]["easy"]["all"] > doc[task]["tough"]["all"]
    with np.load(out / "descriptors.npz") as z:
        assert z["descriptors"].shape == (30 * 16, 64 if model == "raw" else 128)
        assert len(set(z["points"].tolist())) == 30 and set(z["images"].tolist()) == set(IMAGES)

    assert main(["-q", "report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "HPatches tasks" in html and "verification (imbalanced)" in html and "viewpoint (v_*)" in html
    assert 'alt="t-SNE of the patch descriptors"' in html and "data:image/png;base64," in html
    assert (out / "report_files" / "patch_tsne.png").is_file()


def test_patch_models_of_one_or_three_channels(release: Path, tmp_path: Path) -> None:
    grey = checkpoint(tmp_path / "grey" / "last.pt", ImageSpec(32, 32, 1))
    evaluation = evaluate_release(release, str(grey.parent), split="view", pairs=400, distractors=50)
    assert evaluation.meta.patch_size == 32 and evaluation.results.counts.descriptor_dim == 16
    colour = checkpoint(tmp_path / "colour.pt", ImageSpec(32, 32, 3))
    describer = patch_model(str(colour))
    patches = read_hpatches(release, ["v_scene1"], 32).images[:8]
    from facemetric.embedders import load_embedder

    expected = load_embedder(str(colour)).embed_crops(np.repeat(patches, 3, axis=3))
    np.testing.assert_allclose(describer(patches), expected, atol=1e-6)  # the grey patch in every channel
    with pytest.raises(PatchProtocolError, match="96x96 images, not a patch size"):
        patch_model(str(checkpoint(tmp_path / "face.pt", ImageSpec(96, 96, 3))))
    with pytest.raises(PatchProtocolError, match="without best.pt or last.pt"):
        patch_model(str(tmp_path))


def test_errors_name_the_input(release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "notes.txt").write_text("photos, not sequences")
    (tmp_path / "pairs.txt").write_text("1\n")
    cases = [
        (["--model", "raw", "--data", str(tmp_path / "photos"), "--patches"], "no sequence folder"),
        (["--model", "raw", "--data", str(release), "--patches", "--patch-split", "b"], "split 'b' is not in"),
        (["--model", "surf", "--data", str(release), "--patches"], "not a patch baseline (raw, sift, rootsift)"),
        (
            ["--model", "raw", "--data", str(release), "--patches", "--pairs", str(tmp_path / "pairs.txt")],
            "on their own",
        ),
    ]
    for argv, message in cases:
        code = main(["-q", "eval", *argv])
        err = capsys.readouterr().err
        assert code == 2 and message in err, err
    # a splits.json named but missing is refused as the command line is read, even for a split that needs none
    with pytest.raises(SystemExit) as refused:
        main(
            ["-q", "eval", "--model", "raw", "--data", str(release), "--patches", "--splits-json", str(tmp_path / "x")]
        )
    assert refused.value.code == 2 and "argument --splits-json" in capsys.readouterr().err
    no_splits = tmp_path / "bare"
    write_release(no_splits, n_seq=2, n_points=4)
    (no_splits / "splits.json").unlink()
    assert main(["-q", "eval", "--model", "raw", "--data", str(no_splits), "--patches", "--patch-split", "c"]) == 2
    assert "give hpatches-benchmark's splits.json" in capsys.readouterr().err


def test_eval_patches_reads_the_benchmarks_task_lists(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from facemetric.data.hpatches import read_hpatches as read
    from facemetric.eval.patches.pairs import PatchIndex
    from facemetric.eval.patches.task_files import write_task_lists
    from facemetric.eval.patches.tasks import draw_lists

    index = PatchIndex.of(read(release))
    drawn = draw_lists(index, np.zeros(len(index), bool), np.random.default_rng(5), 50, 6, 20)
    tasks = tmp_path / "tasks"
    for column, split in (("all", "full"), ("illum", "illum"), ("view", "view")):
        write_task_lists(tasks, split, drawn[column], index)  # type: ignore[arg-type]
    out = tmp_path / "eval"
    args = ["-q", "eval", "--model", "raw", "--data", str(release), "--patches", "--out", str(out)]
    assert main([*args, "--patch-tasks", str(tasks), "--patch-ap", "step"]) == 0
    doc = json.loads((out / "eval.json").read_text())
    assert doc["settings"]["lists"] == str(tasks) and doc["settings"]["ap"] == "step"
    assert doc["counts"]["verification_positives"] == 50 and doc["counts"]["retrieval_queries"] == 6
    assert doc["counts"]["retrieval_distractors"] == 20 and doc["retrieval"]["easy"]["illum"] is not None
    assert "step AP" in capsys.readouterr().err
    (tasks / "verif_pos_split-full.csv").write_text("s,idx\ni_scene0,1\n")
    with pytest.raises(PatchProtocolError, match="verif_pos_split-full.csv: the first line must be the header"):
        evaluate_release(release, "raw", tasks=tasks)


def test_the_flat_test_reads_the_65_px_reference_patches(release: Path) -> None:
    from facemetric.eval.patches.run import reference_std

    names = ["i_scene0", "v_scene1"]
    std = reference_std(release, names)
    full = read_hpatches(release, names, 65)
    for name in names:
        ref = full.images[(full.sequences == name) & (full.image_names == "ref")][..., 0].astype(np.float64)
        np.testing.assert_array_equal(std[name], ref.reshape(len(ref), -1).std(1))
