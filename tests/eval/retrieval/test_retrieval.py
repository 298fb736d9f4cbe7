from __future__ import annotations

import json
import tracemalloc

import faiss
import numpy as np
import pytest

from facemetric.eval.retrieval.metrics import retrieval_metrics
from facemetric.eval.retrieval.search import knn

# Hand-computed case: 6 unit vectors in 2-D at these angles (degrees); the
# similarity is cos(angle difference), so ranking = smallest angle first.
#   idx  angle  class
#    0     0      A
#    1    10      A
#    2    25      B
#    3    45      A
#    4   100      B
#    5   180      C   (singleton: R = 0, left out of the means)
# Leave-one-out rankings (angle differences) and relevance:
#   q0 A: 1(10) 2(25) 3(45) 4(100) 5(180)  rel 1 0 1 0 0  R=2
#         P@1=1  RP=1/2  MAP@R=(1/1)/2=1/2 (the hit at rank 3 > R is ignored)
#   q1 A: 0(10) 2(15) 3(35) 4(90)  5(170)  rel 1 0 1 0 0  R=2  -> 1, 1/2, 1/2
#   q2 B: 1(15) 3(20) 0(25) 4(75)  5(155)  rel 0 0 0 1 0  R=1  -> 0, 0, 0
#   q3 A: 2(20) 1(35) 0(45) 4(55)  5(135)  rel 0 1 1 0 0  R=2
#         P@1=0  RP=1/2  MAP@R=(P(2)=1/2)/2=1/4
#   q4 B: 3(55) 2(75) 5(80) 1(90)  0(100)  rel 0 1 0 0 0  R=1  -> 0, 0, 0
# Means over the 5 queries with R > 0:
#   P@1 = 2/5 = 0.4   RP = 1.5/5 = 0.3   MAP@R = 1.25/5 = 0.25
#   Recall@1 = 2/5 = 0.4 (q0, q1)   Recall@3 = 4/5 = 0.8 (all but q2)
# With max_r=1, q0, q1 and q3 are capped to R=1: RP = MAP@R = (1+1+0+0+0)/5.
ANGLES = np.deg2rad([0.0, 10.0, 25.0, 45.0, 100.0, 180.0])
HAND_X = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1).astype(np.float32)
HAND_Y = np.array(["A", "A", "B", "A", "B", "C"])


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """Tiny searches are dominated by OpenMP start-up on a busy machine: use one thread."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, dim: int, n_classes: int, noise: float, seed: int):
    """L2-normalised points around random class centres, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim))
    y = rng.integers(0, n_classes, size=n)
    x = centres[y] + noise * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


def brute_force(q, q_labels, r=None, r_labels=None, ks=(1, 5, 10), max_r=None):
    """Reference: full similarity matrix, argsort, one Python loop per query."""
    loo = r is None
    if loo:
        r, r_labels = q, q_labels
    sim = q.astype(np.float64) @ r.astype(np.float64).T
    if loo:
        np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")
    if loo:
        order = order[:, :-1]  # self is last (-inf)
    p1, rp, mapr, rec = [], [], [], {k: [] for k in ks}
    for i in range(len(q)):
        big_r = int(np.sum(r_labels == q_labels[i])) - int(loo)
        if big_r == 0:
            continue
        if max_r is not None:
            big_r = min(big_r, max_r)
        rel = (r_labels[order[i]] == q_labels[i]).astype(float)
        p1.append(rel[0])
        rp.append(rel[:big_r].sum() / big_r)
        prec = np.cumsum(rel) / np.arange(1, len(rel) + 1)
        mapr.append(np.sum(prec[:big_r] * rel[:big_r]) / big_r)
        for k in ks:
            rec[k].append(float(rel[:k].any()))
    return {
        "precision_at_1": np.mean(p1),
        "r_precision": np.mean(rp),
        "map_at_r": np.mean(mapr),
        "recall_at_k": {str(k): np.mean(v) for k, v in rec.items()},
    }, order


def assert_metrics_close(got, want, tol=1e-6):
    for key in ("precision_at_1", "r_precision", "map_at_r"):
        assert got[key] == pytest.approx(want[key], abs=tol), key
    assert got["recall_at_k"].keys() == want["recall_at_k"].keys()
    for k, v in want["recall_at_k"].items():
        assert got["recall_at_k"][k] == pytest.approx(v, abs=tol), k


# --- hand-computed ---------------------------------------------------------


def test_hand_computed_knn_ranking():
    idx, scores = knn(HAND_X, HAND_X, 5, exclude_self=True)
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    assert idx.tolist() == [
        [1, 2, 3, 4, 5],
        [0, 2, 3, 4, 5],
        [1, 3, 0, 4, 5],
        [2, 1, 0, 4, 5],
        [3, 2, 5, 1, 0],
        [4, 3, 2, 1, 0],
    ]
    assert scores[0] == pytest.approx(np.cos(np.deg2rad([10, 25, 45, 100, 180])), abs=1e-6)


def test_hand_computed_metrics():
    m = retrieval_metrics(HAND_X, HAND_Y, ks=(1, 3)).model_dump()
    assert m["precision_at_1"] == pytest.approx(0.4)
    assert m["r_precision"] == pytest.approx(0.3)
    assert m["map_at_r"] == pytest.approx(0.25)
    assert m["recall_at_k"] == {"1": pytest.approx(0.4), "3": pytest.approx(0.8)}
    assert m["queries_without_positives"] == 1
    assert m["num_evaluated"] == 5 and m["num_queries"] == 6
    assert m["queries_r_capped"] == 0
    assert m["exact"] is True and m["leave_one_out"] is True
    json.dumps(m)  # plain Python values


def test_hand_computed_r_capping():
    m = retrieval_metrics(HAND_X, HAND_Y, ks=(1,), max_r=1).model_dump()
    assert m["queries_r_capped"] == 3  # q0, q1, q3 have R=2
    assert m["precision_at_1"] == pytest.approx(0.4)
    assert m["r_precision"] == pytest.approx(0.4)
    assert m["map_at_r"] == pytest.approx(0.4)


def test_hand_computed_gallery_mode():
    # Queries q2 (25 deg, B) and q3 (45 deg, A) against references 0, 1, 4, 5:
    #   q2 B: 1A(15) 0A(25) 4B(75) 5C(155)  rel 0 0 1 0  R=1 -> P@1 0, RP 0, MAP@R 0
    #   q3 A: 1A(35) 0A(45) 4B(55) 5C(135)  rel 1 1 0 0  R=2 -> P@1 1, RP 1, MAP@R (1+1)/2
    # Means: P@1 = RP = MAP@R = 0.5; Recall@1 = 0.5, Recall@3 = 1 (q2 hits at rank 3).
    ref = [0, 1, 4, 5]
    m = retrieval_metrics(
        HAND_X[[2, 3]],
        HAND_Y[[2, 3]],
        ks=(1, 3),
        reference_embeddings=HAND_X[ref],
        reference_labels=HAND_Y[ref],
    ).model_dump()
    assert m["precision_at_1"] == pytest.approx(0.5)
    assert m["r_precision"] == pytest.approx(0.5)
    assert m["map_at_r"] == pytest.approx(0.5)
    assert m["recall_at_k"] == {"1": pytest.approx(0.5), "3": pytest.approx(1.0)}
    assert m["leave_one_out"] is False and m["queries_without_positives"] == 0


# --- against brute force and PML -------------------------------------------


@pytest.fixture(scope="module")
def data():
    x, y = clustered(300, 16, 10, noise=0.9, seed=0)
    y[:2] = [100, 101]  # two singleton classes
    return x, y


def test_matches_brute_force(data):
    x, y = data
    want, order = brute_force(x, y, ks=(1, 5, 10))
    got = retrieval_metrics(x, y, ks=(1, 5, 10)).model_dump()
    assert 0.2 < want["map_at_r"] < 0.9  # not a degenerate case
    assert_metrics_close(got, want)
    assert got["queries_without_positives"] == 2
    idx, scores = knn(x, x, 10, exclude_self=True)
    np.testing.assert_array_equal(idx, order[:, :10])
    sim = x.astype(np.float64) @ x.astype(np.float64).T
    np.testing.assert_allclose(scores, np.take_along_axis(sim, idx, axis=1), atol=1e-6)


def test_matches_brute_force_with_r_capped(data):
    x, y = data
    want, _ = brute_force(x, y, ks=(1, 2), max_r=5)
    got = retrieval_metrics(x, y, ks=(1, 2), max_r=5).model_dump()
    assert_metrics_close(got, want)
    assert got["k_searched"] == 5
    assert got["queries_r_capped"] == int(np.sum(np.bincount(y)[y] - 1 > 5))
    uncapped = retrieval_metrics(x, y, ks=(1, 2), max_r=None).model_dump()
    assert uncapped["map_at_r"] != pytest.approx(got["map_at_r"])


def test_gallery_matches_brute_force(data):
    x, y = data
    q, qy, r, ry = x[:100], y[:100], x[100:], y[100:]
    want, order = brute_force(q, qy, r, ry, ks=(1, 3))
    got = retrieval_metrics(q, qy, ks=(1, 3), reference_embeddings=r, reference_labels=ry).model_dump()
    assert_metrics_close(got, want)
    idx, _ = knn(q, r, 4)
    np.testing.assert_array_equal(idx, order[:, :4])


def test_matches_pytorch_metric_learning(data):
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    x, y = data
    calc = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count",
    )
    # Leave-one-out: no reference -> PML sets ref_includes_query=True, searches
    # k + 1 and drops each query's own index (and skips lone-label queries).
    for pml in (
        calc.get_accuracy(x, y),
        calc.get_accuracy(x, y, x, y, ref_includes_query=True),
    ):
        ours = retrieval_metrics(x, y, ks=(1,)).model_dump()
        assert ours["precision_at_1"] == pytest.approx(pml["precision_at_1"], abs=1e-6)
        assert ours["r_precision"] == pytest.approx(pml["r_precision"], abs=1e-6)
        assert ours["map_at_r"] == pytest.approx(pml["mean_average_precision_at_r"], abs=1e-6)
    # Separate gallery.
    q, qy, r, ry = x[:100], y[:100], x[100:], y[100:]
    pml = calc.get_accuracy(q, qy, r, ry, ref_includes_query=False)
    ours = retrieval_metrics(q, qy, ks=(1,), reference_embeddings=r, reference_labels=ry).model_dump()
    assert ours["precision_at_1"] == pytest.approx(pml["precision_at_1"], abs=1e-6)
    assert ours["r_precision"] == pytest.approx(pml["r_precision"], abs=1e-6)
    assert ours["map_at_r"] == pytest.approx(pml["mean_average_precision_at_r"], abs=1e-6)


# --- self-exclusion, chunking, IVF, memory ---------------------------------


def test_self_exclusion_by_index_with_duplicates():
    x, y = clustered(40, 8, 4, noise=0.5, seed=1)
    x[1] = x[0]
    x[2] = x[0]
    y[:3] = [7, 8, 9]  # three identical vectors, three different classes
    idx, scores = knn(x, x, 3, exclude_self=True)
    for i in range(len(x)):
        assert i not in idx[i]
    for i in range(3):
        # the two other copies (score 1) come first, whatever order FAISS gave the ties
        assert set(idx[i, :2].tolist()) == {0, 1, 2} - {i}
        assert scores[i, :2] == pytest.approx([1.0, 1.0], abs=1e-6)
    m = retrieval_metrics(x, y, ks=(1,)).model_dump()
    want, _ = brute_force(x, y, ks=(1,))
    assert_metrics_close(m, want)


def test_self_exclusion_when_self_falls_outside_k_plus_one():
    # Ten identical vectors: with k=1, FAISS's top 2 for a copy may not contain
    # the copy itself; the last column is dropped then, never leaving self in.
    x = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (10, 1))
    x = np.vstack([x, [[1.0, 0.0]], [[0.0, 1.0]]]).astype(np.float32)
    for k in (1, 2, 5):
        idx, scores = knn(x, x, k, exclude_self=True)
        assert idx.shape == (12, k)
        for i in range(10):
            assert i not in idx[i]
            assert set(idx[i].tolist()) <= set(range(10))
            assert np.all(scores[i] == pytest.approx(1.0, abs=1e-6))


def test_chunking_gives_identical_results(data):
    x, y = data
    i_small, s_small = knn(x, x, 10, exclude_self=True, chunk=7)
    i_big, s_big = knn(x, x, 10, exclude_self=True, chunk=10_000)
    np.testing.assert_array_equal(i_small, i_big)
    np.testing.assert_array_equal(s_small, s_big)
    m_small = retrieval_metrics(x, y, chunk=7).model_dump()
    m_big = retrieval_metrics(x, y, chunk=10_000).model_dump()
    assert m_small == m_big


def test_ivf_close_to_exact():
    x, y = clustered(2000, 32, 20, noise=1.3, seed=2)
    exact = retrieval_metrics(x, y, ks=(1,)).model_dump()
    approx = retrieval_metrics(x, y, ks=(1,), index="ivf", nprobe=8).model_dump()
    assert 0.5 < exact["precision_at_1"] < 0.99  # not trivially perfect
    assert approx["exact"] is False and approx["index"] == "ivf"
    assert abs(approx["precision_at_1"] - exact["precision_at_1"]) <= 0.02
    # Probing every cell makes IVF exhaustive: same neighbours as the flat index.
    nlist = 50
    i_ivf, s_ivf = knn(x[:200], x, 5, index="ivf", nlist=nlist, nprobe=nlist)
    i_flat, s_flat = knn(x[:200], x, 5)
    np.testing.assert_array_equal(i_ivf, i_flat)
    np.testing.assert_allclose(s_ivf, s_flat, atol=1e-6)


def test_knn_never_allocates_n_by_n():
    n, d, k = 10_000, 32, 5
    x, _ = clustered(n, d, 50, noise=1.0, seed=3)
    n_by_n = n * n * 4  # 400 MB as float32
    tracemalloc.start()
    try:
        probe = np.empty(2_000_000, dtype=np.float32)  # tracemalloc sees numpy buffers
        assert tracemalloc.get_traced_memory()[1] >= probe.nbytes
        del probe
        tracemalloc.reset_peak()
        idx, scores = knn(x, x, k, exclude_self=True, chunk=500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert idx.shape == (n, k) and scores.shape == (n, k)
    # outputs are n*k*12 bytes = 0.6 MB; allow a chunk x N block (20 MB) and more
    assert peak < n_by_n / 8, f"peak {peak / 1e6:.1f} MB"


# --- bad input -------------------------------------------------------------


def test_bad_input_errors():
    x, y = HAND_X, HAND_Y
    with pytest.raises(ValueError, match="one label per row"):
        retrieval_metrics(x, y[:-1])
    with pytest.raises(ValueError, match="2-D"):
        retrieval_metrics(x[0], y[:1])
    with pytest.raises(ValueError, match="2-D"):
        knn(x.ravel(), x, 1)
    with pytest.raises(ValueError, match="labels must be 1-D"):
        retrieval_metrics(x, y[:, None])
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn(x, x, 0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        knn(x, x, 1.5)
    with pytest.raises(ValueError, match=">= 1"):
        retrieval_metrics(x, y, ks=(0, 1))
    with pytest.raises(ValueError, match="k=6 is more than the 5 references"):
        knn(x, x, 6, exclude_self=True)
    with pytest.raises(ValueError, match="same dimension"):
        knn(x, np.ones((3, 3), np.float32), 1)
    with pytest.raises(ValueError, match="queries to be the references"):
        knn(x, x[::-1], 1, exclude_self=True)
    with pytest.raises(ValueError, match="NaN"):
        knn(np.full((2, 2), np.nan), x, 1)
    with pytest.raises(ValueError, match="index must be one of"):
        retrieval_metrics(x, y, index="hnsw")
    with pytest.raises(ValueError, match="both reference_embeddings and reference_labels"):
        retrieval_metrics(x, y, reference_embeddings=x)
    with pytest.raises(ValueError, match="nothing to retrieve"):
        retrieval_metrics(x, np.arange(6))
    with pytest.raises(ValueError, match="max_r must be >= 1"):
        retrieval_metrics(x, y, max_r=0)
