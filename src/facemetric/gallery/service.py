"""The gallery as one object: enroll, verify, identify, list, remove, calibrate.

A gallery is a folder: ``gallery.db`` (the SQLite store, the truth) and ``index.faiss`` (derived,
brought up to date from the store's change log); or a PostgreSQL database named by a
``postgresql://`` URL (pgvector, searched in the database, for several servers on one gallery); or
any store registered for a URL scheme (see :mod:`facemetric.gallery.location` and
:mod:`facemetric.gallery.stores`). Photos are decoded with size and pixel limits
(:mod:`facemetric.gallery.photos`), embedded outside any lock of the store (the slow part), then written
in one transaction.

Every verify/identify answer carries the score, the threshold and the false-accept rate behind
it (:mod:`facemetric.gallery.decisions`); the thresholds come from a calibration
(:mod:`facemetric.gallery.calibration`). Every answer is a pydantic model of
:mod:`facemetric.gallery.schemas` (the HTTP API's response schemas).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from tqdm import tqdm

from facemetric.core.embedder import Embedder
from facemetric.core.faces import Detection, NoFaceError
from facemetric.core.matching import TEMPLATES, UNKNOWN
from facemetric.embedders import EmbedderNotFoundError, load_embedder, open_stored_embedder
from facemetric.gallery.calibration import calibrate_index, embed_labelled
from facemetric.gallery.decisions import Calibration, calibration_of
from facemetric.gallery.enrolments import enrolments_of_files
from facemetric.gallery.interface import EmbedderInfo, Enrolment, GalleryError, UnknownIdentityError, validate_name
from facemetric.gallery.kept_faces import face_chip
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.photos import MAX_PIXELS, Photo, PhotoError
from facemetric.gallery.pose_spread import MIN_FACE, MIN_SHARPNESS, SPREAD_PHOTOS, FaceOffer, choose, sharpness
from facemetric.gallery.schemas import (
    CalibrationResult,
    Candidate,
    EnrollResult,
    FaceDetection,
    IdentifyAnswer,
    Identity,
    ImportResult,
    KeptPhoto,
    RemoveResult,
    SkippedPhoto,
    SpreadEnrollResult,
    VerifyAnswer,
)
from facemetric.gallery.thresholds import StoredThresholds

log = logging.getLogger("facemetric")

IMPORT_BLOCK = 512  # photos import_source cuts and embeds at a time (whole people): bounded memory


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
            self.embedder = embedder or self._open_model(self.store.embedder.reference, self.store.embedder.fingerprint)
            self.store.check_embedder(self.embedder.fingerprint, self.embedder.dim)
            self.index = self.location.index(self.store)
        except BaseException:
            self.store.close()  # a refused open leaves no connection behind
            raise
        self.template, self.max_pixels = template, max_pixels
        self._embed_lock = self._lock_for(self.embedder)

    @staticmethod
    def _lock_for(embedder: Embedder) -> threading.Lock | contextlib.nullcontext[None]:
        """dlib's detector and most models are not thread-safe: one photo at a time unless the embedder says so."""
        return contextlib.nullcontext() if embedder.thread_safe else threading.Lock()

    def use_embedder(self, embedder: Embedder) -> None:
        """Embed photos with ``embedder`` from now on: the same model (equal fingerprint) run another way, e.g. a
        server's :class:`~facemetric.serve.batching.BatchingEmbedder` around :attr:`embedder`."""
        if embedder.fingerprint != self.embedder.fingerprint:
            raise GalleryError(
                f"{embedder.name} is not the gallery's model {self.embedder.name} (fingerprint "
                f"{embedder.fingerprint} != {self.embedder.fingerprint})"
            )
        self.embedder, self._embed_lock = embedder, self._lock_for(embedder)

    @staticmethod
    def _open_model(reference: str, fingerprint: str) -> Embedder:
        try:
            return open_stored_embedder(reference, fingerprint)
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
        from the photo (:mod:`facemetric.gallery.kept_faces`), so the gallery can be re-embedded when the model
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

    def embed(self, photo: Photo) -> tuple[np.ndarray, Detection]:
        """Decode (within the pixel limit) and embed one photo; :class:`PhotoError` says what is wrong."""
        vector, detection, _ = self._embed(photo)
        return vector, detection

    def _embed(self, photo: Photo) -> tuple[np.ndarray, Detection, Image.Image]:
        image = photo.decode(self.max_pixels)
        try:
            with self._embed_lock:
                vector, detection = self.embedder.embed_photo(image)
        except NoFaceError as exc:
            raise PhotoError(f"{photo.source}: no face found ({exc})") from None
        return np.asarray(vector, np.float32), detection, image

    def _enrolment(self, photo: Photo) -> Enrolment:
        """One photo embedded for enrolment (with its face kept, if the gallery keeps faces)."""
        return self._enrolment_of(photo, *self._embed(photo))

    def _enrolment_of(self, photo: Photo, vector: np.ndarray, detection: Detection, image: Image.Image) -> Enrolment:
        record = detection.to_dict()
        face = face_chip(image, record) if self.store.keep_faces else None
        return Enrolment(hashlib.sha256(photo.data).hexdigest(), photo.source, record, vector, face)

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
        return result

    def enroll_spread(
        self,
        name: str,
        photos: Iterable[Photo],
        max_photos: int = SPREAD_PHOTOS,
        min_face: float = MIN_FACE,
        min_sharpness: float = MIN_SHARPNESS,
        progress: bool = False,
    ) -> SpreadEnrollResult:
        """Enrol at most ``max_photos`` of ``photos`` (a video's frames, a burst of photos) for ``name``,
        spread over the head's pose, in one transaction; the others are skipped with their reason
        (:mod:`facemetric.gallery.pose_spread`). Fails, writing nothing, when none can be enrolled."""
        name = validate_name(name)
        offered: list[tuple[Photo, tuple[np.ndarray, Detection, Image.Image] | None]] = []
        offers: list[FaceOffer] = []
        for photo in tqdm(photos, desc=f"faces of {name}", unit="photo", disable=None if progress else True):
            try:
                vector, detection, image = self._embed(photo)
            except PhotoError as exc:
                offered.append((photo, None))
                offers.append(FaceOffer(photo.source, problem=str(exc).removeprefix(f"{photo.source}: ")))
                continue
            box, pose = detection.box, detection.pose or {}
            offered.append((photo, (vector, detection, image)))
            offers.append(
                FaceOffer(
                    photo.source,
                    pose.get("yaw"),
                    pose.get("pitch"),
                    sharpness(image, box) if box else None,
                    min(box[2] - box[0], box[3] - box[1]) if box else None,
                )
            )
        if not offers:
            raise GalleryError(f"nothing to enrol for {name!r}: give at least one photo or video")
        kept, skipped = choose(offers, max_photos, min_face, min_sharpness)
        if not kept:
            shown = "; ".join(f"{offers[k].source}: {why}" for k, why in skipped[:3])
            raise GalleryError(
                f"no photo of {name!r} can be enrolled ({len(offers)} offered): {shown}"
                + (" ..." if len(skipped) > 3 else "")
                + ". Offer sharper photos with the face at least "
                f"{min_face:g} px, or lower --min-sharpness / --min-face"
            )
        items, poses = [], []
        for k in kept:
            photo, embedded = offered[k]
            assert embedded is not None  # only faces that were embedded are kept
            items.append(self._enrolment_of(photo, *embedded))
            poses.append(embedded[1].pose)
        result = self.store.enroll(name, items)
        self.index.sync()
        return SpreadEnrollResult(
            **result.model_dump(),
            kept=[KeptPhoto(source=offers[k].source, pose=pose) for k, pose in zip(kept, poses)],
            skipped=[SkippedPhoto(source=offers[k].source, reason=why) for k, why in skipped],
        )

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
        with tqdm(
            total=len(people), desc="import", unit="person", disable=None if progress else True, leave=False
        ) as bar:
            for block in blocks:
                items = enrolments_of_files(
                    self.embedder,
                    [p for _, paths in block for p in paths],
                    skipped,
                    max_pixels=self.max_pixels,
                    keep_faces=self.store.keep_faces,
                    embed_lock=self._embed_lock,
                    progress=progress,
                    workers=workers,
                )
                start = 0
                for name, paths in block:
                    mine = [item for item in items[start : start + len(paths)] if item is not None]
                    start += len(paths)
                    if mine:
                        enrolled[name] = self.store.enroll(name, mine).added
                    bar.update()
        self.index.sync()
        if skipped and not enrolled:  # nothing was written
            raise GalleryError(f"{source}: no usable photo: all {len(skipped)} skipped, e.g. {skipped[0]}")
        if skipped:
            log.warning("import: %d photo(s) skipped, e.g. %s", len(skipped), skipped[0])
        return ImportResult(
            people=len(enrolled),
            photos_added=sum(enrolled.values()),
            skipped=len(skipped),
            skipped_examples=skipped[:5],
            people_without_a_usable_photo=sorted(set(people) - set(enrolled)),
        )

    def remove(self, name: str) -> RemoveResult:
        removed = self.store.remove(name)
        self.index.sync()
        return RemoveResult(name=validate_name(name), removed_images=removed)

    def identities(self) -> list[Identity]:
        """Every enrolled person with their number of photos, by name."""
        return self.store.identities()

    def _calibration(self, kind: Literal["identify", "verify"], score: float | None) -> Calibration:
        """What the stored threshold of ``kind`` says about ``score``."""
        thresholds = self.store.thresholds()
        threshold = thresholds.identify if kind == "identify" else thresholds.verify
        return calibration_of(threshold, kind, score, self.template, len(self.index))

    def verify(self, name: str, photo: Photo) -> VerifyAnswer:
        """Is ``photo`` the enrolled person ``name``? Score, threshold, FAR and the decision."""
        name = validate_name(name)
        self.index.sync()
        if not self.store.has_identity(name):
            raise UnknownIdentityError(f"{name!r} is not enrolled; enrol them first")
        vector, detection = self.embed(photo)
        score = self.index.score(vector, name, self.template)
        calibration = self._calibration("verify", score)
        return VerifyAnswer(
            name=name,
            score=score,
            **calibration.fields(),
            detection=FaceDetection(**detection.to_dict()),
            accepted=calibration.accepts(score),
        )

    def identify(self, photo: Photo, top_k: int = 5) -> IdentifyAnswer:
        """Who is this among the enrolled, or ``no correspondence``? Candidates, score, threshold, FAR."""
        if not 1 <= int(top_k) <= 100:
            raise GalleryError(f"top_k must be between 1 and 100, got {top_k}")
        vector, detection = self.embed(photo)
        return self.identify_embedding(vector, detection, top_k)

    def identify_embedding(self, vector: np.ndarray, detection: Detection, top_k: int = 5) -> IdentifyAnswer:
        """:meth:`identify` for a face embedded already (by this gallery's model, e.g. with :meth:`embed`)."""
        if not 1 <= int(top_k) <= 100:
            raise GalleryError(f"top_k must be between 1 and 100, got {top_k}")
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.shape != (self.store.embedder.dim,) or not np.all(np.isfinite(vector)):
            raise GalleryError(f"an embedding of shape {vector.shape} cannot search {self.store.embedder.dim}-d ones")
        self.index.sync()
        matches = self.index.search(vector, int(top_k), self.template)
        best = matches[0].score if matches else None
        calibration = self._calibration("identify", best)
        identity: str | None
        if not matches:
            identity = UNKNOWN
        else:
            accepted = calibration.accepts(matches[0].score)
            identity = None if accepted is None else matches[0].name if accepted else UNKNOWN
        return IdentifyAnswer(
            candidates=[Candidate(name=m.name, score=m.score) for m in matches],
            score=best,
            **calibration.fields(),
            detection=FaceDetection(**detection.to_dict()),
            identity=identity,
        )

    # ------------------------------------------------------------------ calibration

    def calibrate(self, vectors: np.ndarray, identities: list[str], far: float, source: str) -> CalibrationResult:
        """Thresholds at false-accept rate ``far`` from labelled embeddings of real people
        (:mod:`facemetric.gallery.calibration`), stored with where they came from."""
        self.index.sync()
        identify, verify = calibrate_index(self.index, vectors, identities, far, source, self.template)
        self.store.set_thresholds(StoredThresholds(identify=identify, verify=verify))
        return CalibrationResult(identify=identify.answered(), verify=verify.answered(), photos=None)

    def calibrate_from_source(
        self, source: str | Path, far: float, layout: str = "auto", progress: bool = True
    ) -> CalibrationResult:
        """:meth:`calibrate` on a labelled dataset (folder per person, CSV, flat files).

        Photos already enrolled are left out (they are the templates); photos without a usable face
        are skipped and counted.
        """
        vectors, names, photos = embed_labelled(
            lambda photo: self.embed(photo)[0], self.store.enrolled_hashes(), source, layout, progress
        )
        result = self.calibrate(np.stack(vectors), names, far, source=str(source))
        return result.model_copy(update={"photos": photos})
