"""facemetric's HPatches tasks against numbers of hpatches-benchmark's own Python code (commit e0c993c) on the same
lists and descriptors: the three tasks, every level, the full / illum / view splits, equal to 1e-6.

The data (``official_reference/``, made as its README says): raw OpenCV SIFT descriptors (as the benchmark's
``extract_opencv_sift.py``) of a 6-sequence release built by ``facemetric protocol patches`` from CelebA photos,
the task lists its generators drew, and its evaluation's figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facemetric.data.hpatches import IMAGES, PatchSet
from facemetric.eval.patches.pairs import PatchIndex, PatchProtocolError
from facemetric.eval.patches.task_files import read_task_lists, write_task_lists
from facemetric.eval.patches.tasks import evaluate_patch_tasks

HERE = Path(__file__).parent / "official_reference"
LEVEL = {"e": "easy", "h": "hard", "t": "tough"}


def official_release() -> tuple[np.ndarray, PatchSet]:
    """The descriptors (float32, as the benchmark reads them) and a patch set of the same layout (blank pixels)."""
    raw = np.load(HERE / "sift_raw.npz")
    names = sorted({key.split("/")[0] for key in raw.files})
    desc, seqs, index, images = [], [], [], []
    for name in names:
        for image in IMAGES:
            d = raw[f"{name}/{image}"]
            desc.append(d.astype(np.float32))
            seqs += [name] * len(d)
            index.append(np.arange(len(d)))
            images += [image] * len(d)
    n = len(seqs)
    labels = np.unique(np.char.add(np.array(seqs), np.concatenate(index).astype(str)), return_inverse=True)[1]
    patches = PatchSet(
        np.zeros((n, 1, 1, 1), np.uint8), labels, np.array(seqs), np.concatenate(index), np.array(images)
    )
    return np.concatenate(desc), patches


def official_lists(index: PatchIndex, folder: Path = HERE / "tasks") -> dict:
    return {split: read_task_lists(folder, split, index) for split in ("full", "illum", "view")}


def test_the_three_tasks_equal_the_official_code_on_its_lists() -> None:
    reference = json.loads((HERE / "reference.json").read_text())
    desc, patches = official_release()
    lists = official_lists(PatchIndex.of(patches))
    results = evaluate_patch_tasks(
        desc, patches, lists={"all": lists["full"], "illum": lists["illum"], "view": lists["view"]}, lists_source="x"
    )
    assert results.settings.ap == "trapezoid" and results.settings.balanced == "auc"
    for split, column in (("full", "all"), ("illum", "illum"), ("view", "view")):
        for key, level in LEVEL.items():
            expected = reference[split][key]
            for name, value in expected["verification"].items():
                got = getattr(getattr(getattr(results.verification, name), level), column)
                assert got == pytest.approx(value, abs=1e-6), (split, level, name)
            # matching of the illum / view split: the mean over that kind's sequences, facemetric's column
            got = getattr(getattr(results.matching, level), column)
            assert got == pytest.approx(expected["matching"], abs=1e-6), (split, level, "matching")
            for pool, value in expected["retrieval"].items():
                got = getattr(getattr(results.retrieval_pools[int(pool)], level), column)
                assert got == pytest.approx(value, abs=1e-6), (split, level, "retrieval", pool)
            # the whole list: the largest pool here (140 distractors < 20,000)
            whole = getattr(getattr(results.retrieval, level), column)
            assert whole == pytest.approx(expected["retrieval"]["20000"], abs=1e-6)


def test_the_pool_sizes_differ_where_the_list_is_longer_than_the_pool() -> None:
    reference = json.loads((HERE / "reference.json").read_text())
    assert reference["full"]["t"]["retrieval"]["100"] != pytest.approx(reference["full"]["t"]["retrieval"]["500"])


def test_step_ap_differs_from_the_trapezoid_and_is_named() -> None:
    desc, patches = official_release()
    lists = official_lists(PatchIndex.of(patches))
    columns = {"all": lists["full"], "illum": lists["illum"], "view": lists["view"]}
    trapezoid = evaluate_patch_tasks(desc, patches, lists=columns)
    step = evaluate_patch_tasks(desc, patches, lists=columns, ap="step")
    assert step.settings.ap == "step" and "step AP" in step.table()
    assert step.retrieval.tough.all > trapezoid.retrieval.tough.all  # the trapezoid is never the larger
    assert step.verification.balanced == trapezoid.verification.balanced  # ROC AUC: no AP convention


def test_lists_round_trip_through_the_official_format(tmp_path: Path) -> None:
    _, patches = official_release()
    index = PatchIndex.of(patches)
    lists = official_lists(index)
    write_task_lists(tmp_path, "full", lists["full"], index)
    for name in ("verif_pos", "verif_neg_intra", "verif_neg_inter", "retr_queries", "retr_distractors"):
        mine = (tmp_path / f"{name}_split-full.csv").read_text()
        assert mine == (HERE / "tasks" / f"{name}_split-full.csv").read_text()


def test_bad_list_files_are_named(tmp_path: Path) -> None:
    _, patches = official_release()
    index = PatchIndex.of(patches)
    for path in (HERE / "tasks").glob("*split-full.csv"):
        (tmp_path / path.name).write_text(path.read_text())
    with pytest.raises(PatchProtocolError, match="no such file"):
        read_task_lists(tmp_path, "a", index)
    bad = tmp_path / "verif_pos_split-full.csv"
    bad.write_text(bad.read_text().replace("v_000131,", "v_nowhere,", 1))
    with pytest.raises(PatchProtocolError, match=r"verif_pos_split-full.csv line \d+: sequence 'v_nowhere'"):
        read_task_lists(tmp_path, "full", index)
