"""The weights a run starts from and which of them learn: pretrained weights (``model.pretrained``),
another run's checkpoint (``model.init``), frozen first parts (``model.freeze``) and a lower backbone
learning rate (``optim.backbone_lr_scale``): what fine-tuning a good network on a user's own people needs.

Pretrained weights are declared by their backbone (:class:`~facemetric.models.spec.PretrainedWeights`
in its :class:`~facemetric.models.spec.ModelSpec`), with the crops and the normalisation they were
trained with; this module reads those declarations.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch.nn as nn

from facemetric.core.checkpoint import CheckpointError, load_checkpoint
from facemetric.core.config import Config, ModelConfig, OptimConfig
from facemetric.core.errors import ConfigError
from facemetric.core.spec import ImageSpec
from facemetric.models.registry import MODELS, model_spec
from facemetric.models.spec import PretrainedWeights

log = logging.getLogger("facemetric")


def pretrained_weights(model: ModelConfig) -> PretrainedWeights | None:
    """The weights ``model.pretrained`` names, as ``model.name`` declares them (None: no pretrained start);
    a name the backbone does not declare is refused, saying which backbones have it."""
    if model.pretrained is None:
        return None
    declared = model_spec(model.name).pretrained
    if model.pretrained in declared:
        return declared[model.pretrained]
    owners = [name for name in MODELS.names() if model.pretrained in model_spec(name).pretrained]
    if owners:
        raise ConfigError(
            f"model.pretrained: {model.pretrained}'s weights are for model.name {' or '.join(owners)}, not {model.name}"
        )
    known = sorted({w for name in MODELS.names() for w in model_spec(name).pretrained})
    raise ConfigError(
        f"model.pretrained: no backbone declares weights named {model.pretrained!r}; available: {', '.join(known)}"
    )


def training_spec(cfg: Config, spec: ImageSpec) -> ImageSpec:
    """The data's spec, with the input normalisation the model trains with: its pretrained weights',
    else its own declared one, else the data's.

    Pretrained weights read crops cut the way theirs were (dlib's: ``facemetric prepare --align
    dlib-chip``), of their channels. Smaller crops of the same cut are allowed down to the network's
    minimum: the network then sees the face at a smaller scale, and is cheaper, which is what
    distilling it into a faster copy of itself needs.
    """
    weights = pretrained_weights(cfg.model)
    if weights is None:
        declared = model_spec(cfg.model.name).normalization
        return dataclasses.replace(spec, mean=declared[0], std=declared[1]) if declared else spec
    (height, width), side = weights.input_size, weights.min_side
    if spec.align_name != weights.align or spec.channels != weights.channels or min(spec.height, spec.width) < side:
        raise ConfigError(
            f"model.pretrained: {cfg.model.pretrained}'s weights were trained on {weights.channels}-channel "
            f"{height}x{width} crops cut by {weights.align!r} (smaller ones run down to {side}x{side}), but "
            f"data.source holds {spec.height}x{spec.width}x{spec.channels} images cut by {spec.align!r}; prepare "
            f"them with `facemetric prepare --data PHOTOS --out CACHE --align {weights.align}` and train on CACHE"
        )
    if (spec.height, spec.width) != (height, width):
        log.info(
            "model: %s's weights were trained on %dx%d crops; these are %dx%d, so the network starts at another "
            "scale of the face: train it (e.g. distil it from the full-size network) before using it",
            cfg.model.pretrained,
            height,
            width,
            spec.height,
            spec.width,
        )
    if weights.normalization is None:
        return spec
    mean, std = weights.normalization
    return dataclasses.replace(spec, mean=mean, std=std)


def initialise(model: nn.Module, cfg: ModelConfig) -> None:
    """Load ``model.pretrained`` weights, then ``model.init``'s, into a freshly built ``model``."""
    weights = pretrained_weights(cfg)
    if weights is not None:
        skipped = weights.load(model)
        log.info("model: starting from %s's trained weights%s", cfg.pretrained, f" (new: {skipped})" if skipped else "")
    if cfg.init:
        path = Path(cfg.init).expanduser()
        state = load_checkpoint(path)
        own = model.state_dict()
        theirs = state["model"]
        mismatched = [k for k in own if k in theirs and theirs[k].shape != own[k].shape]
        missing = [k for k in own if k not in theirs]
        if mismatched or len(missing) == len(own):
            shown = ", ".join((mismatched or missing)[:4])
            raise CheckpointError(
                f"model.init: {path} holds a {state['config']['model']['name']} model whose weights do not fit "
                f"{cfg.name} ({shown}); start from a checkpoint of the same model.name and embedding_dim"
            )
        model.load_state_dict({k: v for k, v in theirs.items() if k in own}, strict=False)
        log.info("model: starting from %s%s", path, f" ({len(missing)} tensors new)" if missing else "")


def freeze(model: nn.Module, parts: int) -> list[nn.Module]:
    """Stop training the first ``parts`` parts of the network (``model.parts()``, from the input up) and
    return them; the trainer keeps them in eval mode (their batch-norm statistics do not move)."""
    if parts == 0:
        return []
    if not hasattr(model, "parts"):
        raise ConfigError(f"model.freeze: {type(model).__name__} does not list its parts; freeze works on dlib_resnet")
    units = list(model.parts())  # type: ignore[operator]  # checked above
    if parts > len(units):
        raise ConfigError(
            f"model.freeze: {parts}, but this model has {len(units)} parts (stem ... fc); {len(units)} fixes the "
            "whole network (only a loss head such as ArcFace's then learns)"
        )
    frozen = units[:parts]
    fixed = {id(p) for unit in frozen for p in unit.parameters()}
    for unit in frozen:
        unit.requires_grad_(False)
    names = [name for name, p in model.named_parameters() if id(p) in fixed]
    if names:
        log.info("model.freeze: %d parameter tensors fixed (%s ... %s)", len(names), names[0], names[-1])
    return frozen


def param_groups(model: nn.Module, loss: nn.Module, optim: OptimConfig) -> list[dict[str, Any]]:
    """Optimizer groups: the loss's own weights (a margin head) at ``optim.lr``, the backbone's
    trainable weights at ``optim.lr * optim.backbone_lr_scale``; frozen weights are left out."""
    backbone = [p for p in model.parameters() if p.requires_grad]
    head = [p for p in loss.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = []
    if head:
        groups.append({"params": head})
    if backbone:
        groups.append({"params": backbone, "lr": optim.lr * optim.backbone_lr_scale})
    if not groups:
        raise ConfigError(
            "nothing to train: model.freeze fixes the whole network and the loss has no weights of its own "
            "(lower model.freeze, or use a loss with a head such as arcface)"
        )
    return groups
