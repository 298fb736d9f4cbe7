"""HPatches' task protocols over a patch set: known answers on hand-made descriptors, the pair lists'
stated properties, and the chunked computations against the reference metric functions."""

from __future__ import annotations

import numpy as np
import pytest

from facemetric.data.hpatches import IMAGES, PatchSet
from facemetric.eval.patches.metrics import matching_ap, retrieval_ap, verification_ap
from facemetric.eval.patches.pairs import PatchIndex, PatchProtocolError, sample_verification_pairs
from facemetric.eval.patches.result import PatchEvalDocument, PatchTaskResults
from facemetric.eval.patches.tasks import _query_aps, evaluate_patch_tasks, sequence_matching_ap


def patch_set(n_seq: int = 6, n_points: int = 10, size: int = 8, seed: int = 0) -> PatchSet:
    """``n_seq`` sequences (alternately i_* and v_*) of ``n_points`` points in the 16 images, random texture."""
    rng = np.random.default_rng(seed)
    seqs, index, images = [], [], []
    for s in range(n_seq):
        name = f"{'iv'[s % 2]}_scene{s}"
        for image in IMAGES:
            seqs += [name] * n_points
            index += list(range(n_points))
            images += [image] * n_points
    n = len(seqs)
    pixels = rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)
    labels = np.unique(np.char.add(np.array(seqs), np.array(index).astype(str)), return_inverse=True)[1]
    return PatchSet(pixels, labels.astype(np.int64), np.array(seqs), np.array(index), np.array(images))


def point_of(patches: PatchSet) -> np.ndarray:
    index = PatchIndex.of(patches)
    point = np.empty(len(patches), np.int64)
    point[index.rows.reshape(-1)] = np.repeat(np.arange(len(index)), len(IMAGES))
    return point


def perfect(patches: PatchSet) -> np.ndarray:
    """Equal descriptors for a point, orthogonal across points."""
    point = point_of(patches)
    return np.eye(point.max() + 1, dtype=np.float32)[point]


def all_scores(results: PatchTaskResults, task: str, level: str) -> list[float | None]:
    tables = [results.verification.balanced, results.verification.imbalanced] if task == "verification" else []
    tables = tables or [getattr(results, task)]
    return [getattr(getattr(t, level), kind) for t in tables for kind in ("all", "illum", "view")]


def test_perfect_descriptors_score_one_on_every_task_level_and_kind() -> None:
    patches = patch_set()
    results = evaluate_patch_tasks(perfect(patches), patches, seed=1)
    for task in ("verification", "matching", "retrieval"):
        for level in ("easy", "hard", "tough", "mean"):
            assert all_scores(results, task, level) == pytest.approx([1.0] * len(all_scores(results, task, level)))
    assert results.headline() == pytest.approx({"verification": 1.0, "matching": 1.0, "retrieval": 1.0})
    c = results.counts
    assert (c.sequences, c.illum_sequences, c.view_sequences, c.points, c.patches) == (6, 3, 3, 60, 960)
    assert c.verification_positives == 60 * 15  # every (point, image pair): fewer than the cap
    assert c.retrieval_queries == c.retrieval_distractors == 60 and c.retrieval_flat_points == 0


def test_descriptors_perfect_for_easy_and_random_for_tough_separate_the_levels() -> None:
    patches = patch_set(seed=2)
    desc = perfect(patches)
    tough = np.char.startswith(patches.image_names.astype(str), "t")
    noise = np.random.default_rng(3).normal(size=(int(tough.sum()), desc.shape[1]))
    desc[tough] = noise / np.linalg.norm(noise, axis=1, keepdims=True)
    results = evaluate_patch_tasks(desc, patches, seed=0)
    for task in ("verification", "matching", "retrieval"):
        assert all_scores(results, task, "easy") == pytest.approx([1.0] * len(all_scores(results, task, "easy")))
        assert all_scores(results, task, "hard") == pytest.approx([1.0] * len(all_scores(results, task, "hard")))
        assert max(v for v in all_scores(results, task, "tough") if v is not None) < 0.75
    # random tough patches: a matching AP near chance (1 / 10 points), a balanced verification AP near 1/2
    assert results.matching.tough.all < 0.35
    assert 0.3 < results.verification.balanced.tough.all < 0.75


def test_one_vector_for_everything_scores_low_ties_count_against_it() -> None:
    patches = patch_set()
    results = evaluate_patch_tasks(np.ones((len(patches), 4), np.float32) / 2, patches)
    # all distances tie: every negative ranks before every positive, AP = mean of j / (ratio * n + j)
    n = results.counts.verification_positives
    worst = {r: np.mean([j / (r * n // r + j) for j in range(1, n // r + 1)]) for r in (1, 5)}
    assert results.verification.balanced.mean.all == pytest.approx(worst[1])  # about 1 - ln 2
    assert results.verification.imbalanced.mean.all == pytest.approx(worst[5], rel=0.02)  # about 1 - 5 ln 1.2
    assert results.matching.mean.all < 0.2 and results.retrieval.mean.all < 0.1


def test_pair_lists_hold_the_stated_ratios_and_no_pair_twice() -> None:
    index = PatchIndex.of(patch_set(n_seq=5, n_points=20))
    pairs = sample_verification_pairs(index, 1000, seed=4)
    assert len(pairs) == 1000
    keys_pos = set(
        zip(
            pairs.point.tolist(),
            np.minimum(pairs.image1, pairs.image2).tolist(),
            np.maximum(pairs.image1, pairs.image2).tolist(),
        )
    )
    assert len(keys_pos) == 1000 and (pairs.image1 != pairs.image2).all()
    for negatives in ("intra", "inter"):
        lists = pairs.lists(negatives, imbalance=5)
        for name, ratio in (("balanced", 1), ("imbalanced", 5)):
            p1, i1, p2, i2, same = lists[name]
            assert (~same).sum() == ratio * same.sum() > 0
            assert not same[: (~same).sum()].any()  # negatives first
            assert (p1[same] == p2[same]).all() and (i1 != i2).all()
            neg_same_seq = index.sequence[p1[~same]] == index.sequence[p2[~same]]
            assert neg_same_seq.all() if negatives == "intra" else not neg_same_seq.any()
            assert (p1[~same] != p2[~same]).all()
            a, b = p1 * 6 + i1, p2 * 6 + i2
            keys = set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist()))
            assert len(keys) == len(same)  # no pair twice
    again = sample_verification_pairs(index, 1000, seed=4)
    other = sample_verification_pairs(index, 1000, seed=5)
    for field in ("point", "image1", "image2", "intra", "inter"):
        assert np.array_equal(getattr(pairs, field), getattr(again, field))
    assert not np.array_equal(pairs.point, other.point)


def test_a_lone_sequence_has_no_inter_negatives_and_a_lone_point_no_intra_ones() -> None:
    index = PatchIndex.of(patch_set(n_seq=1, n_points=1))
    pairs = sample_verification_pairs(index, 100, seed=0)
    assert len(pairs) == 15 and (pairs.intra == -1).all() and (pairs.inter == -1).all()
    assert all(len(lst[4]) == 0 for lst in pairs.lists("inter", 5).values())


def test_the_whole_evaluation_is_seeded() -> None:
    patches = patch_set(seed=6)
    desc = np.random.default_rng(7).normal(size=(len(patches), 16)).astype(np.float32)
    small = {"max_pairs": 400, "max_queries": 20, "distractors": 15}
    first, second = (evaluate_patch_tasks(desc, patches, seed=3, **small) for _ in range(2))
    assert first == second
    assert evaluate_patch_tasks(desc, patches, seed=4, **small) != first
    assert first.counts.verification_positives == 200 and first.counts.retrieval_queries == 20


def test_chunked_matching_and_retrieval_equal_the_reference_functions() -> None:
    rng = np.random.default_rng(8)
    ref, target = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    target[:20] = ref[:20] + 0.1 * rng.normal(size=(20, 6))
    assert sequence_matching_ap(ref, target) == pytest.approx(matching_ap(ref, target))
    q, positives, pool = rng.normal(size=(7, 6)), rng.normal(size=(7, 5, 6)), rng.normal(size=(40, 6))
    masked = rng.random((7, 40)) < 0.3
    mine = _query_aps(q, positives, pool, masked)
    for k in range(7):  # the query's positives and its unmasked distractors as one labelled pool
        kept = pool[~masked[k]]
        reference = retrieval_ap(q[k : k + 1], [1], np.vstack([positives[k], kept]), [1] * 5 + [0] * len(kept))
        assert mine[k] == pytest.approx(reference)


def test_verification_ap_equals_the_reference_on_the_same_list() -> None:
    patches = patch_set(seed=9)
    desc = np.random.default_rng(10).normal(size=(len(patches), 8))
    index = PatchIndex.of(patches)
    results = evaluate_patch_tasks(desc, patches, seed=0, max_pairs=600)
    # evaluate_patch_tasks draws its pairs with a seed of its own: recompute its list for the easy level
    drawn = sample_verification_pairs(index, 300, int(np.random.default_rng(0).integers(2**31)))
    p1, i1, p2, i2, same = drawn.lists("inter", 5)["imbalanced"]
    rows = index.level_rows("e")
    expected = verification_ap(desc[rows[p1, i1]], desc[rows[p2, i2]], same)
    assert results.verification.inter_imbalanced.easy.all == pytest.approx(expected)


def test_bad_inputs_are_named() -> None:
    patches = patch_set(n_seq=2, n_points=3)
    with pytest.raises(PatchProtocolError, match="do not fit"):
        evaluate_patch_tasks(np.zeros((5, 4)), patches)
    keep = ~((patches.image_names == "h3") & (patches.patch_index == 1) & (patches.sequences == "v_scene1"))
    cut = PatchSet(
        *(getattr(patches, f)[keep] for f in ("images", "labels", "sequences", "patch_index", "image_names"))
    )
    with pytest.raises(PatchProtocolError, match="point 1 of sequence v_scene1 has no patch in image h3"):
        PatchIndex.of(cut)


def test_results_print_as_a_table_and_round_trip_as_json() -> None:
    patches = patch_set()
    results = evaluate_patch_tasks(perfect(patches), patches)
    table = results.table()
    assert "verification (imbalanced)" in table and "retrieval" in table and "100.00" in table
    doc = PatchEvalDocument(created="now", model="raw", describer="raw pixels", patch_size=32, **dict(results))
    assert PatchEvalDocument.model_validate_json(doc.model_dump_json()) == doc
    only_view = patch_set(n_seq=2)
    view = PatchSet(
        *(
            getattr(only_view, f)[only_view.sequences == "v_scene1"]
            for f in ("images", "labels", "sequences", "patch_index", "image_names")
        )
    )
    lonely = evaluate_patch_tasks(perfect(view), view)
    assert lonely.matching.easy.illum is None and lonely.matching.easy.view == 1.0
    assert " - " in lonely.table()
