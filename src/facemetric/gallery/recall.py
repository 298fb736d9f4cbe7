"""How often a gallery's approximate index finds what exact search finds (``facemetric gallery recall``).

A PostgreSQL gallery searches pgvector's HNSW graph, and a folder gallery FAISS's when it chose one
(``gallery index --kind hnsw``): fast, and approximate. How approximate depends on the
gallery (its size, its model's embeddings, the build's ``m`` and ``ef_construction``) and on the search's
``ef_search``, so a gallery measures itself: a random sample of its own enrolled faces is searched with the
index and exactly, and the answers compared. Each probe is an enrolled face, so both searches put its own
person first (it matches itself); what is compared is the rest of the list, the **nearest other people**:
the look-alikes a new photo of that person is told apart from, found in the same part of the graph.

* ``recall_at_1``: the index names the same nearest other person as exact search;
* ``recall_at_k``: the share of exact search's ``top_k`` nearest other people the index also lists;
* ``own_first``: the index put the probe's own person first (exact search always does).

A folder gallery's flat FAISS index (the default) is exact: it is reported as such, with nothing to compare.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.gallery.interface import GalleryError
from facemetric.gallery.location import GalleryLocation


def index_recall(
    location: str | Path | GalleryLocation, sample: int = 200, top_k: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Recall of the gallery's index against exact search on ``sample`` of its enrolled faces (module docstring)."""
    if sample < 1 or not 1 <= top_k <= 100:
        raise GalleryError(f"recall needs --sample >= 1 and --top-k from 1 to 100, got {sample} and {top_k}")
    location = GalleryLocation.parse(location)
    store = location.open()
    index = location.index(store)
    try:
        index.sync()
        exact = index.exact_twin()
        names, vectors = store.sample_images(sample, seed)
        result: dict[str, Any] = {"gallery": str(location), "identities": len(index), "images": index.n_images}
        result["ef_search"] = getattr(index, "ef_search", None)
        if exact is None:
            return {**result, "approximate": False, "sample": len(names), "recall_at_1": 1.0, "recall_at_k": 1.0}
        if not names:
            raise GalleryError(f"{location}: nobody is enrolled, so there is nothing to measure recall on")
        first: list[bool] = []
        overlap: list[float] = []
        own: list[bool] = []
        times: dict[str, list[float]] = {"index": [], "exact": []}
        for name, vector in zip(names, vectors):
            lists = {}
            for kind, searcher in (("index", index), ("exact", exact)):
                start = time.perf_counter()
                lists[kind] = [m.name for m in searcher.search(vector, top_k + 1)]
                times[kind].append(time.perf_counter() - start)
            own.append(bool(lists["index"]) and lists["index"][0] == name)
            found, truth = ([n for n in lists[k] if n != name][:top_k] for k in ("index", "exact"))
            if truth:  # someone else is enrolled
                first.append(bool(found) and found[0] == truth[0])
                overlap.append(len(set(found) & set(truth)) / len(truth))
        return {
            **result,
            "approximate": True,
            "sample": len(names),
            "top_k": top_k,
            "recall_at_1": round(float(np.mean(first)), 4) if first else 1.0,
            "recall_at_k": round(float(np.mean(overlap)), 4) if overlap else 1.0,
            "own_first": round(float(np.mean(own)), 4),
            "index_ms_p50": round(float(np.median(times["index"])) * 1e3, 2),
            "exact_ms_p50": round(float(np.median(times["exact"])) * 1e3, 2),
        }
    finally:
        index.close()
        store.close()
