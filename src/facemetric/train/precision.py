"""Which arithmetic a training run uses: ``train.amp`` = auto | true | false.

``auto`` (the default) turns on bfloat16 autocast where it was measured faster
(``python benchmarks/backbones.py``, BENCHMARKS.md): on a CPU with native bf16 instructions
(AVX512-BF16 or AMX) it trains IR-ResNet, ConvNeXt, Inception-ResNet and L2-Net 1.2x to 2.1x
faster with embeddings within 1.2e-4 cosine of fp32, but MobileFaceNet's depthwise
convolutions run slower in bf16 there, so it stays fp32: a backbone declares that in its spec
(``ModelSpec.bf16_slower_on_cpu``). On CUDA: bf16 where the GPU supports it.
Losses always run in fp32 on the fp32 copy of the embeddings.
"""

from __future__ import annotations

import torch

from facemetric.models.registry import model_spec


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix products in hardware (without them autocast emulates, slowly)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes: be conservative
        return False


def use_bf16(setting: str | bool, model_name: str, device: torch.device) -> tuple[bool, str]:
    """(enabled, why) for ``train.amp`` = ``setting`` with the registered backbone ``model_name`` on ``device``."""
    if setting is True or setting is False:
        return setting, f"train.amp={str(setting).lower()}"
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "train.amp=auto: " + ("the GPU supports bf16" if ok else "the GPU has no bf16")
    if not cpu_has_native_bf16():
        return False, "train.amp=auto: this CPU has no native bf16 (AVX512-BF16/AMX)"
    if model_spec(model_name).bf16_slower_on_cpu:
        return False, f"train.amp=auto: {model_name} trains slower in bf16 on CPU"
    return True, "train.amp=auto: native bf16 on this CPU"
