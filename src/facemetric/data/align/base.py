"""The aligner interface and registry: photo in, aligned square crop + detection record out.

Backends are registered by name with ``@register_aligner("name")`` (one module each in this package:
``center``, ``opencv``, ``dlib`` ...) and built with :func:`build_aligner`. Each returns the crop
(uint8, size x size x channels) and a :class:`Detection` that says what was found, so every cached
image can be traced back to the box and landmarks it was cut from.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from facemetric.core.faces import Detection, NoFaceError
from facemetric.core.registry import Registry
from facemetric.core.spec import ImageSpec
from facemetric.data.images import ImageDecodeError, open_image


class Aligner:
    """Turns a decoded photo into an aligned crop; subclasses implement :meth:`detect_and_crop`.

    An aligner is re-created, not copied, when pickled (to run in a worker process): it pickles as
    its class and constructor arguments, which it must keep as attributes of the same names
    (``self.size``, ``self.fraction`` ...), and the worker builds its own detector objects from
    them (dlib and OpenCV objects cannot be pickled, nor shared between threads).
    """

    name = "base"

    def __init__(self, size: int = 112, channels: int = 3) -> None:
        self.size, self.channels = size, channels

    def __reduce__(self) -> tuple[Callable[..., Aligner], tuple[type[Aligner], dict[str, Any]]]:
        return _rebuild_aligner, (type(self), self.arguments())

    def arguments(self) -> dict[str, Any]:
        """The constructor arguments that build this aligner again (read from its attributes)."""
        params = inspect.signature(type(self).__init__).parameters.values()
        named = [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        missing = [name for name in named if not hasattr(self, name)]
        if missing:
            raise TypeError(
                f"aligner {type(self).__name__} cannot be re-created in another process: it does not keep its "
                f"constructor argument(s) {', '.join(missing)} as attributes of the same name"
            )
        return {name: getattr(self, name) for name in named}

    def __call__(self, img: Image.Image) -> tuple[np.ndarray, Detection]:
        """(size, size, channels) uint8 crop and its detection record; :class:`NoFaceError` if none."""
        img = ImageOps.exif_transpose(img)  # a photo opened without open_image may still be stored turned
        crop, det = self.detect_and_crop(img.convert("RGB"))
        det.image_size = [img.width, img.height]
        if self.channels == 1:
            crop = np.asarray(Image.fromarray(crop).convert("L"))[:, :, None]
        return crop, det

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        raise NotImplementedError


ALIGNERS: Registry[Callable[..., Aligner]] = Registry("aligner", injected=("size", "channels"))
register_aligner = ALIGNERS.register


def _rebuild_aligner(cls: type[Aligner], arguments: dict[str, Any]) -> Aligner:
    """Unpickling an aligner: build it again from its constructor arguments."""
    return cls(**arguments)


def crop_face_file(path: str, aligner: Aligner) -> tuple[np.ndarray | None, str | None, str | None, dict | None]:
    """(crop, skip kind, reason, detection record) for one photo file; never raises for a bad file."""
    try:
        img = open_image(path, 3)
    except ImageDecodeError as exc:
        return None, exc.kind, str(exc), None
    except Exception as exc:  # a decoder bug must not kill a long job: report it as this file's reason
        return None, "decoder error", f"{type(exc).__name__}: {exc}", None
    try:
        crop, det = aligner(img)
    except NoFaceError as exc:
        return (
            None,
            "no face found",
            str(exc),
            {"backend": aligner.name, "found": False, "image_size": [img.width, img.height]},
        )
    return crop, None, None, det.to_dict()


def build_aligner(name: str, size: int = 112, channels: int = 3, **options) -> Aligner:
    """The registered backend ``name`` producing ``size`` x ``size`` crops."""
    ALIGNERS.check_options(name, options, f"aligner {name}")
    return ALIGNERS.build(name, where=f"aligner {name}", size=size, channels=channels, **options)


CROP_BACKENDS = ("crop", "none", "center")  # ImageSpec.align values that need no detector


def aligner_for(spec: ImageSpec) -> Aligner | None:
    """The detector a model of ``spec`` needs on raw photos, or None when its crop is a fixed cut
    (the central fraction of :class:`ImageSpec`)."""
    if spec.align_name in CROP_BACKENDS:
        return None
    return build_aligner(spec.align_name, size=spec.height, channels=spec.channels, **spec.align_options)
