"""Config sections of what is trained and what it learns from: ``model``, ``loss``, ``miner``, ``distill``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from facemetric.core.config_section import Options, Section, parse_count
from facemetric.core.errors import ConfigError


class ModelConfig(Section):
    name: str = "iresnet_tiny"  # any name of `facemetric models`
    embedding_dim: int = Field(128, ge=1)
    options: Options = Field(default_factory=dict)  # the backbone's own options (checked against its signature)
    max_params: int | None = None  # refuse a model with more parameters (e.g. 21M or 21000000); null: no cap
    pretrained: str | None = None  # start from trained weights the backbone declares: dlib (model.name: dlib_resnet)
    init: str | None = None  # start from this checkpoint's model weights (a run's best.pt), e.g. to fine-tune it
    freeze: int = Field(0, ge=0)  # keep the first N parts fixed (dlib_resnet: 1 stem, 2-6 residual levels, 7 all)
    # embed every face with its mirror image (the unit-length sum of both) wherever the trained model is used:
    # validation, eval, galleries, serve, ONNX export; twice the cost of an embedding, not used in training steps
    mirror: bool = False

    @field_validator("max_params", mode="before")
    @classmethod
    def _count(cls, value: Any) -> int | None:
        try:
            return parse_count(value, "model.max_params")
        except ConfigError as exc:
            raise ValueError(str(exc).split(": ", 1)[1]) from None


class LossConfig(Section):
    name: str = "arcface"  # any name of `facemetric.losses.available_losses()`
    options: Options = Field(default_factory=dict)  # e.g. {scale: 32, margin: 0.5}
    # from epoch N (1-based) on, these options replace those in `options`, e.g. {5: {margin: 0.5}}
    schedule: dict[int, Options] = Field(default_factory=dict)
    # Partial FC for margin heads: each step uses this fraction of the class centres (all those the batch's
    # labels need, plus random others); under torchrun the centres are also split over the processes
    sample_rate: float = Field(1.0, gt=0.0, le=1.0)

    @field_validator("schedule")
    @classmethod
    def _epochs(cls, value: dict[int, Options]) -> dict[int, Options]:
        bad = [e for e in value if e < 1]
        if bad:
            raise ValueError(f"epochs are counted from 1, got {bad[0]}")
        return value


class MinerStage(Section):
    name: str
    options: Options = Field(default_factory=dict)


class MinerConfig(Section):
    """Which pairs or triplets a pair loss learns from; null name: the loss's own default."""

    name: str | None = None  # batch_hard, semi_hard, all_triplets, multi_similarity, all_pairs ...
    options: Options = Field(default_factory=dict)
    # from epoch N (1-based) on, this miner: FaceNet's recipe is name semi_hard, schedule {11: {name: batch_hard}}
    schedule: dict[int, MinerStage] = Field(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _epochs(cls, value: dict[int, MinerStage]) -> dict[int, MinerStage]:
        bad = [e for e in value if e < 1]
        if bad:
            raise ValueError(f"epochs are counted from 1, got {bad[0]}")
        return value

    def first(self) -> MinerStage | None:
        """The miner a run starts with (None: the loss's own default)."""
        return MinerStage(name=self.name, options=self.options) if self.name else None


class DistillConfig(Section):
    """Knowledge distillation (``loss.name: distill``): the student learns the teacher's embeddings.

    ``teacher`` is anything ``facemetric embed --model`` takes: ``dlib-resnet``, a run's ``best.pt``,
    an ``.onnx`` file. It cuts each training photo its own way (its ``source`` path, so the student's
    crops may differ from the teacher's) and embeds it once, and mirrored when ``mirror`` (matched to
    the student's flipped views); the table is cached, so no epoch pays the teacher again.
    ``center`` learns the teacher's space with its mean removed (what tells people apart, spread over
    the sphere). ``labels``: weight of a labelled margin loss (``label_loss``) added to the distillation
    terms (0: the photos' identities are not used at all). ``online``: instead of the table, the teacher
    embeds every batch as augmented for the student (resized to its input), so the targets follow any
    augmentation; each step pays the teacher's forward pass, and the student's crops must be cut the way
    the teacher reads them (dlib: ``prepare --align dlib-chip --size 112``).
    """

    teacher: str | None = None
    online: bool = False
    mirror: bool = True  # (table only) also embed each photo's mirror image, the target of a flipped view
    # subtract the teacher's mean embedding (over the training photos) and re-normalise: dlib's unit vectors of two
    # different people have cosine 0.84 (a narrow cone a batch-normalised student cannot reach)
    center: bool = True
    workers: int | None = Field(None, ge=0)  # face-detection processes for the teacher's pass (None: automatic)
    labels: float = Field(0.0, ge=0.0)
    label_loss: LossConfig = Field(default_factory=LossConfig)
