"""The evaluation suite on embeddings, FAR calibration, and the evaluation folder it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facemetric.eval.identification.protocol import build_open_set_split
from facemetric.eval.suite.document import EVAL_FORMAT as FORMAT
from facemetric.eval.suite.embeddings import PairsInput, evaluate_embeddings, worst_errors
from facemetric.eval.suite.folder import is_eval_dir, write_eval_dir
from facemetric.eval.verification.metrics import far_calibration
from facemetric.eval.verification.protocol import build_pair_protocol


def test_far_calibration_on_a_hand_made_case() -> None:
    impostors = np.arange(100) / 100.0
    genuine = np.array([0.5, 0.95, 0.99, 1.2])
    scores = np.concatenate([impostors, genuine])
    labels = np.concatenate([np.zeros(100, int), np.ones(4, int)])
    out = {far: c.model_dump() for far, c in far_calibration(scores, labels, fars=(0.05, 0.001), n_folds=2).items()}
    five = out["5e-02"]
    # at most floor(0.05 * 100) = 5 impostors accepted: the 5th highest, 0.95, accepts 0.95..0.99
    assert five["threshold"] == pytest.approx(0.95) and five["achieved_far"] == pytest.approx(0.05)
    assert five["tar"] == pytest.approx(0.75) and not five["below_resolution"]
    tiny = out["1e-03"]  # no false accept allowed: just above the highest impostor
    assert 0.99 < tiny["threshold"] < 0.99 + 1e-12 and tiny["achieved_far"] == 0.0
    assert tiny["tar"] == pytest.approx(0.25) and tiny["below_resolution"]


def test_calibrated_far_holds_on_held_out_folds() -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0, 1, 200_000), rng.normal(3, 1, 20_000)])
    labels = np.concatenate([np.zeros(200_000, int), np.ones(20_000, int)])
    out = {far: c.model_dump() for far, c in far_calibration(scores, labels, fars=(1e-2, 1e-3)).items()}
    # each fold's threshold comes from the other 180k impostors; 20k held-out impostors per fold
    assert out["1e-02"]["held_out_far"] == pytest.approx(0.01, abs=7e-4)
    assert out["1e-03"]["held_out_far"] == pytest.approx(0.001, abs=2.5e-4)
    # TAR at the calibrated threshold: P(N(3,1) >= z_0.99 = 2.326) = 0.75
    assert out["1e-02"]["held_out_tar"] == pytest.approx(0.7502, abs=0.01)


def test_worst_errors_are_the_extreme_wrong_scores() -> None:
    scores = np.array([0.9, 0.2, 0.8, 0.1, 0.6, 0.3, 0.7])
    same = np.array([0, 1, 0, 1, 1, 0, 0])
    worst = worst_errors(scores, same, threshold=0.5, per_kind=2)
    assert worst["false_accept"].tolist() == [0, 2]  # impostors 0.9, 0.8 (0.7 dropped: per_kind)
    assert worst["false_reject"].tolist() == [3, 1]  # genuine 0.1, 0.2


def _clustered(n_ids: int = 40, per_id: int = 8, dim: int = 32, noise: float = 0.35, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    y = np.repeat(np.arange(n_ids), per_id)
    emb = centres[y] + noise * rng.normal(size=(len(y), dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    names = np.array([f"p{k:02d}" for k in y])
    images = rng.integers(0, 256, size=(len(y), 8, 8, 3), dtype=np.uint8)
    return emb.astype(np.float32), names, images


def test_suite_runs_every_protocol_consistently(tmp_path: Path) -> None:
    emb, names, images = _clustered()
    paths = [f"{n}/{k}.png" for k, n in enumerate(names)]
    protocol = build_pair_protocol(names, 5, 30, seed=0)
    pairs = PairsInput(protocol.i, protocol.j, protocol.same, protocol.fold, "test")
    split = build_open_set_split(names, 0.3, 1, seed=0).subset
    result = evaluate_embeddings(emb, images, paths, names, pairs=pairs, open_set=split, retrieval=True, far=0.05)

    v = result.summary.verification
    assert v.accuracy > 0.95 and v.folds_from_file and v.n_folds == 5
    assert v.threshold.value == pytest.approx(np.median(v.fold_thresholds))
    s, same = result.scores["scores"], result.scores["same"]
    np.testing.assert_allclose(s, np.einsum("nd,nd->n", emb[protocol.i], emb[protocol.j]), atol=1e-6)
    t = v.threshold.value
    assert v.errors.model_dump() == {
        "false_accepts": int(((same == 0) & (s >= t)).sum()),
        "false_rejects": int(((same == 1) & (s < t)).sum()),
    }
    e = result.errors
    for kind, a, b, score in zip(e["kind"], e["path1"], e["path2"], e["score"]):
        k = next(k for k in range(len(s)) if paths[protocol.i[k]] == a and paths[protocol.j[k]] == b)
        assert score == pytest.approx(s[k]) and (kind == "false_accept") == (same[k] == 0)
    if len(e["kind"]):
        first = int(np.flatnonzero(np.array(paths) == e["path1"][0])[0])
        assert np.array_equal(e["image1"][0], images[first])

    ident = result.summary.identification
    gallery = split == "gallery"
    test = np.isin(split, ("test_known", "test_unknown"))
    sims = emb[test] @ emb[gallery].T  # one gallery image per person: max template = that image
    top = names[gallery][sims.argmax(1)]
    threshold = ident.open_set.threshold.value
    expected = [n if sc >= threshold else "no correspondence" for n, sc in zip(top, sims.max(1))]
    ids, decisions = result.decisions
    assert decisions == expected and ids == [p for p, keep in zip(paths, test) if keep]
    known = split == "test_known"
    assert ident.closed_set.rank1 == pytest.approx(np.mean(top[known[test]] == names[known]))

    r = result.summary.retrieval
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    assert r.precision_at_1 == pytest.approx(np.mean(names[sim.argmax(1)] == names))


def test_eval_folder_is_complete_and_never_mixes_two_evaluations(tmp_path: Path) -> None:
    emb, names, images = _clustered(12, 4)
    protocol = build_pair_protocol(names, 2, 10, seed=0)
    pairs = PairsInput(protocol.i, protocol.j, protocol.same, protocol.fold, "test")
    paths = [f"{k}.png" for k in range(len(names))]
    full = evaluate_embeddings(emb, images, paths, names, pairs=pairs, open_set=build_open_set_split(names, 0.3).subset)
    meta = {"run_dir": None, "embedding_dim": emb.shape[1]}
    out = write_eval_dir(tmp_path / "ev", full, {"checkpoint": "c.pt", **meta})
    assert is_eval_dir(out) and {p.name for p in out.iterdir()} == {
        "eval.json",
        "scores.npz",
        "errors.npz",
        "embeddings.npz",
        "decisions.csv",
    }
    doc = json.loads((out / "eval.json").read_text())
    assert doc["format"] == FORMAT and doc["checkpoint"] == "c.pt" and doc["identification"]["closed_set"]["rank1"] >= 0
    only_retrieval = evaluate_embeddings(emb, images, paths, names, retrieval=True)
    write_eval_dir(out, only_retrieval, {"checkpoint": "d.pt", **meta})
    assert {p.name for p in out.iterdir()} == {"eval.json", "embeddings.npz"}
    assert json.loads((out / "eval.json").read_text())["verification"] is None  # not run: null, never stale
    assert not is_eval_dir(tmp_path)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_embeddings(emb, images, paths, names)
