"""Closed-set classification: image-disjoint dev split, top-k during training, ``facemetric predict classify``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facemetric.cli import main
from facemetric.core.config import load_config
from facemetric.data.sources import DatasetError
from facemetric.data.split import split_images
from facemetric.embedders import load_embedder
from facemetric.eval.course.classification import centre_scores, top_k_accuracy
from facemetric.eval.course.classifier import head_from_checkpoint
from facemetric.losses import build_loss
from facemetric.train.build import build_run
from tiny_run import tiny_overrides


def test_split_images_keeps_every_person_with_a_training_photo() -> None:
    labels = np.array([0] * 10 + [1] * 4 + [2] * 1 + [3] * 2)
    train, dev = split_images(labels, 0.25, seed=1)
    assert len(np.intersect1d(train, dev)) == 0 and len(train) + len(dev) == len(labels)
    held = np.bincount(labels[dev], minlength=4)
    assert held.tolist() == [2, 1, 0, 1]  # round(2.5)=2, 1, never a single photo's only one, >= 1 of two
    assert set(labels[train]) == {0, 1, 2, 3}
    train3, dev3 = split_images(labels, 3, seed=1)
    assert np.bincount(labels[dev3], minlength=4).tolist() == [3, 3, 0, 1]
    assert split_images(labels, 0.25, seed=1)[1].tolist() == dev.tolist()  # seeded
    with pytest.raises(DatasetError, match="val_images"):
        split_images(labels, 1.5)


def test_top_k_accuracy_by_hand() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.0],  # true 0: rank 1
            [0.5, 0.5, 0.0],  # true 1: tied for the top, counted against: rank 2
            [0.3, 0.2, 0.1],  # true 2: rank 3
        ]
    )
    top = top_k_accuracy(scores, np.array([0, 1, 2]), (1, 2, 3))
    assert top == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1.0}
    centres = np.array([[2.0, 0.0], [0.0, 3.0]])
    assert centre_scores(np.array([[0.6, 0.8]]), centres).tolist() == [[pytest.approx(0.6), pytest.approx(0.8)]]


def _run(data: Path, out: Path, *extra: str):
    cfg = load_config(None, [*tiny_overrides(data, out, epochs=2, batches=3), *extra])
    return build_run(cfg).fit()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_training_logs_dev_classification_and_keeps_the_best(synthetic_faces: Path, tmp_path: Path) -> None:
    result = _run(
        synthetic_faces, tmp_path / "run", "data.val_identities=0", "data.val_images=0.34", "loss.name=softmax"
    )
    rows = _rows(tmp_path / "run" / "val.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0.0 <= float(r["classify_top1"]) <= float(r["classify_top5"]) <= 1.0 for r in rows)
    assert all(int(r["classify_images"]) == 12 * 2 for r in rows)  # round(0.34 x 6) = 2 of each person's 6
    best = max(float(r["classify_top1"]) for r in rows)
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    assert state["callbacks"]  # written at the best epoch: its classification report is the best
    assert result.val is not None and result.val.classification is not None
    assert result.val.classification.classify_by == "head"
    assert float(rows[-1]["classify_top1"]) == pytest.approx(result.val.classification.classify_top1)
    assert max(float(rows[0]["classify_top1"]), float(rows[1]["classify_top1"])) == pytest.approx(best)


def test_head_scores_match_the_trained_loss(synthetic_faces: Path, tmp_path: Path) -> None:
    """predict's head, rebuilt from the checkpoint, gives the loss's own margin-free logits."""
    _run(synthetic_faces, tmp_path / "run", "data.val_images=1", "loss.name=arcface")
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    classifier = head_from_checkpoint(tmp_path / "run" / "last.pt")
    assert classifier is not None and classifier.names == state["identity_names"]
    loss = build_loss("arcface", num_classes=len(classifier.names), embedding_dim=128)
    loss.load_state_dict(state["loss"])
    emb = torch.nn.functional.normalize(torch.randn(5, 128), dim=1)
    expected = loss.logits(emb).detach().numpy()
    assert np.allclose(classifier.scores(emb.numpy()), expected, atol=1e-5)
    rows = _rows(tmp_path / "run" / "val.csv")
    assert {"accuracy", "classify_top1", "classify_top5"} <= set(rows[0])  # verification and classification


def test_pair_loss_is_classified_by_class_centres(synthetic_faces: Path, tmp_path: Path) -> None:
    result = _run(synthetic_faces, tmp_path / "run", "data.val_images=1", "loss.name=triplet")
    assert result.val is not None and result.val.classification is not None
    assert result.val.classification.classify_by == "centres"
    assert head_from_checkpoint(tmp_path / "run" / "last.pt") is None


def _dev_folder(source: Path, dest: Path, people: list[str], stranger: bool) -> Path:
    for person in people:
        (dest / person).mkdir(parents=True)
        for image in sorted((source / person).iterdir())[:2]:
            shutil.copy(image, dest / person / image.name)
    if stranger:
        (dest / "someone_else").mkdir()
        shutil.copy(next((source / people[0]).iterdir()), dest / "someone_else" / "x.png")
    return dest


def test_dev_source_of_other_people_is_refused_or_trimmed(
    synthetic_faces: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    people = sorted(p.name for p in synthetic_faces.iterdir() if p.is_dir())
    dev = _dev_folder(synthetic_faces, tmp_path / "dev", people[:3], stranger=True)
    with caplog.at_level("WARNING", logger="facemetric"):
        result = _run(synthetic_faces, tmp_path / "run", "data.val_identities=0", f"data.dev_source={dev}")
    assert result.val is not None and result.val.classification is not None
    assert result.val.classification.classify_images == 6  # the stranger's photo left out
    assert "someone_else" in caplog.text and "not training classes" in caplog.text
    strangers = tmp_path / "strangers" / "nobody"
    strangers.mkdir(parents=True)
    shutil.copy(next((synthetic_faces / people[0]).iterdir()), strangers / "x.png")
    with pytest.raises(DatasetError, match="none of its 1 identities is a training identity"):
        _run(synthetic_faces, tmp_path / "run2", "data.val_identities=0", f"data.dev_source={strangers.parent}")


def test_predict_classify_writes_a_row_for_every_test_image(
    synthetic_faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    _run(synthetic_faces, run, "data.val_identities=0", "loss.name=softmax")
    people = sorted(p.name for p in synthetic_faces.iterdir() if p.is_dir())
    test = tmp_path / "test"
    test.mkdir()
    truth = {}
    for k, person in enumerate(people):
        image = sorted((synthetic_faces / person).iterdir())[-1]
        shutil.copy(image, test / f"{k:04d}.png")
        truth[f"{k:04d}.png"] = person
    (test / "9999.jpg").write_bytes(b"not a jpeg at all")
    dev = _dev_folder(synthetic_faces, tmp_path / "dev", people, stranger=False)
    out = tmp_path / "submission.csv"
    assert (
        main(
            ["-q", "predict", "classify", "--model", str(run / "last.pt"), "--test", str(test), "-o", str(out)]
            + ["--dev", str(dev)]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    rows = _rows(out)
    assert [r["image"] for r in rows] == sorted([*truth, "9999.jpg"])  # one row per file, in name order
    assert all(r["label"] in people for r in rows)
    assert summary["by"] == "head" and summary["classes"] == 12 and summary["dev"]["images"] == 24
    problems = _rows(tmp_path / "submission.problems.csv")
    assert [p["image"] for p in problems] == ["9999.jpg"] and problems[0]["reason"]
    assert [f["image"] for f in summary["test"]["flagged"]] == ["9999.jpg"]
    # the same through the nearest identity centre of the training folders (any embedder)
    out2 = tmp_path / "centres.csv"
    assert (
        main(
            [
                "-q",
                "predict",
                "classify",
                "--model",
                str(run / "last.pt"),
                "--test",
                str(test),
                "-o",
                str(out2),
                "--known",
                str(synthetic_faces),
            ]
        )
        == 0
    )
    centre_rows = _rows(out2)
    assert len(centre_rows) == 13
    embedder = load_embedder(run / "last.pt")
    batch = embedder.embed_files([test / r["image"] for r in centre_rows[:12]], 64)
    assert json.loads(capsys.readouterr().out)["by"] == "centres" and batch.embeddings.shape[0] == 12


def test_predict_classify_without_a_head_asks_for_known(
    synthetic_faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    _run(synthetic_faces, run, "loss.name=triplet")
    test = tmp_path / "test"
    test.mkdir()
    shutil.copy(next(next(synthetic_faces.iterdir()).iterdir()), test / "a.png")
    assert (
        main(
            [
                "-q",
                "predict",
                "classify",
                "--model",
                str(run / "last.pt"),
                "--test",
                str(test),
                "-o",
                str(tmp_path / "o.csv"),
            ]
        )
        == 2
    )
    assert "has no classifier head" in capsys.readouterr().err
    empty = tmp_path / "empty"  # a folder with no image in it (an empty one is refused as the command line is read)
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    code = main(
        [
            "-q",
            "predict",
            "classify",
            "--model",
            str(run / "last.pt"),
            "--test",
            str(empty),
            "-o",
            str(tmp_path / "o.csv"),
            "--known",
            str(synthetic_faces),
        ]
    )
    assert code == 2 and f"{empty}: no image file" in capsys.readouterr().err
