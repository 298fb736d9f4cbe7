"""Model fusion: one embedder over several models (``dlib-resnet+sface``), sharing one face detection.

Each photo is searched once by YuNet and every member's crop is cut from the same five points
(:class:`~facemetric.data.align.shared.SharedYunetAligner`); each member embeds its crop to a unit
vector ``u_i``, and the fusion's embedding is the concatenation of ``sqrt(w_i) * u_i``, divided by
``sqrt(sum w_i)``. It is unit length, and the cosine of two fused embeddings is the weighted mean of
the members' cosines, ``sum w_i cos_i / sum w_i``: score-level fusion, written as an embedding, so a
fusion is calibrated, stored in galleries (its fingerprint covers every member and weight), searched
by FAISS or pgvector, and served like any single model.

Weights: ``NAME@W`` (``arcface-mbf@2+dlib-resnet``); by default each member's :attr:`score_spread`
(the standard deviation of its cosines between different people, declared by pretrained models,
measured on LFW development-train: ``python benchmarks/score_spread.py``) sets ``w_i = 1 / spread_i``,
which puts every member's cosines on one scale (a z-score, up to a constant that changes no decision);
a model that declares none counts 1.

Members must be cut from five landmarks: models on ArcFace template crops (``align: yunet``, e.g.
``sface``, ``arcface-mbf`` or a checkpoint trained on ``prepare --align yunet``) and dlib's chip
(``dlib-resnet``, run with ``detector=yunet``, or a checkpoint on ``--align dlib-chip`` crops).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from facemetric.core.embedder import Embedder
from facemetric.core.errors import ConfigError
from facemetric.core.spec import ImageSpec
from facemetric.data.align.shared import SharedYunetAligner, canvas_shape, canvas_slots
from facemetric.embedders.base import CropEmbedder

VERSION = "fusion/1"  # bump when the way crops are cut or vectors are combined changes
CUT_OF_ALIGN = {"yunet": "yunet", "dlib-chip": "dlib-chip"}  # a member's spec.align -> the crop cut for it


def member_weight(member: Embedder) -> float:
    """A member's default weight: 1 / its declared spread of impostor cosines (1 when it declares none)."""
    spread = getattr(member, "score_spread", None)
    return 1.0 / float(spread) if spread else 1.0


class FusionEmbedder(CropEmbedder):
    """The concatenated, weighted unit embeddings of ``members`` on one YuNet detection (module docstring).

    Args:
        members: the models, each cut from five landmarks (``spec.align`` ``yunet`` or ``dlib-chip``).
        weights: one per member (None: :func:`member_weight` of each).
        references: what :func:`~facemetric.embedders.load_embedder` was given for each member (the
            fusion's :attr:`reference` joins them with ``+``).
    """

    def __init__(
        self, members: list[Embedder], weights: list[float] | None = None, references: list[str] | None = None
    ) -> None:
        if len(members) < 2:
            raise ConfigError("a fusion needs two models or more, joined by '+' (dlib-resnet+sface)")
        weights = [member_weight(m) for m in members] if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or any(not np.isfinite(w) or w <= 0 for w in weights):
            raise ConfigError(f"fusion weights must be one positive number per model, got {weights}")
        cuts = []
        for member in members:
            align = member.spec.align_name
            if align not in CUT_OF_ALIGN or member.spec.channels != 3 or member.spec.height != member.spec.width:
                raise ConfigError(
                    f"model {member.reference or member.name} reads {member.spec.height}x{member.spec.width} crops cut "
                    f"by {align!r}; a fusion shares one YuNet detection, so every model must read square RGB crops "
                    "cut from five landmarks (align yunet, e.g. sface, arcface-mbf; or dlib-chip, e.g. dlib-resnet)"
                )
            cuts.append(f"{CUT_OF_ALIGN[align]}:{member.spec.height}")
        self.members, self.weights, self.cuts = members, weights, tuple(cuts)
        height, width = canvas_shape(self.cuts)
        super().__init__(ImageSpec(height, width, 3, align="yunet-shared"), SharedYunetAligner(self.cuts))
        self.dim = sum(int(m.dim) for m in members)
        refs = references or [m.reference or m.name for m in members]
        default = [member_weight(m) for m in members]
        self.reference = "+".join(
            ref if abs(w - d) < 1e-12 else f"{ref}@{w:g}" for ref, w, d in zip(refs, weights, default)
        )
        self.name = self.reference
        digest = hashlib.sha256(VERSION.encode())
        for member, w in zip(members, weights):
            digest.update(f" {member.fingerprint}@{w!r}".encode())
        self._fingerprint = digest.hexdigest()[:16]
        self._scale = np.sqrt(np.asarray(weights) / np.sum(weights)).astype(np.float32)

    @property
    def fingerprint(self) -> str:  # type: ignore[override]
        """Every member's fingerprint and weight: equal fingerprints, equal vectors."""
        return self._fingerprint

    def embed_crops(self, crops: Any, batch_size: int = 64, flip: bool = False, progress: bool = False) -> np.ndarray:
        """Unit-length fused embeddings of canvases (each member's crop in its slot, :func:`canvas_slots`)."""
        crops = np.asarray(crops)
        parts = []
        for member, (x, size), scale in zip(self.members, canvas_slots(self.cuts), self._scale):
            own = np.ascontiguousarray(crops[:, :size, x : x + size])
            parts.append(member.embed_crops(own, batch_size, flip, progress) * scale)
        if not parts or len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        fused = np.concatenate(parts, axis=1).astype(np.float32)
        return fused / np.linalg.norm(fused, axis=1, keepdims=True)
