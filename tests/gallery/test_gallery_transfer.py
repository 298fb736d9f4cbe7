"""Export, import (SQLite -> PostgreSQL -> SQLite, identical answers) and re-embedding from kept faces."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.cli import main
from facemetric.gallery.interface import GalleryError
from facemetric.gallery.kept_faces import face_chip, face_region
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.photos import Photo
from facemetric.gallery.service import Gallery
from facemetric.gallery.thresholds import StoredThresholds
from facemetric.gallery.transfer import export_gallery, import_gallery, is_export, reembed
from gallery_fakes import ColourEmbedder, person_photo


class FineColourEmbedder(ColourEmbedder):
    """ "A new model": 8x8 average colours (192-d) instead of 4x4."""

    name = "fine-colour-test"
    reference = "fine-colour-test"
    fingerprint = "fine-colour-test-0001"
    dim = 192

    def crop_photo(self, image):
        crop, detection = super().crop_photo(image)
        pixels = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.BOX), np.uint8)
        return pixels, detection

    def embed_crops(self, crops, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        pixels = np.asarray(crops, np.float32)
        v = (pixels - pixels.mean(axis=(1, 2, 3), keepdims=True)).reshape(len(pixels), -1)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _build(location: GalleryLocation | Path, keep_faces: bool = True) -> Gallery:
    """8 people x 2 photos, calibrated on 3 other photos each."""
    gallery = Gallery.create(location, ColourEmbedder(), keep_faces=keep_faces)
    for person in range(8):
        photos = [Photo(person_photo(person, shot), f"p{person}-{shot}.png") for shot in range(2)]
        gallery.enroll(f"person {person}", photos)
    vectors = [gallery.embed(Photo(person_photo(p, s), "c"))[0] for p in range(8) for s in range(2, 5)]
    gallery.calibrate(np.stack(vectors), [f"person {p}" for p in range(8) for _ in range(2, 5)], 0.1, "test photos")
    return gallery


def _answers(gallery: Gallery) -> list[dict]:
    """Identify answers for known people and strangers, as JSON (scores, thresholds, FAR, decisions)."""
    out = []
    for person in (0, 3, 7, 50, 51):
        vector, detection = gallery.embed(Photo(person_photo(person, 9), "probe.png"))
        out.append(gallery.identify_embedding(vector, detection, top_k=8).model_dump(mode="json"))
    return out


def _same_answers(got: list[dict], want: list[dict]) -> None:
    """Identical answers (names, decisions, thresholds, FAR) with scores equal to float32 precision."""

    def scores(answer: dict) -> list[float]:
        return [answer["score"], answer["far_at_score"]] + [c["score"] for c in answer["candidates"]]

    def rest(answer: dict) -> dict:
        return {**answer, "score": None, "far_at_score": None, "candidates": [c["name"] for c in answer["candidates"]]}

    assert [rest(a) for a in got] == [rest(a) for a in want]
    np.testing.assert_allclose([scores(a) for a in got], [scores(a) for a in want], atol=1e-6)


def _contents(gallery: Gallery) -> list[tuple]:
    """Every person and photo with the embedding's bits and the kept face."""
    rows = []
    for identity in gallery.store.export():
        for image in identity.images:
            rows.append((identity.name, identity.created, image.sha256, image.source, image.created, image.face))
            rows.append(np.asarray(image.embedding, np.float32).tobytes())
    return rows


def test_sqlite_to_postgres_and_back_gives_identical_answers(tmp_path: Path, pg_url: str) -> None:
    original = _build(tmp_path / "a")
    answers, contents = _answers(original), _contents(original)
    assert answers[0]["identity"] == "person 0" and answers[3]["threshold"] is not None
    thresholds = original.store.thresholds()
    original.close()
    first = export_gallery(tmp_path / "a", tmp_path / "a.fmgallery", progress=False)
    assert (first.people, first.photos, first.faces, first.thresholds) == (8, 16, 16, "kept")
    assert is_export(tmp_path / "a.fmgallery") and not is_export(tmp_path / "a" / "gallery.db")
    imported = import_gallery(tmp_path / "a.fmgallery", pg_url, progress=False)
    assert (imported.people, imported.photos, imported.faces) == (8, 16, 16)
    in_postgres = Gallery(pg_url, ColourEmbedder())
    assert in_postgres.store.keep_faces and in_postgres.store.thresholds() == thresholds
    assert _contents(in_postgres) == contents  # every embedding bit for bit, every record, every kept face
    _same_answers(_answers(in_postgres), answers)  # pgvector's arithmetic differs from FAISS's in the last bits
    in_postgres.close()
    export_gallery(pg_url, tmp_path / "b.fmgallery", progress=False)
    import_gallery(tmp_path / "b.fmgallery", tmp_path / "c", progress=False)
    back = Gallery(tmp_path / "c", ColourEmbedder())
    assert _answers(back) == answers and _contents(back) == contents  # the same store again: to the last bit
    back.close()


def test_import_refuses_an_existing_gallery_and_leaves_nothing_when_it_fails(
    location: GalleryLocation, tmp_path: Path
) -> None:
    _build(tmp_path / "a").close()
    export = tmp_path / "a.fmgallery"
    export_gallery(tmp_path / "a", export, progress=False)
    with pytest.raises(GalleryError, match="a gallery is already there"):
        import_gallery(export, tmp_path / "a", progress=False)
    damaged = tmp_path / "damaged.fmgallery"  # the ninth person's name is a path: refused mid-import
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "identities.jsonl":
                lines = data.decode().splitlines()
                record = json.loads(lines[-1])
                record["name"] = "../etc"
                data = ("\n".join([*lines[:-1], json.dumps(record)]) + "\n").encode()
            target.writestr(item, data)
    with pytest.raises(GalleryError, match="not allowed as an identity name"):
        import_gallery(damaged, location, progress=False)
    assert not location.exists()  # the gallery the import created went with it: a retry starts clean
    truncated = tmp_path / "truncated.fmgallery"
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(truncated, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data[:-8] if item.filename == "embeddings.f32" else data)
    with pytest.raises(GalleryError, match="the file is damaged"):
        import_gallery(truncated, location, progress=False)
    assert not location.exists()
    with pytest.raises(GalleryError, match="not a facemetric gallery export"):
        import_gallery(tmp_path / "a" / "gallery.db", location, progress=False)
    assert import_gallery(export, location, progress=False).people == 8  # and the real thing works there


def test_kept_faces_reembed_a_gallery_for_a_new_model(location: GalleryLocation, tmp_path: Path) -> None:
    _build(tmp_path / "old").close()
    result = reembed(tmp_path / "old", FineColourEmbedder(), location, progress=False)
    assert (result.people, result.photos, result.skipped, result.people_left_out) == (8, 16, 0, [])
    assert "calibrate" in result.thresholds
    new = Gallery(location, FineColourEmbedder())
    assert new.store.embedder.fingerprint == "fine-colour-test-0001" and new.store.embedder.dim == 192
    assert new.store.thresholds() == StoredThresholds()  # another model's scores: no thresholds carried over
    for person in range(8):
        answer = new.identify(Photo(person_photo(person, 9), "probe.png"), top_k=1)
        assert answer.candidates[0].name == f"person {person}"
    assert new.store.keep_faces  # a re-embedded gallery can be re-embedded again
    new.close()
    old = Gallery(tmp_path / "old", ColourEmbedder())  # untouched
    assert old.store.embedder.dim == 48 and len(old.identities()) == 8
    old.close()
    _build(tmp_path / "faceless", keep_faces=False).close()
    with pytest.raises(GalleryError, match="kept no faces"):
        reembed(tmp_path / "faceless", FineColourEmbedder(), tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()


def test_the_kept_face_is_the_region_around_the_detected_face() -> None:
    photo = Image.new("RGB", (1000, 800), (90, 120, 150))
    detection = {"found": True, "box": [400.0, 300.0, 500.0, 420.0]}
    assert face_region(detection, 1000, 800) == (300, 210, 600, 510)  # 2.5 x 120 around the centre
    chip = Image.open(io.BytesIO(face_chip(photo, detection)))
    assert chip.format == "JPEG" and chip.size == (300, 300)
    assert face_region({"found": True, "box": [0.0, 0.0, 250.0, 250.0]}, 250, 250) == (0, 0, 250, 250)  # whole
    assert face_region({"found": False, "box": None}, 64, 48) == (0, 0, 64, 48)
    big = Image.new("RGB", (4000, 3000))
    assert max(Image.open(io.BytesIO(face_chip(big, {"found": True, "box": [0, 0, 4000, 3000]}))).size) == 400


def test_cli_export_import_and_reembed(tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path, capsys) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    assert main(["gallery", "--gallery", str(old), "init", "--model", str(tiny_checkpoint), "--keep-faces"]) == 0
    assert (
        main(["-q", "gallery", "--gallery", str(old), "import", "--data", str(synthetic_faces), "--per-person", "2"])
        == 0
    )
    capsys.readouterr()
    assert main(["-q", "gallery", "--gallery", str(old), "export", "-o", str(tmp_path / "g.fmgallery")]) == 0
    assert json.loads(capsys.readouterr().out)["photos"] == 24
    assert (
        main(["-q", "gallery", "--gallery", str(tmp_path / "copy"), "import", "--data", str(tmp_path / "g.fmgallery")])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["people"] == 12
    assert (
        main(["-q", "gallery", "--gallery", str(old), "reembed", "--model", str(tiny_checkpoint), "--out", str(new)])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["people"] == 12 and result["photos"] + result["skipped"] == 24
    assert main(["-q", "gallery", "--gallery", str(new), "list"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 12
