"""Where a run starts from: pretrained weights (``model.pretrained``), another run's checkpoint
(``model.init``), frozen first parts (``model.freeze``) and a lower backbone learning rate
(``optim.backbone_lr_scale``): what fine-tuning a good network on a user's own people needs."""

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
from facemetric.models.dlib_resnet import CHIP, MIN_SIDE, dlib_normalization, load_pretrained

log = logging.getLogger("facemetric")


def training_spec(cfg: Config, spec: ImageSpec) -> ImageSpec:
    """The data's spec, with the input normalisation the pretrained weights expect.

    dlib's network was trained on its own 150x150 face chips, ``(pixel - mean) / 256``: a run that
    starts from it must read chips cut the same way (``facemetric prepare --align dlib-chip``).
    Smaller chips of the same region (``--size 112``) are allowed: the network then sees the face at
    a smaller scale, and is cheaper, which is what distilling it into a faster copy of itself needs.
    """
    if cfg.model.pretrained != "dlib":
        return spec
    if spec.align != "dlib-chip" or spec.channels != 3 or min(spec.height, spec.width) < MIN_SIDE:
        raise ConfigError(
            f"model.pretrained: dlib's network reads RGB face chips cut by dlib ({CHIP}x{CHIP}, or smaller down to "
            f"{MIN_SIDE}x{MIN_SIDE}), but data.source holds {spec.height}x{spec.width}x{spec.channels} images cut by "
            f"{spec.align!r}; prepare them with `facemetric prepare PHOTOS --out CACHE --align dlib-chip` "
            "and train on CACHE"
        )
    if (spec.height, spec.width) != (CHIP, CHIP):
        log.info(
            "model: dlib's weights were trained on %dx%d chips; these are %dx%d, so the network starts at another "
            "scale of the face: train it (e.g. distil it from the full-size network) before using it",
            CHIP,
            CHIP,
            spec.height,
            spec.width,
        )
    mean, std = dlib_normalization()
    return dataclasses.replace(spec, mean=mean, std=std)


def initialise(model: nn.Module, cfg: ModelConfig) -> None:
    """Load ``model.pretrained`` weights, then ``model.init``'s, into a freshly built ``model``."""
    if cfg.pretrained:
        skipped = load_pretrained(model, cfg.pretrained)
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


def freeze(model: nn.Module, parts: int) -> list[str]:
    """Stop training the first ``parts`` parts of the network (``model.parts()``, from the input up);
    returns the names of the frozen parameters. A frozen part also stays in eval mode (its batch-norm
    statistics do not move)."""
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
    frozen = set()
    for unit in units[:parts]:
        for module in unit.modules():
            setattr(module, "frozen", True)  # noqa: B010  (the trainer keeps these in eval mode)
        for p in unit.parameters():
            p.requires_grad_(False)
            frozen.add(id(p))
    return [name for name, p in model.named_parameters() if id(p) in frozen]


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
