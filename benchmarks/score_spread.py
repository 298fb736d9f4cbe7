"""The spread of each pretrained model's cosines between different people: a fusion's default weights.

    python benchmarks/score_spread.py [--pairs 2000] [--models dlib-resnet sface arcface-mbf]

A fusion (``dlib-resnet+sface``) averages its members' cosines; dlib's are compressed near 1 (two different
people about 0.9 +- 0.03) while SFace's and ArcFace's spread over about +-0.1 around 0, so an unweighted mean
would let the widest scale decide. Each pretrained model declares ``score_spread``: the standard deviation
of its cosines over random pairs of different people, measured here on LFW development-train photos of
people who are in no pair of ``pairsDevTrain.txt`` (the pairs the model benchmark scores), faces found
by YuNet; the fusion weighs each member by its inverse (a z-score up to a constant). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

from common import SHARED_DATA
from facemetric.embedders import load_embedder
from facemetric.eval.verification.lfw_pairs import parse_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "lfw-devtrain")
    parser.add_argument("--pairs", type=int, default=2000, help="random pairs of different people")
    parser.add_argument("--models", nargs="+", default=["dlib-resnet", "sface", "arcface-mbf"])
    args = parser.parse_args()
    in_pairs = {name for p in parse_pairs(args.data / "pairsDevTrain.txt") for name in (p.name1, p.name2)}
    people = sorted(d for d in (args.data / "images").iterdir() if d.is_dir() and d.name not in in_pairs)
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(people), size=min(len(people), 2 * args.pairs), replace=False)
    files = [sorted(people[k].glob("*.jpg"))[0] for k in chosen]  # one photo of each person
    out = {"date": date.today().isoformat(), "people": len(files), "models": {}}
    for ref in args.models:
        embedder = load_embedder(ref)
        batch = embedder.embed_files(files)
        emb = batch.embeddings
        n = len(emb) // 2 * 2
        cos = np.einsum("nd,nd->n", emb[0:n:2], emb[1:n:2])  # disjoint pairs: every photo once, all different people
        out["models"][ref] = {
            "pairs": int(n // 2),
            "mean": round(float(cos.mean()), 4),
            "std": round(float(cos.std()), 4),
        }
        print(ref, out["models"][ref], flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
