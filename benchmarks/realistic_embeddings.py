"""Face embeddings of any number of people, drawn from a model fitted to real ones, and checked against them.

    python benchmarks/realistic_embeddings.py [--models dlib-resnet arcface-mbf] [-o FILE]

Uniformly random directions are the easiest gallery to tell apart and the hardest for a graph index: real
face embeddings share directions, cluster by person, and some people look alike. This module fits a model
to real embeddings and draws galleries of any size from it (``benchmarks/gallery_scale.py --embeddings
realistic``).

* **Real embeddings**: every photo of ``../shared/data`` (lfw-devtrain, celeba-199, orl, yale, qmul-multiview:
  18,466 photos of 4,321 people) embedded by each model, photos without a face left out; cached in
  ``~/.cache/facemetric/bench/``.
* **The model** (:class:`EmbeddingModel`): a person's centre ``c ~ N(mu, S_c)``, each photo
  ``normalize(c + r)`` with ``r ~ N(0, S_w)``. ``S_w`` is the pooled covariance of the photos around their
  person's mean (people with 2 photos or more). ``S_c`` is the covariance of the people's means less
  the part their few photos add (``mean(1/k) S_w``, by the method of moments), its negative eigenvalues
  set to 0. A Gaussian alone gives too few close pairs of different people (the real sets' upper tail:
  look-alikes, and perhaps one person under two names across sets), so a fraction of the people are drawn
  near another one; the fraction and closeness are chosen, on a small grid, as those whose synthetic set
  matches the real nearest-other-person scores best. Crowding adds more look-alikes as the gallery grows.
* **The check**: a synthetic set of the real one's shape (as many people, as many photos each) against
  the real one, on two distributions: the cosine of two photos of one person, and each photo's highest
  cosine to a photo of anyone else (its nearest other person, what a false accept is made of). The
  two-sample Kolmogorov-Smirnov statistic D says how far apart they are (0: the same, 1: disjoint);
  the means and 1st / 50th / 99th percentiles are given with it. Prints JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from common import SHARED_DATA, print_and_write

SETS = ("lfw-devtrain/images", "celeba-199", "orl", "yale", "qmul-multiview")
CACHE = Path.home() / ".cache" / "facemetric" / "bench"


def _file_name(model: str) -> str:
    """``model`` (a name with options, or a path) as part of a cache file's name."""
    return model.replace("/", "_").replace("?", "_").replace("&", "_")


def real_embeddings(model: str, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(unit embeddings, person labels) of every photo of :data:`SETS` in which ``model`` finds a face (cached)."""
    path = CACHE / f"shared-embeddings-{_file_name(model)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["embeddings"], z["labels"]
    from facemetric.data.sources import scan_source
    from facemetric.embedders import load_embedder

    embedder = load_embedder(model)
    files: list[Path] = []
    labels: list[str] = []
    for name in SETS:
        manifest = scan_source(SHARED_DATA / name)
        files += [Path(p) for p in manifest.paths]
        labels += [f"{name.split('/')[0]}/{who}" for who in manifest.identities]
    batch = embedder.embed_files(files, progress=progress)
    emb, who = batch.embeddings.astype(np.float32), np.asarray(labels)[batch.index]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, embeddings=emb, labels=who)
    return emb, who


def _covariance(samples: np.ndarray) -> np.ndarray:
    """The covariance of zero-mean ``samples``: as measured where there are many more samples than dimensions,
    else shrunk towards a multiple of the identity (Ledoit-Wolf), which would flatten the real one's shape."""
    if len(samples) >= 4 * samples.shape[1]:
        return samples.T @ samples / len(samples)
    from sklearn.covariance import LedoitWolf

    return LedoitWolf(assume_centered=True).fit(samples).covariance_


def _factor(cov: np.ndarray) -> np.ndarray:
    """``L`` with ``L @ L.T == cov`` for a covariance with negative eigenvalues clipped to 0."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))).astype(np.float32)


LOOKALIKE_GRID = [(f, b) for f in (0.0, 0.05, 0.1, 0.2, 0.3) for b in (0.1, 0.3, 0.5)]


@dataclass
class EmbeddingModel:
    """Person centres ``mean + centre_factor @ z`` and photos ``normalize(centre + within_factor @ z)``; a fraction
    ``lookalike`` of the people are drawn near another one of their chunk (``mean + sqrt(1 - b) (c_j - mean) +
    sqrt(b) centre_factor @ z``, ``b`` = ``lookalike_spread``): what a Gaussian alone does not give, the real
    sets' upper tail of scores between different people."""

    mean: np.ndarray
    centre_factor: np.ndarray
    within_factor: np.ndarray
    lookalike: float = 0.0
    lookalike_spread: float = 0.3

    @property
    def dim(self) -> int:
        return len(self.mean)

    @classmethod
    def fit(cls, emb: np.ndarray, labels: np.ndarray) -> EmbeddingModel:
        names, person, counts = np.unique(labels, return_inverse=True, return_counts=True)
        means = np.zeros((len(names), emb.shape[1]), np.float64)
        np.add.at(means, person, emb)
        means /= counts[:, None]
        several = counts[person] >= 2
        residuals = (emb - means[person])[several] * np.sqrt(counts[person][several] / (counts[person][several] - 1))[
            :, None
        ]
        within = _covariance(residuals)  # unbiased: a photo's offset from a mean it is part of is shrunk by (k-1)/k
        centre = np.mean(means, axis=0)
        between = _covariance(means - centre) - float(np.mean(1.0 / counts)) * within
        gaussian = cls(centre.astype(np.float32), _factor(between), _factor(within))
        return gaussian.with_lookalikes(emb, person, counts)

    def with_lookalikes(self, emb: np.ndarray, person: np.ndarray, counts: np.ndarray) -> EmbeddingModel:
        """This model with the look-alike fraction and spread of :data:`LOOKALIKE_GRID` whose synthetic set of the
        real one's shape comes closest to the real nearest-other-person scores (Kolmogorov-Smirnov D)."""
        from scipy.stats import ks_2samp

        _, real_other = score_distributions(emb, person)
        best: tuple[float, EmbeddingModel] | None = None
        for fraction, spread in LOOKALIKE_GRID:
            if fraction == 0.0 and spread != LOOKALIKE_GRID[0][1]:
                continue  # no look-alikes: the spread does not matter
            candidate = EmbeddingModel(self.mean, self.centre_factor, self.within_factor, fraction, spread)
            synthetic, synthetic_person = candidate.dataset(np.random.default_rng(1), counts)
            d = float(ks_2samp(real_other, score_distributions(synthetic, synthetic_person)[1]).statistic)
            if best is None or d < best[0]:
                best = (d, candidate)
        assert best is not None
        return best[1]

    def centres(self, rng: np.random.Generator, n: int) -> np.ndarray:
        z = rng.standard_normal((n, self.dim), dtype=np.float32)
        centres = self.mean + z @ self.centre_factor.T
        near = np.flatnonzero(rng.random(n) < self.lookalike)
        if len(near):
            other = rng.integers(0, n, len(near))
            z = rng.standard_normal((len(near), self.dim), dtype=np.float32)
            b = self.lookalike_spread
            centres[near] = (
                self.mean + np.sqrt(1 - b) * (centres[other] - self.mean) + np.sqrt(b) * (z @ self.centre_factor.T)
            )
        return centres

    def photos(self, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
        """One unit embedding per centre."""
        z = rng.standard_normal(centres.shape, dtype=np.float32)
        v = centres + z @ self.within_factor.T
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def dataset(self, rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Photos of ``len(counts)`` new people, ``counts[p]`` each: (embeddings, person index)."""
        person = np.repeat(np.arange(len(counts)), counts)
        return self.photos(rng, self.centres(rng, len(counts))[person]), person

    def save(self, path: Path) -> None:
        np.savez(
            path,
            mean=self.mean,
            centre_factor=self.centre_factor,
            within_factor=self.within_factor,
            lookalike=np.array([self.lookalike, self.lookalike_spread]),
        )

    @classmethod
    def load(cls, path: Path) -> EmbeddingModel:
        with np.load(path) as z:
            fraction, spread = (float(x) for x in z["lookalike"])
            return cls(z["mean"], z["centre_factor"], z["within_factor"], fraction, spread)


@functools.cache
def fitted(model: str) -> EmbeddingModel:
    """The model fitted to ``model``'s real embeddings (fitted once and cached on disk; read once per process:
    a gallery draws from it chunk by chunk)."""
    path = CACHE / f"embedding-model-2-{_file_name(model)}.npz"  # bump when the fit changes
    if not path.is_file():
        fit = EmbeddingModel.fit(*real_embeddings(model))
        CACHE.mkdir(parents=True, exist_ok=True)
        fit.save(path)
    return EmbeddingModel.load(path)


def score_distributions(emb: np.ndarray, person: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(every same-person cosine, each photo's highest cosine to another person's photo)."""
    same, nearest_other = [], np.empty(len(emb), np.float32)
    for start in range(0, len(emb), chunk):
        block = emb[start : start + chunk] @ emb.T
        rows = np.arange(start, min(start + chunk, len(emb)))
        mine = person[rows][:, None] == person[None, :]
        later = np.arange(len(emb))[None, :] > rows[:, None]
        same.append(block[mine & later])
        nearest_other[rows] = np.where(mine, -np.inf, block).max(axis=1)
    return np.concatenate(same), nearest_other


def _summary(values: np.ndarray) -> dict[str, float]:
    p1, p50, p99 = np.percentile(values, [1, 50, 99])
    return {
        "mean": round(float(values.mean()), 4),
        "p1": round(float(p1), 4),
        "p50": round(float(p50), 4),
        "p99": round(float(p99), 4),
    }


def check(model: str, seed: int = 0) -> dict[str, Any]:
    """The fitted model's synthetic set against the real one (module docstring)."""
    from scipy.stats import ks_2samp

    emb, labels = real_embeddings(model)
    _, person, counts = np.unique(labels, return_inverse=True, return_counts=True)
    synthetic, synthetic_person = fitted(model).dataset(np.random.default_rng(seed + 100), counts)
    real_same, real_other = score_distributions(emb, person)
    syn_same, syn_other = score_distributions(synthetic, synthetic_person)
    uniform = np.random.default_rng(seed).standard_normal(emb.shape).astype(np.float32)
    uniform /= np.linalg.norm(uniform, axis=1, keepdims=True)
    _, uniform_other = score_distributions(uniform, person)
    fit = fitted(model)
    return {
        "photos": len(emb),
        "people": len(counts),
        "dim": int(emb.shape[1]),
        "lookalike_fraction": fit.lookalike,
        "lookalike_spread": fit.lookalike_spread,
        "same_person": {
            "real": _summary(real_same),
            "synthetic": _summary(syn_same),
            "ks_d": round(float(ks_2samp(real_same, syn_same).statistic), 4),
        },
        "nearest_other_person": {
            "real": _summary(real_other),
            "synthetic": _summary(syn_other),
            "ks_d": round(float(ks_2samp(real_other, syn_other).statistic), 4),
            "uniform_directions": _summary(uniform_other),
            "uniform_ks_d": round(float(ks_2samp(real_other, uniform_other).statistic), 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dlib-resnet", "arcface-mbf"])
    parser.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    report = {"benchmark": "realistic-embeddings", "date": date.today().isoformat(), "sets": list(SETS), "models": {}}
    for model in args.models:
        report["models"][model] = check(model)
        print(model, json.dumps(report["models"][model]), flush=True)
    print_and_write(report, args.output)


if __name__ == "__main__":
    main()
