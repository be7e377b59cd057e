"""Where and in which precision the torch model runs: device selection,
autocast, host-to-device copies. Leaf module: imports nothing from the
package but its messages."""

import contextlib
import functools
import warnings
from typing import Optional

import numpy as np

from .errors import Warnings


def resolve_device(setting: Optional[str]):
    """The torch device for a `device` setting: the setting where given
    (e.g. "cuda:0"), else the GPU spaCy was told to use
    (`spacy.prefer_gpu()`/`require_gpu()`), else the CPU."""
    import torch
    from thinc.api import CupyOps, get_current_ops

    if setting:
        return torch.device(setting)
    ops = get_current_ops()
    if isinstance(ops, CupyOps):
        return torch.device("cuda", ops.device_id)
    return torch.device("cpu")


def autocast(device, precision: str):
    """A context that runs the model in `precision` ("fp32", "fp16", "bf16")
    on `device`: torch's autocast on CUDA, and for bf16 on a CPU with bf16
    instructions; elsewhere fp32, with a warning (W002)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=dtype)
    if device.type == "cpu" and precision == "bf16" and cpu_has_bf16():
        return torch.autocast(device_type="cpu", dtype=dtype)
    warnings.warn(Warnings.W002.format(precision=precision, device=device), stacklevel=2)
    return contextlib.nullcontext()


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX). Without
    them torch emulates bf16, slower than fp32; with them the gain depends
    on the CPU (docs/PERFORMANCE.md)."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def to_device(array: np.ndarray, device):
    """A host array on the device: on CUDA through pinned memory, copied
    without blocking the host (the copy is ordered before the kernels that
    read it on the same stream)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
