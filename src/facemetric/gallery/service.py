"""The gallery as one object: enroll, verify, identify, list, remove, calibrate.

A gallery is a folder: ``gallery.db`` (the SQLite store, the truth) and ``index.faiss`` (derived,
brought up to date from the store's change log); or a PostgreSQL database named by a
``postgresql://`` URL (pgvector, searched in the database, for several servers on one gallery):
see :mod:`facemetric.gallery.location`. Photos are decoded with size and pixel limits, embedded
outside any lock (the slow part), then written in one transaction.

Every verify/identify answer carries the score, the threshold and the false-accept rate behind
it: the threshold's calibrated FAR, and ``far_at_score``, the fraction of the calibration's
impostor scores at or above this score (how often a stranger scores this high). Without a
calibration the answer has the score and candidates but no decision. Every answer is a pydantic
model of :mod:`facemetric.gallery.schemas` (the HTTP API's response schemas).
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facemetric.core.embedder import Embedder
from facemetric.core.faces import NoFaceError
from facemetric.core.matching import TEMPLATES, UNKNOWN
from facemetric.core.results import CalibratedThreshold
from facemetric.data.images import ImageDecodeError, decode_image_bytes
from facemetric.embedders import EmbedderNotFoundError, load_embedder
from facemetric.eval.identification import calibrate_threshold
from facemetric.gallery.faces import face_chip
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.schemas import (
    CalibrationPhotos,
    CalibrationResult,
    Candidate,
    EnrollResult,
    FaceDetection,
    IdentifyAnswer,
    Identity,
    ImportResult,
    RemoveResult,
    VerifyAnswer,
)
from facemetric.gallery.store import (
    EmbedderInfo,
    Enrolment,
    GalleryError,
    UnknownIdentityError,
    validate_name,
)

log = logging.getLogger("facemetric")

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
QUANTILES = 2001  # points kept of each impostor score distribution, for far_at_score
IMPORT_BLOCK = 512  # photos import_source cuts and embeds at a time (whole people): bounded memory
GROWTH_WARNING = 1.5  # identify answers warn once the gallery has this many times the people it was calibrated with


class PhotoError(GalleryError):
    """A photo that cannot be used; ``too_large`` when it is over a size or pixel limit, else it is not an
    image or has no face."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class Photo:
    """An uploaded or read photo: its bytes and where it came from."""

    data: bytes
    source: str

    @classmethod
    def from_path(cls, path: str | Path, max_bytes: int = MAX_BYTES) -> Photo:
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise PhotoError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        if size > max_bytes:
            raise PhotoError(f"{path}: {size:,} bytes, more than the {max_bytes:,} allowed", too_large=True)
        return cls(path.read_bytes(), str(path))


class Gallery:
    """A gallery (a folder, or a ``postgresql://`` URL) opened with its embedder (loaded from the store
    unless given). ``location`` names it again (``Gallery(g.location)``); ``folder`` is None for PostgreSQL."""

    def __init__(
        self,
        location: str | Path | GalleryLocation,
        embedder: Embedder | None = None,
        template: str = "max",
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if template not in TEMPLATES:
            raise GalleryError(f"template must be one of {TEMPLATES}, got {template!r}")
        self.location = GalleryLocation.parse(location)
        self.folder = self.location.folder
        self.store = self.location.open()
        try:
            self.embedder = embedder or self._open_model(self.store.embedder.reference)
            self.store.check_embedder(self.embedder.fingerprint, self.embedder.dim)
            self.index = self.location.index(self.store)
        except BaseException:
            self.store.close()  # a refused open leaves no connection behind
            raise
        self.template, self.max_pixels = template, max_pixels
        self._embed_lock = threading.Lock()  # dlib's detector and models are not thread-safe

    @staticmethod
    def _open_model(reference: str | dict[str, Any]) -> Embedder:
        try:
            return load_embedder(reference)
        except EmbedderNotFoundError as exc:
            raise GalleryError(
                f"the gallery's model cannot be opened ({exc}); restore it: the gallery only accepts "
                "embeddings of that model"
            ) from None

    @classmethod
    def create(
        cls, location: str | Path | GalleryLocation, embedder: Embedder | str, keep_faces: bool = False
    ) -> Gallery:
        """A new, empty gallery at ``location`` (a folder or a ``postgresql://`` URL) for ``embedder``
        (``"dlib-resnet"`` or a model path). With ``keep_faces`` every enrolment also keeps the face cut
        from the photo (:mod:`facemetric.gallery.faces`), so the gallery can be re-embedded when the model
        changes (:func:`facemetric.gallery.transfer.reembed`) without anyone enrolling again."""
        location = GalleryLocation.parse(location)  # an unknown URL scheme is refused before the model loads
        model = load_embedder(embedder) if isinstance(embedder, str) else embedder
        if not model.reference:
            raise GalleryError(
                f"the model {model.name} has no file or name to open it again by; save it as a "
                "checkpoint (or export it) and create the gallery from that file"
            )
        info = EmbedderInfo(model.name, model.fingerprint, model.dim, model.reference)
        location.create(info, keep_faces).close()
        return cls(location, model)

    def close(self) -> None:
        try:
            self.index.close()  # a FAISS index saves itself if it changed since its last save
        finally:
            self.store.close()

    # ------------------------------------------------------------------ photos

    def _decode(self, photo: Photo) -> Image.Image:
        try:
            return decode_image_bytes(photo.data, 3, self.max_pixels)
        except ImageDecodeError as exc:
            raise PhotoError(
                f"{photo.source}: {exc}", too_large=exc.kind in ("too many pixels", "decompression bomb")
            ) from None

    def embed(self, photo: Photo) -> tuple[np.ndarray, dict[str, Any]]:
        """Decode (within the pixel limit) and embed one photo; :class:`PhotoError` says what is wrong."""
        vector, detection, _ = self._embed(photo)
        return vector, detection

    def _embed(self, photo: Photo) -> tuple[np.ndarray, dict[str, Any], Image.Image]:
        image = self._decode(photo)
        try:
            with self._embed_lock:
                vector, detection = self.embedder.embed_photo(image)
        except NoFaceError as exc:
            raise PhotoError(f"{photo.source}: no face found ({exc})") from None
        return np.asarray(vector, np.float32), detection.to_dict(), image

    def _enrolment(self, photo: Photo) -> Enrolment:
        """One photo embedded for enrolment (with its face kept, if the gallery keeps faces)."""
        vector, detection, image = self._embed(photo)
        face = face_chip(image, detection) if self.store.keep_faces else None
        return Enrolment(hashlib.sha256(photo.data).hexdigest(), photo.source, detection, vector, face)

    # ------------------------------------------------------------------ operations

    def enroll(self, name: str, photos: list[Photo]) -> EnrollResult:
        """Enrol every photo for ``name`` in one transaction; any unusable photo fails the whole
        request (nothing written), naming the photo and why."""
        name = validate_name(name)
        if not photos:
            raise GalleryError(f"nothing to enrol for {name!r}: give at least one photo")
        items = [self._enrolment(photo) for photo in photos]
        result = self.store.enroll(name, items)
        self.index.sync()
        return EnrollResult(**result)

    def import_source(
        self,
        source: str | Path,
        per_person: int | None = None,
        layout: str = "auto",
        progress: bool = True,
        workers: int | None = None,
    ) -> ImportResult:
        """Enrol every person of a labelled dataset (folder per person, CSV, flat files), up to
        ``per_person`` photos each (in file order). Unlike :meth:`enroll`, a photo without a usable
        face is skipped and reported instead of failing its person; each person is one transaction.

        Photos are cut in blocks of about :data:`IMPORT_BLOCK` (whole people), faces found in
        ``workers`` processes (None: the embedder's ``crop_workers``, else automatic; 0: this process)."""
        from tqdm import tqdm

        from facemetric.data.sources import scan_source

        if per_person is not None and per_person < 1:
            raise GalleryError(f"per_person must be at least 1, got {per_person}")
        manifest = scan_source(source, layout)
        people: dict[str, list[Path]] = {}
        for path, identity in zip(manifest.paths, manifest.identities):
            people.setdefault(identity, []).append(Path(path))
        enrolled: dict[str, int] = {}
        skipped: list[str] = []
        blocks: list[list[tuple[str, list[Path]]]] = [[]]
        for name, paths in sorted(people.items()):
            if sum(len(p) for _, p in blocks[-1]) >= IMPORT_BLOCK:
                blocks.append([])
            blocks[-1].append((name, paths[:per_person]))
        with tqdm(total=len(people), desc="import", unit="person", disable=not progress, leave=False) as bar:
            for block in blocks:
                items = self._enrolments([p for _, paths in block for p in paths], skipped, progress, workers)
                start = 0
                for name, paths in block:
                    mine = [item for item in items[start : start + len(paths)] if item is not None]
                    start += len(paths)
                    if mine:
                        enrolled[name] = self.store.enroll(name, mine)["added"]
                    bar.update()
        self.index.sync()
        if skipped:
            log.warning("import: %d photo(s) skipped, e.g. %s", len(skipped), skipped[0])
        return ImportResult(
            people=len(enrolled),
            photos_added=sum(enrolled.values()),
            skipped=len(skipped),
            skipped_examples=skipped[:5],
            people_without_a_usable_photo=sorted(set(people) - set(enrolled)),
        )

    def _enrolments(
        self, paths: list[Path], skipped: list[str], progress: bool, workers: int | None
    ) -> list[Enrolment | None]:
        """One enrolment per photo file (None where it cannot be used, its reason added to ``skipped``),
        cut in bulk by the embedder's ``crop_files`` and embedded in batches."""
        photos: list[Photo | None] = []
        for path in paths:
            try:
                photo = Photo.from_path(path)
                self._check_pixels(photo)
            except PhotoError as exc:
                skipped.append(str(exc))
                photo = None
            photos.append(photo)
        usable = [k for k, photo in enumerate(photos) if photo is not None]
        with self._embed_lock:
            crops = self.embedder.crop_files([paths[k] for k in usable], progress, workers)
            vectors = self.embedder.embed_crops(crops.images) if len(crops) else np.zeros((0, self.embedder.dim))
        skipped.extend(f"{paths[usable[position]]}: {reason}" for position, reason in crops.failures)
        out: list[Enrolment | None] = [None] * len(paths)
        for row, (position, detection) in enumerate(zip(crops.index.tolist(), crops.detections)):
            k = usable[position]
            photo = photos[k]
            assert photo is not None
            vector = np.asarray(vectors[row], np.float32)
            record = detection.to_dict()
            face = face_chip(self._decode(photo), record) if self.store.keep_faces else None
            out[k] = Enrolment(hashlib.sha256(photo.data).hexdigest(), photo.source, record, vector, face)
        return out

    def _check_pixels(self, photo: Photo) -> None:
        """Refuse a photo over the pixel limit from its header, as :meth:`embed` does, before it is decoded."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(photo.data)) as img:
                    width, height = img.size
        except Exception:  # not an image Pillow reads: crop_files reports why
            return
        if width * height > self.max_pixels:
            raise PhotoError(
                f"{photo.source}: image is {width}x{height} = {width * height:,} pixels, more than the "
                f"{self.max_pixels:,} allowed",
                too_large=True,
            )

    def remove(self, name: str) -> RemoveResult:
        removed = self.store.remove(name)
        self.index.sync()
        return RemoveResult(name=validate_name(name), removed_images=removed)

    def identities(self) -> list[Identity]:
        """Every enrolled person with their number of photos, by name."""
        return [Identity(**row) for row in self.store.identities()]

    def _threshold(self, kind: str) -> dict[str, Any] | None:
        return self.store.thresholds().get(kind)

    @staticmethod
    def _far_at(calibration: dict[str, Any] | None, score: float) -> float | None:
        """Fraction of the calibration's impostor scores >= ``score`` (from its stored quantiles)."""
        if not calibration:
            return None
        q = np.asarray(calibration["impostor_quantiles"], np.float64)
        levels = np.linspace(0.0, 1.0, len(q))
        return float(max(0.0, 1.0 - np.interp(score, q, levels, left=0.0, right=1.0)))

    def _answer(self, kind: str, score: float | None) -> dict[str, Any]:
        """The :class:`~facemetric.gallery.schemas.Decision` fields but the score and the detection."""
        calibration = self._threshold(kind)
        if calibration is None:
            return {
                "threshold": None,
                "target_far": None,
                "far_at_score": None,
                "note": "not calibrated: run `facemetric gallery calibrate --far 1e-3 DATA` for decisions",
            }
        answer = {
            "threshold": calibration["value"],
            "target_far": calibration["target_far"],
            "achieved_far": calibration["achieved_far"],
            "far_at_score": None if score is None else self._far_at(calibration, score),
            "calibrated_on": calibration["source"],
        }
        then, now = calibration["gallery_identities"], len(self.index)
        if calibration.get("template", self.template) != self.template:
            answer["warning"] = (
                f"the threshold was calibrated with template {calibration['template']!r} but scores "
                f"use {self.template!r}: calibrate again with this template"
            )
        elif kind == "identify" and now > GROWTH_WARNING * then:
            # more people enrolled: a stranger has more chances to match someone, the real FAR is higher
            answer["warning"] = (
                f"calibrated with {then} people enrolled, now {now}: the false-alarm rate is "
                "likely above target; calibrate again"
            )
        return answer

    def verify(self, name: str, photo: Photo) -> VerifyAnswer:
        """Is ``photo`` the enrolled person ``name``? Score, threshold, FAR and the decision."""
        name = validate_name(name)
        self.index.sync()
        if not self.store.has_identity(name):
            raise UnknownIdentityError(f"{name!r} is not enrolled; enrol them first")
        vector, detection = self.embed(photo)
        score = self.index.score(vector, name, self.template)
        decision = self._answer("verify", score)
        accepted = None if decision["threshold"] is None else bool(score >= decision["threshold"])
        return VerifyAnswer(name=name, score=score, **decision, detection=FaceDetection(**detection), accepted=accepted)

    def identify(self, photo: Photo, top_k: int = 5) -> IdentifyAnswer:
        """Who is this among the enrolled, or ``no correspondence``? Candidates, score, threshold, FAR."""
        if not 1 <= int(top_k) <= 100:
            raise GalleryError(f"top_k must be between 1 and 100, got {top_k}")
        vector, detection = self.embed(photo)
        return self.identify_embedding(vector, detection, top_k)

    def identify_embedding(self, vector: np.ndarray, detection: dict[str, Any], top_k: int = 5) -> IdentifyAnswer:
        """:meth:`identify` for a face embedded already (by this gallery's model, e.g. with :meth:`embed`)."""
        if not 1 <= int(top_k) <= 100:
            raise GalleryError(f"top_k must be between 1 and 100, got {top_k}")
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.shape != (self.store.embedder.dim,) or not np.all(np.isfinite(vector)):
            raise GalleryError(f"an embedding of shape {vector.shape} cannot search {self.store.embedder.dim}-d ones")
        self.index.sync()
        matches = self.index.search(vector, int(top_k), self.template)
        best = matches[0].score if matches else None
        decision = self._answer("identify", best)
        if not matches:
            identity = UNKNOWN
        elif decision["threshold"] is None:
            identity = None
        else:
            identity = matches[0].name if best >= decision["threshold"] else UNKNOWN
        return IdentifyAnswer(
            candidates=[Candidate(name=m.name, score=m.score) for m in matches],
            score=best,
            **decision,
            detection=FaceDetection(**detection),
            identity=identity,
        )

    # ------------------------------------------------------------------ calibration

    def calibrate(self, vectors: np.ndarray, identities: list[str], far: float, source: str) -> CalibrationResult:
        """Thresholds at false-accept rate ``far`` from labelled embeddings of real people.

        * identify: each photo's best score against the gallery *without its own identity*
          (a search by someone not enrolled): the threshold lets at most ``far`` of those
          searches name someone;
        * verify: each photo's score against every enrolled identity that is not its own.

        People in the data who are enrolled act as strangers to everyone else; the enrolled
        photos themselves should not be in the data (they would match their own identity, which
        is excluded, so they only add impostor searches). Stored with where they came from.
        """
        self.index.sync()
        if len(self.index) < 2:
            raise GalleryError("calibration needs a gallery of at least 2 enrolled people: enrol first")
        top_scores, pair_scores = [], []
        names = np.asarray(identities)
        for vector, own in zip(vectors, names):
            matches = self.index.search(vector, len(self.index), self.template)
            others = [m.score for m in matches if m.name != own]
            if others:
                top_scores.append(max(others))
                pair_scores.extend(others)
        if not top_scores:
            raise GalleryError("no usable calibration photo (every one was of the only enrolled person)")
        n_people = len(set(names.tolist()))
        thresholds = {}
        for kind, scores in (("identify", top_scores), ("verify", pair_scores)):
            t = calibrate_threshold(
                np.array(scores),
                far,
                source=f"{source}: {len(scores)} impostor "
                f"{'searches' if kind == 'identify' else 'comparisons'} of {n_people} people",
            )
            t = t.model_copy(
                update={
                    "template": self.template,
                    "gallery_identities": len(self.index),
                    "calibrated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
            thresholds[kind] = {
                **t.model_dump(),
                "impostor_quantiles": np.quantile(np.array(scores), np.linspace(0, 1, QUANTILES)).round(6).tolist(),
            }
        self.store.set_thresholds(thresholds)
        answered = {
            kind: CalibratedThreshold(**{k: v for k, v in t.items() if k != "impostor_quantiles"})
            for kind, t in thresholds.items()
        }
        return CalibrationResult(identify=answered["identify"], verify=answered["verify"], photos=None)

    def calibrate_from_source(
        self, source: str | Path, far: float, layout: str = "auto", progress: bool = True
    ) -> CalibrationResult:
        """:meth:`calibrate` on a labelled dataset (folder per person, CSV, flat files).

        Photos already enrolled are left out (they are the templates); photos without a usable face
        are skipped and counted.
        """
        from tqdm import tqdm

        from facemetric.data.sources import scan_source

        manifest = scan_source(source, layout)
        enrolled = self.store.enrolled_hashes()
        vectors, names, skipped, templates = [], [], [], 0
        for path, identity in tqdm(
            list(zip(manifest.paths, manifest.identities)),
            desc="calibrate",
            unit="photo",
            disable=not progress,
            leave=False,
        ):
            try:
                photo = Photo.from_path(path)
                if hashlib.sha256(photo.data).hexdigest() in enrolled:
                    templates += 1
                    continue
                vectors.append(self.embed(photo)[0])
                names.append(identity)
            except PhotoError as exc:
                skipped.append(str(exc))
        if skipped:
            log.warning("calibration: %d photo(s) skipped, e.g. %s", len(skipped), skipped[0])
        if not vectors:
            raise GalleryError(f"{source}: no usable calibration photo ({len(skipped)} skipped, {templates} enrolled)")
        result = self.calibrate(np.stack(vectors), names, far, source=str(source))
        photos = CalibrationPhotos(used=len(vectors), skipped=len(skipped), enrolled_left_out=templates)
        return result.model_copy(update={"photos": photos})
