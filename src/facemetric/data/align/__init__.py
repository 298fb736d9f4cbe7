"""Face detection and alignment: photo in, aligned square crop + detection record out.

One aligner per module of this package, registered with ``@register_aligner("name")`` (``none`` and
``center`` in :mod:`.center`, ``opencv``, ``dlib`` and ``dlib-chip`` in :mod:`.opencv` and
:mod:`.dlib`, ``yunet`` in :mod:`.yunet`), found by ``core.registry.discover`` like every other
plugin: a new detector is one new file here. Landmark aligners warp the face onto the five-point
template of the ArcFace/insightface 112x112 crop (:mod:`.geometry`). Heavy detector libraries (dlib,
OpenCV) load inside the aligners, when one is built, never on import.
"""

from facemetric.core.registry import discover
from facemetric.data.align.base import (
    ALIGNERS,
    CROP_BACKENDS,
    Aligner,
    aligner_for,
    build_aligner,
    crop_face_file,
    register_aligner,
)
from facemetric.data.align.center import CenterAligner, ResizeAligner
from facemetric.data.align.geometry import TEMPLATE_112, crop_box, pick_face, similarity_transform, warp_to_template

discover(__name__, __path__)

__all__ = [
    "ALIGNERS",
    "CROP_BACKENDS",
    "TEMPLATE_112",
    "Aligner",
    "CenterAligner",
    "ResizeAligner",
    "aligner_for",
    "build_aligner",
    "crop_box",
    "crop_face_file",
    "pick_face",
    "register_aligner",
    "similarity_transform",
    "warp_to_template",
]
