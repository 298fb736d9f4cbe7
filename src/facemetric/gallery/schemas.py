"""What the gallery answers: every result of :class:`~facemetric.gallery.service.Gallery` as a pydantic model.

``facemetric gallery`` prints these models as JSON and the HTTP API (``facemetric serve``) returns them,
so their schemas (with the field descriptions below) are in ``/openapi.json`` and on ``/docs``.

Every field is always in the JSON: ``null`` means "does not apply here" (no calibration yet, nothing
to warn about, no face box). Unknown fields are refused (``extra="forbid"``): a field renamed on one
side without the other fails loudly instead of vanishing from an answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from facemetric.core.results import CalibratedThreshold

NOT_CALIBRATED = "null until the gallery is calibrated (`facemetric gallery calibrate`)"


class Answer(BaseModel):
    """Base of the gallery's answers: no unknown field, every field present in the JSON."""

    # serialisation schemas list fields with a default as required: the JSON always has them (maybe null)
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


# ------------------------------------------------------------------ people and photos


class HeadPose(Answer):
    """The head's pose in degrees as the camera sees it (:class:`facemetric.core.faces.Pose`), from the
    detector's five landmarks fitted to a generic 3-D face: good to several degrees, not a measurement."""

    yaw: float = Field(description="turn left or right: positive when the face turns towards the image's right")
    pitch: float = Field(description="nod: positive when the face looks up")
    roll: float = Field(description="tilt in the image plane: positive when the face turns clockwise in the image")


class FaceDetection(Answer):
    """Where the face used was found in the photo (:class:`facemetric.core.faces.Detection`)."""

    backend: str = Field(
        description="what cut the face out: a face detector (`dlib`, `dlib-resnet`, `opencv`; `dlib/cnn`, "
        "`dlib-resnet/cnn` when dlib's CNN detector found the face), a fixed rule (`center`, `none`), `crop` "
        "(a model trained on pre-cropped photos: no detection), or a detector's fallback box "
        "(`dlib-resnet/whole-image`)"
    )
    found: bool = Field(
        description="true when a face was located (by a detector, or by a fixed rule); false for "
        "`crop` and for a fallback box: the photo may then hold no face at all"
    )
    box: list[float] | None = Field(
        None,
        description="the face as [left, top, right, bottom] in the photo's pixels; null when the backend gives none",
    )
    score: float | None = Field(None, description="the detector's confidence in the face, where it reports one")
    landmarks: list[list[float]] | None = Field(
        None,
        description="facial landmarks as [x, y] points in the photo's "
        "pixels (e.g. dlib's 5), where the backend has them",
    )
    faces: int = Field(0, ge=0, description="how many faces were detected (the largest, most central one is used)")
    image_size: list[int] = Field(
        default_factory=list,
        description="the photo's [width, height] in pixels (empty when the backend does not report it)",
    )
    pose: HeadPose | None = Field(
        None,
        description="the head's yaw, pitch and roll in degrees, where the detector gives five landmarks "
        "(YuNet, dlib's 5-point predictor); null otherwise",
    )


class Identity(Answer):
    """One enrolled person."""

    name: str = Field(description="the person's name (normalised: Unicode NFC, outer spaces stripped)")
    images: int = Field(ge=0, description="how many photos of them are enrolled")
    created: float = Field(description="when they were first enrolled, in seconds since 1970-01-01 UTC (Unix time)")


class EnrollResult(Answer):
    """Photos added to a person (created if new), all in one transaction."""

    name: str = Field(description="the person's name as stored (normalised: Unicode NFC, outer spaces stripped)")
    added: int = Field(ge=0, description="photos newly enrolled")
    duplicates: int = Field(ge=0, description="photos skipped because the same file is already enrolled for them")


class KeptPhoto(Answer):
    """A photo or video frame enrolled by a pose-spread enrolment."""

    source: str = Field(description="the file, and for a video frame `#frame=N`")
    pose: HeadPose | None = Field(description="the head's pose in it, where the detector gives one")


class SkippedPhoto(Answer):
    """A photo or video frame a pose-spread enrolment did not enrol, and why."""

    source: str = Field(description="the file, and for a video frame `#frame=N`")
    reason: str = Field(
        description="no face found, face too small, blurred, unreadable, or `not needed` (enough poses were kept)"
    )


class SpreadEnrollResult(EnrollResult):
    """Photos chosen for a person out of many (a video's frames, a burst of photos): at most the
    maximum asked for, spread over the head's pose; the others skipped with their reason."""

    kept: list[KeptPhoto] = Field(description="what was enrolled (or was already), in the order offered")
    skipped: list[SkippedPhoto] = Field(description="what was not, with the reason, in the order offered")


class RemoveResult(Answer):
    """A person deleted with all their photos."""

    name: str = Field(description="the person removed (normalised name)")
    removed_images: int = Field(ge=0, description="how many of their photos were deleted")


class ImportResult(Answer):
    """A labelled dataset enrolled, one transaction per person; photos without a usable face are skipped."""

    people: int = Field(ge=0, description="people who got at least one photo enrolled (or already had them all)")
    photos_added: int = Field(ge=0, description="photos newly enrolled, all people together")
    skipped: int = Field(ge=0, description="photos skipped: unreadable, over a limit, or no face found")
    skipped_examples: list[str] = Field(description="up to 5 skipped photos, each with why")
    people_without_a_usable_photo: list[str] = Field(
        description="people of the dataset none of whose photos could be used: not enrolled"
    )


class TransferResult(Answer):
    """A gallery exported, imported, or re-embedded with another model (:mod:`facemetric.gallery.transfer`)."""

    source: str = Field(description="the gallery or export file read (a URL's password hidden)")
    destination: str = Field(description="the export file or new gallery written")
    people: int = Field(ge=0, description="people written")
    photos: int = Field(ge=0, description="photos (embeddings) written")
    faces: int = Field(ge=0, description="kept faces written (for re-embedding with another model later)")
    skipped: int = Field(ge=0, description="photos left out (re-embedding: no kept face, or no face found in it)")
    skipped_examples: list[str] = Field(default_factory=list, description="up to 5 skipped photos, each with why")
    people_left_out: list[str] = Field(description="people none of whose photos could be written: not in the result")
    thresholds: str = Field(description="what became of the calibrated thresholds")


# ------------------------------------------------------------------ decisions


class Candidate(Answer):
    """An enrolled person and how well the photo matches them."""

    name: str = Field(description="the enrolled person")
    score: float = Field(
        description="cosine similarity of the photo to them (their best-matching photo with "
        "template `max`, their mean embedding with `mean`); higher is more alike"
    )


class Decision(Answer):
    """What every verify and identify answer carries: the score, the threshold and the false-accept rate behind it."""

    score: float | None = Field(
        description="the score the decision is made on (cosine similarity, higher is more "
        "alike); identify: the best candidate's, null when nobody is enrolled"
    )
    threshold: float | None = Field(description="accept when score >= threshold; " + NOT_CALIBRATED)
    target_far: float | None = Field(description="the false-accept rate the threshold was set for; " + NOT_CALIBRATED)
    achieved_far: float | None = Field(
        None,
        description="the false-accept rate of the threshold on its calibration "
        "data (at most target_far); " + NOT_CALIBRATED,
    )
    far_at_score: float | None = Field(
        description="how often a stranger scored at least this high in calibration "
        "(small: a confident match); " + NOT_CALIBRATED
    )
    calibrated_on: str | None = Field(None, description="the data the threshold was calibrated on; " + NOT_CALIBRATED)
    note: str | None = Field(
        None,
        description="why there is no decision (the gallery is not calibrated) and what to do; null when calibrated",
    )
    warning: str | None = Field(
        None,
        description="why the threshold may not hold (calibrated with another template, "
        "or identify: the gallery has grown since); null when none",
    )
    detection: FaceDetection = Field(description="where the face was found in the photo")


class VerifyAnswer(Decision):
    """Is the photo the enrolled person `name`?"""

    name: str = Field(description="the person claimed (normalised name)")
    score: float = Field(
        description="cosine similarity of the photo to the person claimed (their best-matching photo "
        "with template `max`, their mean embedding with `mean`); higher is more alike"
    )
    accepted: bool | None = Field(description="true when score >= threshold; null until the gallery is calibrated")


class IdentifyAnswer(Decision):
    """Who is in the photo among the enrolled, or `no correspondence`?"""

    candidates: list[Candidate] = Field(description="the best-matching enrolled people, best first (at most top_k)")
    identity: str | None = Field(
        description="the best candidate when their score >= threshold, else "
        "`no correspondence` (also when nobody is enrolled); null when the "
        "gallery is not calibrated (no decision: see candidates)"
    )


# ------------------------------------------------------------------ calibration


class CalibrationPhotos(Answer):
    """The labelled photos a calibration read."""

    used: int = Field(ge=0, description="photos embedded and scored")
    skipped: int = Field(ge=0, description="photos skipped: unreadable, over a limit, or no face found")
    enrolled_left_out: int = Field(ge=0, description="photos left out because they are enrolled (the templates)")


class CalibrationResult(Answer):
    """The thresholds a calibration stored (each used by later answers)."""

    identify: CalibratedThreshold = Field(
        description="the threshold of identify answers (false-alarm rate of searches by someone not enrolled)"
    )
    verify: CalibratedThreshold = Field(
        description="the threshold of verify answers (false-accept rate of comparisons with another person)"
    )
    photos: CalibrationPhotos | None = Field(
        None, description="the photos read, when calibrated from a dataset; null when calibrated from embeddings"
    )


# ------------------------------------------------------------------ the server


class Health(Answer):
    """The server is up."""

    status: Literal["ok"] = Field(description="always `ok`")
    token_required: bool = Field(description="whether the API needs `Authorization: Bearer <token>`")
