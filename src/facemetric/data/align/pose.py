"""Head pose (yaw, pitch, roll in degrees) from a detector's five landmarks.

The five points are fitted (``cv2.solvePnP``) to a generic 3-D face: the points' frontal
positions are those of dlib's mean face (the same ones the chip templates use), their depths
average adult values, so the angles are those of a typical face, good to several degrees
(``benchmarks/head_pose.py`` measures them against qmul-multiview's known pans and tilts).

Conventions, as the camera sees the face (x to the image's right, y down):

* ``yaw``: positive when the face turns towards the image's right (the person's own left);
* ``pitch``: positive when the face looks up;
* ``roll``: positive when the face turns clockwise in the image (the eye on the image's right lower).

The rotation is ``Ry(-yaw) @ Rx(-pitch) @ Rz(roll)`` (intrinsic y, x, z) of the face's frame,
which is frontal (0, 0, 0) when the face looks straight into the camera.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from facemetric.core.faces import Pose
from facemetric.data.align.mean_face import DLIB_CHIP_5_POINTS, YUNET_CHIP_FACE

# an adult's outer eye corners are about 90 mm apart
EYE_CORNERS_MM = 90.0

# each kind's points and their depths behind the nose tip (mm); their frontal positions are dlib's mean face
DEPTHS = {
    # YuNet's (facemetric's TEMPLATE_112 order): eye centre on the image's left, on its right, nose tip,
    # mouth corner on the image's left, on its right (YUNET_CHIP_FACE in data.align.mean_face)
    "five": (24.0, 24.0, 0.0, 28.0, 28.0),
    # dlib's 5-point predictor: outer and inner corner of the eye on the image's right, of the one on its
    # left, the base of the nose (DLIB_CHIP_5_POINTS in data.align.mean_face)
    "dlib5": (32.0, 22.0, 32.0, 22.0, 15.0),
}


@functools.cache
def face_model(kind: str) -> np.ndarray:
    """The generic 3-D face of a landmark ``kind`` (``five`` or ``dlib5``), in mm, camera axes of a frontal
    face (x right, y down, z away from the camera), centred on the points' mean."""
    if kind not in DEPTHS:
        raise ValueError(f"no 3-D face for {kind!r} landmarks; known: {', '.join(sorted(DEPTHS))}")
    mm = EYE_CORNERS_MM / float(DLIB_CHIP_5_POINTS[0, 0] - DLIB_CHIP_5_POINTS[2, 0])
    front = {"five": YUNET_CHIP_FACE, "dlib5": DLIB_CHIP_5_POINTS}[kind]
    model = np.column_stack([np.asarray(front, dtype=np.float64) * mm, DEPTHS[kind]])
    model -= model.mean(axis=0)
    model.setflags(write=False)  # cached: shared by every call
    return model


def camera_matrix(width: float, height: float) -> np.ndarray:
    """A pinhole camera of a typical photo: focal length the longer side, centre the photo's centre."""
    focal = float(max(width, height))
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def angles(rotation: np.ndarray) -> Pose:
    """Yaw, pitch and roll (degrees, this module's conventions) of a rotation of the face's frame."""
    r = np.asarray(rotation, dtype=np.float64)
    a = math.atan2(r[0, 2], r[2, 2])
    b = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    c = math.atan2(r[1, 0], r[1, 1])
    return Pose(yaw=-math.degrees(a), pitch=-math.degrees(b), roll=math.degrees(c))


def rotation(pose: Pose) -> np.ndarray:
    """The rotation of the face's frame for a pose (the inverse of :func:`angles`)."""
    a, b, c = (math.radians(v) for v in (-pose.yaw, -pose.pitch, pose.roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def head_pose(points: ArrayLike, kind: str, image_size: Sequence[float]) -> Pose | None:
    """The head's pose from five landmarks of ``kind`` in a photo of ``image_size`` (width, height);
    None where the fit fails (points on a line, a degenerate detection)."""
    import cv2

    image = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    model = face_model(kind)
    if image.shape != (len(model), 2) or not np.isfinite(image).all():
        return None
    k = camera_matrix(*image_size[:2])
    # SQPnP finds the global least-squares pose (a frontal start misleads the iterative solver on a head
    # turned 70 degrees and more); Levenberg-Marquardt then polishes it
    try:
        ok, rvec, tvec = cv2.solvePnP(model, image, k, None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:
        return None
    if ok:
        rvec, tvec = cv2.solvePnPRefineLM(model, image, k, None, rvec, tvec)
    if not ok or tvec[2, 0] <= 0:
        return None
    matrix, _ = cv2.Rodrigues(rvec)
    return angles(matrix)


def project(kind: str, pose: Pose, image_size: Sequence[float], centre: Sequence[float], distance: float) -> np.ndarray:
    """Where a generic face of ``kind`` in ``pose``, ``distance`` mm from the camera, its centre seen at
    pixel ``centre``, puts its five points in the photo (synthetic landmarks for tests and checks)."""
    k = camera_matrix(*image_size[:2])
    translation = np.array(
        [(centre[0] - k[0, 2]) * distance / k[0, 0], (centre[1] - k[1, 2]) * distance / k[1, 1], distance]
    )
    camera = face_model(kind) @ rotation(pose).T + translation
    pixels = camera @ k.T
    return pixels[:, :2] / pixels[:, 2:3]


def pose_record(points: ArrayLike | None, kind: str, image_size: Sequence[float]) -> dict | None:
    """A detection's ``pose`` field: :func:`head_pose` rounded to 0.1 degree, None without five points."""
    if points is None:
        return None
    pose = head_pose(points, kind, image_size)
    return None if pose is None else pose.rounded()
