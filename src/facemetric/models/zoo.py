"""The backbone catalogue: each registered model at its natural input, and what it costs.

Each backbone declares its natural input beside its builder (:class:`~facemetric.models.spec.ModelSpec`:
112x112 RGB crops for face models, 32x32 grey patches for L2-Net / HardNet). :func:`describe` builds
a model there and reports parameters, counted FLOPs and, optionally, CPU forward speed: what
``facemetric models`` prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from facemetric.core.errors import ConfigError, FacemetricError
from facemetric.models.budget import count_flops, count_parameters
from facemetric.models.registry import available_models, build_natural, model_spec

log = logging.getLogger("facemetric")


@dataclass
class ModelRow:
    name: str
    input: str  # "3x112x112"
    embedding_dim: int
    params: int
    gflops: float  # per image, forward
    images_per_s: float | None  # CPU forward, eval mode, channels-last fp32; None when not measured


@torch.no_grad()
def forward_speed(
    model: torch.nn.Module, input_shape: tuple[int, int, int], batch: int = 8, seconds: float = 1.0
) -> float:
    """Images per second of eval-mode forward passes (channels-last), after one warm-up batch."""
    model = model.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack memory_format
    x = torch.randn(batch, *input_shape).contiguous(memory_format=torch.channels_last)
    return images_per_second(lambda: model(x), batch, seconds)


def images_per_second(fn: Callable[[], object], batch: int, seconds: float) -> float:
    """Images per second of ``fn`` (one batch of ``batch`` per call) over about ``seconds``, after a warm-up call."""
    fn()
    done, start = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < seconds:
        fn()
        done += batch
    return done / (time.perf_counter() - start)


def _embedding_dim(model: torch.nn.Module) -> int:
    dim = getattr(model, "embedding_dim", None)
    return int(dim) if isinstance(dim, int) else 0


def describe(name: str, embedding_dim: int | None = None, speed: bool = True) -> ModelRow:
    """Parameters, FLOPs and (with ``speed``) CPU images/s of ``name`` at its natural input."""
    c, h, w = model_spec(name).input_shape
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_natural(name, embedding_dim)
    rate = forward_speed(model, (c, h, w)) if speed else None
    return ModelRow(
        name,
        f"{c}x{h}x{w}",
        _embedding_dim(model),
        count_parameters(model),
        round(count_flops(model, (c, h, w)) / 1e9, 3),
        round(rate, 1) if rate else None,
    )


def catalogue(embedding_dim: int | None = None, speed: bool = True, names: list[str] | None = None) -> list[ModelRow]:
    """:func:`describe` for every registered model (or ``names``). Listing them all, a model that cannot be
    built here is left out with a log line saying why (a warning when its weight file is not installed);
    a model named is built or refused."""
    if names:
        return [describe(n, embedding_dim, speed) for n in names]
    rows = []
    for name in available_models():
        try:
            rows.append(describe(name, embedding_dim, speed))
        except ConfigError as exc:  # built from options it has no default for (arcface_onnx: a file)
            log.info("%s left out: %s", name, exc)
        except FacemetricError as exc:
            log.warning("%s left out: %s", name, exc)
    return rows


def format_table(rows: list[ModelRow], cap: int | None = None) -> str:
    """The catalogue as a text table (``facemetric models``); with ``cap``, whether each model fits it."""
    head = f"{'model':<26}{'input':>10}{'dim':>6}{'params':>14}{'GFLOPs':>9}{'img/s':>10}" + ("  fits" if cap else "")
    lines = [head]
    for row in rows:
        speed = f"{row.images_per_s:>9,.1f}" if row.images_per_s is not None else f"{'-':>9}"
        fits = ("  yes" if row.params <= cap else "  NO") if cap else ""
        lines.append(
            f"{row.name:<26}{row.input:>10}{row.embedding_dim:>6}{row.params:>14,}{row.gflops:>9.3f} {speed}{fits}"
        )
    return "\n".join(lines)
