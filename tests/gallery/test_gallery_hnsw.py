"""A folder gallery's HNSW index: it follows the store (tombstones, reused ids, compaction), is saved and
reloaded as built, follows a change of settings by another process, and measures its own recall."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facemetric.cli import main
from facemetric.gallery.index_setup import configure_index
from facemetric.gallery.interface import EmbedderInfo, Enrolment, GalleryError, StoredIdentity, StoredImage
from facemetric.gallery.recall import index_recall
from facemetric.gallery.stores.sqlite.faiss_index import FaissIndex
from facemetric.gallery.stores.sqlite.image_vectors import IndexSettings
from facemetric.gallery.stores.sqlite.store import SQLiteStore

DIM = 8
HNSW = IndexSettings("hnsw", m=8, ef_construction=40, ef_search=200)  # ef_search past the gallery: exact here


def _item(k: int, dim: int = DIM) -> Enrolment:
    v = np.random.default_rng(k).normal(size=dim).astype(np.float32)
    return Enrolment(f"hash{k}", f"photo{k}.jpg", {"backend": "test"}, v / np.linalg.norm(v))


def _store(folder: Path, dim: int = DIM) -> SQLiteStore:
    return SQLiteStore.create(folder / "gallery.db", EmbedderInfo("test", "fp", dim, "test"))


def _brute_force(store: SQLiteStore, probe: np.ndarray, k: int) -> list[str]:
    _, _, names, vectors = store.snapshot()
    best: dict[str, float] = {}
    for name, score in zip(names, vectors @ probe):
        best[name] = max(best.get(name, -2.0), float(score))
    return [n for n, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def _agrees(index: FaissIndex, store: SQLiteStore, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        q = rng.normal(size=DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        assert [m.name for m in index.search(q, 4)] == _brute_force(store, q, 4)
        assert [m.name for m in index.search(q, 4, exact=True)] == _brute_force(store, q, 4)


def test_hnsw_follows_the_store_through_deletions_and_reused_ids(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.set_index_settings(HNSW)
    index = FaissIndex(store, tmp_path)
    assert index.settings == HNSW and index.ef_search == 200
    other = SQLiteStore(store.path)
    for person in range(40):
        other.enroll(f"p{person:02d}", [_item(100 * person + k) for k in range(1 + person % 4)])
    assert index.sync() and index.rebuilds == 1
    _agrees(index, store, 0)
    gone = other.remove("p39")  # the largest row ids: SQLite hands them out again
    other.enroll("p39", [_item(9000), _item(9001)])  # same person, new photos, reused ids
    other.remove("p05")
    index.sync()
    assert index.rebuilds == 1 and len(index._images.dead) == gone + 2  # tombstones, no rebuild
    assert index.n_images == store.snapshot()[1].size
    _agrees(index, store, 1)
    assert index.search(_item(9001).embedding, 1)[0].name == "p39"
    assert all(m.name != "p05" for m in index.search(_item(500).embedding, 40))
    for person in range(10, 30):  # past COMPACT_FRACTION of the graph: rebuilt from the live nodes
        other.remove(f"p{person:02d}")
    index.sync()
    assert not index._images.dead and index._images.graph.ntotal == index.n_images == store.snapshot()[1].size
    _agrees(index, store, 2)
    other.close()
    index.close()
    store.close()


def test_a_saved_hnsw_index_reloads_as_built_and_other_settings_rebuild(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.set_index_settings(HNSW)
    store.restore(
        StoredIdentity(f"p{k:03d}", 0.0, [StoredImage(f"h{k}", "x.jpg", {}, _item(k).embedding, 0.0)])
        for k in range(60)
    )
    first = FaissIndex(store, tmp_path)
    store.remove("p001")
    first.sync()
    first.close()  # saved with its tombstone
    again = FaissIndex(store, tmp_path)
    assert again.rebuilds == 0 and again.settings == HNSW and len(again._images.dead) == 1
    _agrees(again, store, 3)
    other = SQLiteStore(store.path)
    other.set_index_settings(IndexSettings("hnsw", m=8, ef_construction=40, ef_search=50))  # no rebuild
    assert again.sync() and again.rebuilds == 0 and again.ef_search == 50
    other.set_index_settings(IndexSettings("flat"))  # another kind: rebuilt on the next sync
    assert again.sync() and again.rebuilds == 1 and again.exact_twin() is None and again.ef_search is None
    _agrees(again, store, 4)
    other.set_index_settings(IndexSettings("hnsw", m=12))  # another build: rebuilt
    again.sync()
    assert again.rebuilds == 2 and again._images.graph.hnsw.nb_neighbors(1) == 12
    again.close()
    assert FaissIndex(store, tmp_path).rebuilds == 0  # the file is the new build
    other.close()
    store.close()


def _clustered_gallery(folder: Path, people: int, dim: int = 32) -> None:
    """People whose photos lie near their own direction (a probe's nearest other person is a real search)."""
    store = _store(folder, dim)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(people, dim)).astype(np.float32)
    rows = []
    for k, c in enumerate(centres):
        photos = c + 0.3 * rng.normal(size=(2, dim)).astype(np.float32)
        photos /= np.linalg.norm(photos, axis=1, keepdims=True)
        rows.append(
            StoredIdentity(
                f"p{k:05d}", 0.0, [StoredImage(f"{k}-{j}", "x.jpg", {}, v, 0.0) for j, v in enumerate(photos)]
            )
        )
    store.restore(rows)
    store.close()


def test_recall_measures_the_folder_gallerys_hnsw_and_tells_a_poor_build_apart(tmp_path: Path) -> None:
    _clustered_gallery(tmp_path, 3000)
    assert index_recall(tmp_path)["approximate"] is False  # flat: exact
    good = configure_index(tmp_path, kind="hnsw")
    assert good["changed"] and good["index"] == {"kind": "hnsw", "m": 32, "ef_construction": 128, "ef_search": 400}
    assert good["identities"] == 3000 and good["images"] == 6000
    measured = index_recall(tmp_path, sample=200)
    assert measured["approximate"] and measured["ef_search"] == 400 and measured["recall_at_1"] >= 0.97
    configure_index(tmp_path, m=2, ef_construction=4, ef_search=1)  # a graph too thin to find the nearest
    poor = index_recall(tmp_path, sample=200)
    assert poor["recall_at_1"] < measured["recall_at_1"] - 0.2
    assert configure_index(tmp_path)["changed"] is False  # nothing given: reported only


def test_index_settings_out_of_range_name_the_key_and_the_range(tmp_path: Path) -> None:
    _store(tmp_path).close()
    with pytest.raises(GalleryError, match=r"HNSW m must be a whole number from 2 to 100, got 0"):
        configure_index(tmp_path, kind="hnsw", m=0)
    with pytest.raises(GalleryError, match=r"index 'ivf' is not an index kind; use one of flat, hnsw"):
        IndexSettings("ivf")
    store = SQLiteStore(tmp_path / "gallery.db")
    assert store.index_settings == IndexSettings()  # the refused change left nothing behind
    store.close()


def test_cli_index_sets_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _clustered_gallery(tmp_path, 50)
    assert main(["gallery", "--gallery", str(tmp_path), "index", "--kind", "hnsw", "--ef-search", "64"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["index"] == {"kind": "hnsw", "m": 32, "ef_construction": 128, "ef_search": 64}
    assert out["images"] == 100 and (tmp_path / "index.faiss").is_file()
    assert main(["gallery", "--gallery", str(tmp_path), "index", "--kind", "flat"]) == 0
    assert json.loads(capsys.readouterr().out)["index"]["kind"] == "flat"


def test_hnsw_works_with_faiss_torch_utils_imported(tmp_path: Path) -> None:
    """faiss.contrib.torch_utils (pytorch-metric-learning imports it) replaces ``search`` with one that takes no
    search parameters, for the whole process: HNSW's candidate list and tombstone filter must still apply."""
    pytest.importorskip("torch")
    import faiss.contrib.torch_utils  # noqa: F401

    store = _store(tmp_path)
    store.set_index_settings(HNSW)
    for person in range(20):
        store.enroll(f"p{person:02d}", [_item(10 * person), _item(10 * person + 1)])
    store.remove("p03")
    index = FaissIndex(store, tmp_path)
    store.remove("p04")
    index.sync()
    assert len(index._images.dead) == 2 and index.score(_item(0).embedding, "p00") == pytest.approx(1.0, abs=1e-5)
    _agrees(index, store, 5)
    index.close()
    assert FaissIndex(store, tmp_path).rebuilds == 0
    store.close()
