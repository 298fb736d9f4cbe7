"""The model of face embeddings the gallery benchmark draws from: fitted back from data it generated."""

from __future__ import annotations

import numpy as np

from realistic_embeddings import EmbeddingModel, score_distributions


def _known(dim: int = 8) -> EmbeddingModel:
    rng = np.random.default_rng(0)
    mean = np.zeros(dim, np.float32)
    mean[0] = 1.0  # every person leans one way, as real embeddings share directions
    return EmbeddingModel(
        mean, (rng.standard_normal((dim, dim)) * 0.15).astype(np.float32), np.eye(dim, dtype=np.float32) * 0.1
    )


def test_fit_recovers_the_centres_and_the_spread_around_them() -> None:
    truth = _known()
    counts = np.random.default_rng(1).integers(1, 6, size=3000)  # 1 to 5 photos a person, as in real sets
    emb, person = truth.dataset(np.random.default_rng(2), counts)
    fit = EmbeddingModel.fit(emb, person)
    # the photos are normalised, so compare what they make: the two score distributions, not raw parameters
    again, again_person = fit.dataset(np.random.default_rng(3), counts)
    same, other = score_distributions(emb, person)
    same_fit, other_fit = score_distributions(again, again_person)
    assert abs(np.median(same) - np.median(same_fit)) < 0.02
    assert abs(np.median(other) - np.median(other_fit)) < 0.02
    assert np.allclose(np.linalg.norm(again, axis=1), 1.0, atol=1e-5)
    # photos are normalised, so the raw parameters are not those that made the data; but fitting the fitted
    # model's own photos gives it back (a fixed point): its spreads within 10 %
    refit = EmbeddingModel.fit(again, again_person)
    for a, b in ((fit.centre_factor, refit.centre_factor), (fit.within_factor, refit.within_factor)):
        assert abs(np.trace(b @ b.T) / np.trace(a @ a.T) - 1) < 0.1
    np.testing.assert_allclose(refit.mean, fit.mean, atol=0.05)  # normalising drifts the mean a little


def test_score_distributions_by_hand() -> None:
    emb = np.array([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]], np.float32)
    person = np.array([0, 0, 1, 2])
    same, other = score_distributions(emb, person, chunk=3)
    assert same.tolist() == [np.float32(0.6)]
    np.testing.assert_allclose(other, [0.0, 0.8, 0.8, 0.0], atol=1e-6)
