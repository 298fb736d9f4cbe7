"""Moving a gallery between stores, and re-embedding it when its model changes.

* :func:`export_gallery` writes any gallery (a SQLite folder, PostgreSQL, any registered store) to one file, and
  :func:`import_gallery` makes a new gallery of it anywhere: SQLite to PostgreSQL when one machine is
  no longer enough, and back. Embeddings travel as float32 bits, so the imported gallery gives the same
  answers (scores, thresholds, decisions) as the one exported.
* :func:`reembed` builds a new gallery for another model from the faces a gallery kept at enrolment
  (``facemetric gallery init --keep-faces``): upgrading the model without asking anyone to enrol again.

The export file is a zip archive (``.fmgallery``):

* ``manifest.json``: :data:`FORMAT`, the model (name, fingerprint, dimension, reference), the calibrated
  thresholds, whether faces are kept, and the counts;
* ``identities.jsonl``: one line per person: name, enrolment time, and their photos (content hash,
  source, detection record, time, and the name of the kept face in the archive or null);
* ``embeddings.f32``: every photo's embedding, little-endian float32, in the order of the lines;
* ``faces/<k>.jpg``: the kept faces.

Every step streams: memory holds about a thousand people at a time, whatever the gallery's size.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facemetric.core.atomic import atomic_path
from facemetric.core.embedder import Embedder
from facemetric.core.version import VERSION
from facemetric.gallery.interface import EmbedderInfo, GalleryError, Restored, StoredIdentity, StoredImage
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.schemas import TransferResult
from facemetric.gallery.thresholds import StoredThresholds

FORMAT = "facemetric-gallery-export/1"
SUFFIX = ".fmgallery"
REEMBED_BATCH = 64  # kept faces embedded at a time


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a gallery export file (a zip archive with a facemetric manifest)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        if "manifest.json" not in archive.namelist():
            return False
        try:
            return json.loads(archive.read("manifest.json")).get("format") == FORMAT
        except ValueError:
            return False


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="person", disable=None if enabled else True, leave=False)


def export_gallery(location: str | Path | GalleryLocation, path: str | Path, progress: bool = True) -> TransferResult:
    """Write the gallery at ``location`` to the export file ``path`` (written aside, then renamed)."""
    location = GalleryLocation.parse(location)
    path = Path(path)
    store = location.open()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        total = len(store.identities())
        counts = {"identities": 0, "images": 0, "faces": 0}
        with atomic_path(path) as tmp, tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            lines_path, vectors_path = Path(scratch) / "identities.jsonl", Path(scratch) / "embeddings.f32"
            with (
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive,
                lines_path.open("w", encoding="utf-8") as lines,
                vectors_path.open("wb") as vectors,
                _progress(total, "export", progress) as bar,
            ):
                for identity in store.export():
                    photos = []
                    for image in identity.images:
                        face = None
                        if image.face is not None:
                            face = f"faces/{counts['images']}.jpg"
                            archive.writestr(zipfile.ZipInfo(face), image.face, zipfile.ZIP_STORED)  # JPEG: packed
                            counts["faces"] += 1
                        photos.append(
                            {
                                "sha256": image.sha256,
                                "source": image.source,
                                "detection": image.detection,
                                "created": image.created,
                                "face": face,
                            }
                        )
                        vectors.write(np.asarray(image.embedding, "<f4").tobytes())
                        counts["images"] += 1
                    lines.write(
                        json.dumps({"name": identity.name, "created": identity.created, "images": photos}) + "\n"
                    )
                    counts["identities"] += 1
                    bar.update()
                lines.close()
                vectors.close()
                archive.write(lines_path, "identities.jsonl")
                archive.write(vectors_path, "embeddings.f32", zipfile.ZIP_STORED)  # floats barely compress
                manifest = {
                    "format": FORMAT,
                    "embedder": store.embedder.as_dict(),
                    "thresholds": store.thresholds().as_dict(),
                    "keep_faces": store.keep_faces,
                    **counts,
                    "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "facemetric": VERSION,
                    "from": str(location),
                }
                archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    finally:
        store.close()
    return TransferResult(
        source=str(location),
        destination=str(path),
        people=counts["identities"],
        photos=counts["images"],
        faces=counts["faces"],
        skipped=0,
        people_left_out=[],
        thresholds="kept",
    )


def _read_export(path: Path) -> tuple[dict[str, Any], zipfile.ZipFile]:
    if not is_export(path):
        raise GalleryError(f"{path}: not a facemetric gallery export (make one with `facemetric gallery export`)")
    archive = zipfile.ZipFile(path)
    manifest = json.loads(archive.read("manifest.json"))
    return manifest, archive


def _exported(manifest: dict[str, Any], archive: zipfile.ZipFile, path: Path) -> Iterator[StoredIdentity]:
    """The identities of an export file, streamed; :class:`GalleryError` if it is damaged."""
    dim, expected = int(manifest["embedder"]["dim"]), int(manifest["images"])
    size = archive.getinfo("embeddings.f32").file_size
    if size != expected * dim * 4:
        raise GalleryError(
            f"{path}: embeddings.f32 holds {size:,} bytes, not {expected:,} photos x {dim} floats; the file is damaged"
        )
    with archive.open("identities.jsonl") as lines, archive.open("embeddings.f32") as vectors:
        for number, line in enumerate(io.TextIOWrapper(lines, encoding="utf-8"), 1):
            try:
                record = json.loads(line)
                images = []
                for photo in record["images"]:
                    vector = np.frombuffer(vectors.read(dim * 4), "<f4").astype(np.float32)
                    face = archive.read(photo["face"]) if photo["face"] else None
                    images.append(
                        StoredImage(
                            photo["sha256"], photo["source"], photo["detection"], vector, photo["created"], face
                        )
                    )
                yield StoredIdentity(record["name"], record["created"], images)
            except (KeyError, TypeError, ValueError) as exc:
                raise GalleryError(f"{path}: identities.jsonl line {number} is damaged ({exc})") from None


def _into_new_gallery(
    location: GalleryLocation,
    info: EmbedderInfo,
    keep_faces: bool,
    identities: Iterator[StoredIdentity],
    thresholds: StoredThresholds | None,
) -> Restored:
    """Create a gallery at ``location`` and restore ``identities`` into it; all or nothing: a failure
    removes the gallery this call created."""
    if location.exists():
        raise GalleryError(
            f"{location}: a gallery is already there; a gallery is imported into a new location (a new folder, "
            "or a database without one): choose another, or remove that gallery first"
        )
    store = location.create(info, keep_faces)
    try:
        counts = store.restore(identities, thresholds)
    except BaseException:
        store.destroy()
        raise
    store.close()
    return counts


def import_gallery(path: str | Path, location: str | Path | GalleryLocation, progress: bool = True) -> TransferResult:
    """A new gallery at ``location`` holding everything of the export file ``path``, thresholds included."""
    location, path = GalleryLocation.parse(location), Path(path)
    manifest, archive = _read_export(path)
    with archive:
        info = EmbedderInfo.from_dict(manifest["embedder"], str(path))
        thresholds = StoredThresholds.from_json(manifest["thresholds"], str(path))
        with _progress(int(manifest["identities"]), "import", progress) as bar:

            def counted() -> Iterator[StoredIdentity]:
                for identity in _exported(manifest, archive, path):
                    yield identity
                    bar.update()

            counts = _into_new_gallery(location, info, manifest["keep_faces"], counted(), thresholds)
    if counts.images != manifest["images"]:  # the export was whole, so this would be a bug here
        raise GalleryError(f"{path}: imported {counts.images} photos of the {manifest['images']} exported")
    return TransferResult(
        source=str(path),
        destination=str(location),
        people=counts.identities,
        photos=counts.images,
        faces=int(manifest["faces"]),
        skipped=0,
        people_left_out=[],
        thresholds="kept" if thresholds.calibrated else "none (not calibrated)",
    )


def reembed(
    location: str | Path | GalleryLocation,
    embedder: Embedder,
    destination: str | Path | GalleryLocation,
    progress: bool = True,
) -> TransferResult:
    """A new gallery at ``destination`` for ``embedder``, made from the faces the gallery at ``location``
    kept at enrolment: each is embedded again by the new model (which finds the face in it again).

    Photos enrolled without a kept face, or in which the new model finds no face, are skipped and
    counted; a person left with no photo is not enrolled and is listed. The old gallery is not touched.
    The thresholds are not carried over (another model's scores differ): calibrate the new gallery."""
    source, destination = GalleryLocation.parse(location), GalleryLocation.parse(destination)
    if not embedder.reference:
        raise GalleryError(f"the model {embedder.name} has no file or name to open it again by; save it first")
    store = source.open()
    skipped: list[str] = []
    left_out: list[str] = []
    try:
        if not store.keep_faces:
            raise GalleryError(
                f"{source} kept no faces at enrolment, so there is nothing to embed again: re-embedding needs a "
                "gallery made with `facemetric gallery init --keep-faces` (or enrol the people again)"
            )
        info = EmbedderInfo(embedder.name, embedder.fingerprint, embedder.dim, embedder.reference)
        with _progress(len(store.identities()), "re-embed", progress) as bar:

            def embedded() -> Iterator[StoredIdentity]:
                for identity in store.export():
                    images = _embed_again(embedder, identity, skipped)
                    bar.update()
                    if images:
                        yield StoredIdentity(identity.name, identity.created, images)
                    else:
                        left_out.append(identity.name)

            counts = _into_new_gallery(destination, info, True, embedded(), None)
    finally:
        store.close()
    return TransferResult(
        source=str(source),
        destination=str(destination),
        people=counts.identities,
        photos=counts.images,
        faces=counts.images,
        skipped=len(skipped),
        skipped_examples=skipped[:5],
        people_left_out=left_out,
        thresholds="not carried over: calibrate the new gallery (`facemetric gallery calibrate`)",
    )


def _embed_again(embedder: Embedder, identity: StoredIdentity, skipped: list[str]) -> list[StoredImage]:
    """The identity's photos embedded by ``embedder`` from their kept faces (reasons for the rest in ``skipped``)."""
    usable = [image for image in identity.images if image.face is not None]
    skipped.extend(f"{identity.name}: {i.source}: no face kept at enrolment" for i in identity.images if i.face is None)
    out = []
    for start in range(0, len(usable), REEMBED_BATCH):
        chunk = usable[start : start + REEMBED_BATCH]
        photos = [Image.open(io.BytesIO(image.face or b"")).convert("RGB") for image in chunk]
        batch = embedder.embed_photos(photos)
        for reason in batch.failures:
            skipped.append(f"{identity.name}: {chunk[reason[0]].source}: {reason[1]}")
        for row, (k, detection) in enumerate(zip(batch.index.tolist(), batch.detections)):
            image = chunk[k]
            out.append(
                StoredImage(
                    image.sha256,
                    image.source,
                    detection.to_dict(),  # where the new model found the face, in the kept face's pixels
                    np.asarray(batch.embeddings[row], np.float32),
                    image.created,
                    image.face,
                )
            )
    return out


__all__ = ["FORMAT", "SUFFIX", "export_gallery", "import_gallery", "is_export", "reembed"]
