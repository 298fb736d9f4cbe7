"""HPatches' task protocols over a patch set: known answers on hand-made descriptors, the drawn lists' stated
properties, and the chunked computations against the reference metric functions."""

from __future__ import annotations

import numpy as np
import pytest

from facemetric.data.hpatches import IMAGES, PatchSet
from facemetric.eval.patches.metrics import matching_ap, retrieval_ap, roc_auc, verification_ap
from facemetric.eval.patches.pairs import PatchIndex, PatchProtocolError, draw_task_lists
from facemetric.eval.patches.result import PatchEvalDocument, PatchTaskResults
from facemetric.eval.patches.retrieval import query_aps
from facemetric.eval.patches.tasks import draw_lists, evaluate_patch_tasks, sequence_matching_ap

SMALL = {"pairs": 300, "max_queries": 20, "distractors": 30}


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
    v = results.verification  # intra lists: inter ones may pair a point with itself (see the test below)
    tables = [v.intra_balanced, v.intra_imbalanced] if task == "verification" else []
    tables = tables or [getattr(results, task)]
    return [getattr(getattr(t, level), kind) for t in tables for kind in ("all", "illum", "view")]


def test_perfect_descriptors_score_one_on_every_task_level_and_kind() -> None:
    patches = patch_set()
    results = evaluate_patch_tasks(perfect(patches), patches, seed=1, **SMALL)
    for task in ("verification", "matching", "retrieval"):
        for level in ("easy", "hard", "tough", "mean"):
            assert all_scores(results, task, level) == pytest.approx([1.0] * len(all_scores(results, task, level)))
    assert results.headline()["retrieval"] == results.headline()["matching"] == pytest.approx(1.0)
    # as the benchmark's generator, an inter negative's point is drawn from every sequence, its own point included:
    # such a "negative" is a positive pair at distance 0, listed first, so it ranks before every positive
    index = PatchIndex.of(patches)
    lists = draw_lists(index, np.zeros(len(index), bool), np.random.default_rng(1), 300, 20, 30)
    for column in ("all", "illum", "view"):
        inter = lists[column].inter  # type: ignore[union-attr]
        itself = inter.point1 == inter.point2
        auc = getattr(results.verification.inter_balanced.easy, column)
        assert itself.sum() > 0 and auc == pytest.approx(1 - itself.mean())
    c = results.counts
    assert (c.sequences, c.illum_sequences, c.view_sequences, c.points, c.patches) == (6, 3, 3, 60, 960)
    assert c.verification_positives == c.verification_negatives_intra == c.verification_negatives_inter == 300
    # at most half the 60 usable points are queries, the rest can be distractors
    assert c.retrieval_queries == 20 and c.retrieval_distractors == 30 and c.retrieval_flat_points == 0
    assert set(results.retrieval_pools) == {100, 500, 1000, 5000, 10_000, 15_000, 20_000}


def test_descriptors_perfect_for_easy_and_random_for_tough_separate_the_levels() -> None:
    patches = patch_set(seed=2)
    desc = perfect(patches)
    tough = np.char.startswith(patches.image_names.astype(str), "t")
    noise = np.random.default_rng(3).normal(size=(int(tough.sum()), desc.shape[1]))
    desc[tough] = noise / np.linalg.norm(noise, axis=1, keepdims=True)
    results = evaluate_patch_tasks(desc, patches, seed=0, **SMALL)
    for task in ("verification", "matching", "retrieval"):
        assert all_scores(results, task, "easy") == pytest.approx([1.0] * len(all_scores(results, task, "easy")))
        assert all_scores(results, task, "hard") == pytest.approx([1.0] * len(all_scores(results, task, "hard")))
        assert max(v for v in all_scores(results, task, "tough") if v is not None) < 0.75
    # random tough patches: a matching AP near chance (1 / 10 points), a balanced verification AUC near 1/2
    assert results.matching.tough.all < 0.35
    assert 0.3 < results.verification.balanced.tough.all < 0.75


def test_one_vector_for_everything_follows_the_benchmarks_tie_order() -> None:
    patches = patch_set()
    results = evaluate_patch_tasks(np.ones((len(patches), 4), np.float32) / 2, patches, **SMALL)
    # verification lists put negatives first: every positive ranks last, ROC AUC 0, AP low
    assert results.verification.balanced.mean.all == 0.0
    assert results.verification.imbalanced.mean.all < 0.2
    # matching: every reference patch matches target patch 0 (the first of the ties): 1 right of 10
    assert results.matching.mean.all < 0.2
    # retrieval lists put the five positives first: a constant descriptor retrieves perfectly (the benchmark's
    # own flaw, kept for equal figures; docs/evaluation.md)
    assert results.retrieval.mean.all == pytest.approx(1.0)


def test_drawn_lists_hold_the_benchmarks_properties() -> None:
    patches = patch_set(n_seq=5, n_points=20)
    index = PatchIndex.of(patches)
    flat = np.zeros(len(index), bool)
    flat[::7] = True
    sequences = np.arange(5)
    lists = draw_task_lists(index, sequences, flat, np.random.default_rng(4), 1000, 30, 40)
    pos, intra, inter = lists.positives, lists.intra, lists.inter
    assert len(pos) == len(intra) == len(inter) == 1000
    assert (pos.point1 == pos.point2).all() and (pos.image1 != pos.image2).all()
    assert pos.image1.max() <= 4 and pos.image2.max() <= 4  # ref and targets 1..4, as the benchmark
    for neg in (intra, inter):  # row k is positive k's first patch with another
        assert (neg.point1 == pos.point1).all() and (neg.image1 == pos.image1).all()
        assert (neg.image2 == pos.image2).all()
    assert (index.sequence[intra.point1] == index.sequence[intra.point2]).all()
    assert (intra.point1 != intra.point2).all()
    same = index.sequence[inter.point1] == index.sequence[inter.point2]
    assert 0.05 < same.mean() < 0.4  # the benchmark's inter negatives may come from the same sequence (1 / 5 here)
    assert len(lists.queries) == 30 and len(np.unique(lists.queries)) == 30
    assert len(lists.distractors) == 40 and len(np.unique(lists.distractors)) == 40
    assert not flat[lists.queries].any() and not flat[lists.distractors].any()
    assert not np.isin(lists.distractors, lists.queries).any()
    again = draw_task_lists(index, sequences, flat, np.random.default_rng(4), 1000, 30, 40)
    assert np.array_equal(again.intra.point2, intra.point2) and np.array_equal(again.distractors, lists.distractors)
    few = draw_task_lists(index, sequences, flat, np.random.default_rng(4), 10, 1000, 1000)
    assert len(few.queries) == int((~flat).sum()) // 2  # capped at half the usable points


def test_each_kind_column_draws_within_its_kind() -> None:
    patches = patch_set()
    index = PatchIndex.of(patches)
    lists = draw_lists(index, np.zeros(len(index), bool), np.random.default_rng(0), 200, 10, 20)
    for kind in ("illum", "view"):
        own = lists[kind]
        assert own is not None
        points = np.concatenate([own.inter.point2, own.intra.point2, own.queries, own.distractors])
        assert (index.kind[points] == kind).all()
    mixed = lists["all"]
    assert mixed is not None and set(index.kind[mixed.inter.point2]) == {"illum", "view"}


def test_the_whole_evaluation_is_seeded() -> None:
    patches = patch_set(seed=6)
    desc = np.random.default_rng(7).normal(size=(len(patches), 16)).astype(np.float32)
    first, second = (evaluate_patch_tasks(desc, patches, seed=3, **SMALL) for _ in range(2))
    assert first == second
    assert evaluate_patch_tasks(desc, patches, seed=4, **SMALL) != first
    target = evaluate_patch_tasks(desc, patches, seed=3, distractor_image="target", **SMALL)
    assert target.settings.distractor_image == "target" and target.retrieval != first.retrieval


@pytest.mark.parametrize("convention", ["trapezoid", "step"])
def test_chunked_matching_and_retrieval_equal_the_reference_functions(convention: str) -> None:
    rng = np.random.default_rng(8)
    ref, target = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    target[:20] = ref[:20] + 0.1 * rng.normal(size=(20, 6))
    assert sequence_matching_ap(ref, target, convention) == pytest.approx(matching_ap(ref, target, convention))
    q, positives, pool = rng.normal(size=(7, 6)), rng.normal(size=(7, 5, 6)), rng.normal(size=(40, 6))
    q_group, pool_group = np.arange(7) % 3, rng.integers(0, 3, 40)  # a distractor of the query's group is left out
    kept = q_group[:, None] != pool_group[None, :]
    mine = query_aps(q, positives, pool, q_group, pool_group, [3, 10, 100], convention)
    for k in range(7):  # the query's positives, then the first kept distractors, as one labelled pool
        for column, cut in enumerate([3, 10, 100, 40]):
            chosen = pool[kept[k]][:cut]
            labels = [1] * 5 + [0] * len(chosen)
            reference = retrieval_ap(q[k : k + 1], [1], np.vstack([positives[k], chosen]), labels, convention)
            assert mine[k, column] == pytest.approx(reference, abs=1e-12)


def test_verification_equals_the_reference_on_the_same_list() -> None:
    patches = patch_set(seed=9)
    desc = np.random.default_rng(10).normal(size=(len(patches), 8))
    index = PatchIndex.of(patches)
    flat = np.zeros(len(index), bool)
    lists = draw_lists(index, flat, np.random.default_rng(11), 600, 10, 20)
    results = evaluate_patch_tasks(desc, patches, lists=lists)
    own = lists["all"]
    assert own is not None
    rows = index.level_rows("e")

    def side(pairs, first: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
        return desc[rows[pairs.point1, pairs.image1]] if first else desc[rows[pairs.point2, pairs.image2]]

    neg, pos = own.inter, own.positives
    a = np.vstack([side(neg, True), side(pos, True)[:120]])
    b = np.vstack([side(neg, False), side(pos, False)[:120]])
    same = np.r_[np.zeros(600), np.ones(120)]
    assert results.verification.inter_imbalanced.easy.all == pytest.approx(verification_ap(a, b, same))
    d = np.linalg.norm(
        np.vstack([side(neg, True), side(pos, True)]) - np.vstack([side(neg, False), side(pos, False)]), axis=1
    )
    full = np.r_[np.zeros(600), np.ones(600)][np.argsort(d, kind="stable")]
    assert results.verification.inter_balanced.easy.all == pytest.approx(roc_auc(full))


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
    with pytest.raises(ValueError, match="AP convention"):
        evaluate_patch_tasks(np.zeros((len(patches), 4)), patches, ap="area")


def test_results_print_as_a_table_and_round_trip_as_json() -> None:
    patches = patch_set()
    results = evaluate_patch_tasks(perfect(patches), patches, **SMALL)
    table = results.table()
    assert "verification (imbalanced)" in table and "retrieval" in table and "100.00" in table
    assert "trapezoid AP" in table and "AUC" in table
    doc = PatchEvalDocument(created="now", model="raw", describer="raw pixels", patch_size=32, **dict(results))
    assert PatchEvalDocument.model_validate_json(doc.model_dump_json()) == doc
    only_view = patch_set(n_seq=2)
    view = PatchSet(
        *(
            getattr(only_view, f)[only_view.sequences == "v_scene1"]
            for f in ("images", "labels", "sequences", "patch_index", "image_names")
        )
    )
    lonely = evaluate_patch_tasks(perfect(view), view, **SMALL)
    assert lonely.matching.easy.illum is None and lonely.matching.easy.view == 1.0
    assert lonely.verification.imbalanced.easy.illum is None and lonely.retrieval.easy.illum is None
    assert " - " in lonely.table()
