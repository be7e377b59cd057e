"""The torch side of inference: device and precision, the forward pass over
a planned buffer, int8 quantization on CPU, and OpenMP safety after fork."""

import contextlib
import functools
import os
import warnings
from typing import Optional, Set

import numpy as np
from thinc.api import CupyOps, Model, get_current_ops

from .batching import PlannedBuffer, _Batch
from .checkpoint import HFState, find_classifier
from .errors import Warnings


def _resolve_device(model: Model):
    import torch

    setting = model.attrs["device"]
    if setting:
        return torch.device(setting)
    ops = get_current_ops()
    if isinstance(ops, CupyOps):
        return torch.device("cuda", ops.device_id)
    return torch.device("cpu")


def _autocast(device, precision: str):
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=dtype)
    if device.type == "cpu" and precision == "bf16" and cpu_has_bf16():
        return torch.autocast(device_type="cpu", dtype=dtype)
    warnings.warn(Warnings.W002.format(precision=precision, device=device))
    return contextlib.nullcontext()


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX). Without
    them torch emulates bf16, slower than fp32. With them it depends on the
    CPU: MiniLM predicted 2.4x faster than fp32 on an AMD EPYC, but 0.6x on
    an Intel Xeon with AVX512-BF16 and no AMX (docs/PERFORMANCE.md)."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def cpu_model() -> str:
    """The CPU's model name (for benchmark records), as /proc/cpuinfo gives it."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def to_device(array: np.ndarray, device):
    """A host array on the device: on CUDA through pinned memory, copied
    without blocking the host (the copy is ordered before the kernels that
    read it on the same stream)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _batch_inputs(state: HFState, batch: _Batch, device):
    kwargs = {
        "input_ids": to_device(batch.input_ids, device),
        "attention_mask": to_device(batch.attention_mask, device),
    }
    if state.global_attention == "first":
        import torch

        gmask = torch.zeros_like(kwargs["attention_mask"])
        gmask[:, 0] = 1
        kwargs["global_attention_mask"] = gmask
    return kwargs


def gather_rows(outputs, planned: PlannedBuffer, device):
    """Each doc wordpiece's row of the batches' (b, T, width) outputs, in doc
    order, with one index_select (autograd passes through it in training)."""
    import torch

    flat = torch.cat([o.reshape(-1, o.shape[-1]) for o in outputs])
    return flat.index_select(0, to_device(planned.rows, device))


def run_buffer(model: Model, state: HFState, planned: PlannedBuffer) -> "tuple[np.ndarray, Optional[np.ndarray]]":
    """The forward pass over a planned buffer: (n_wp_total, n_labels) float32
    logits of the docs' wordpieces in doc order, and their last hidden states
    where the model was asked for them (else None). One copy back to the host
    per buffer, not one per batch or doc."""
    import torch

    device = _resolve_device(model)
    hf = state.hf_model
    if next(hf.parameters()).device != device:
        hf.to(device)
    hf.eval()
    if model.attrs["quantize"] != "none" and device.type == "cpu":
        hf = _quantized(state, model.attrs["quantize"])
    parts, hidden_parts = [], []
    want_hidden = bool(model.attrs.get("hidden_states"))
    # A quantized copy computes its own way; autocast is for the float model.
    precision = "fp32" if hf is not state.hf_model else model.attrs["precision"]
    with torch.inference_mode(), _autocast(device, precision):
        for batch in planned.batches:
            out = hf(**_batch_inputs(state, batch, device), output_hidden_states=want_hidden)
            parts.append(out.logits)
            if want_hidden:
                hidden_parts.append(out.hidden_states[-1])
        # The one device -> host copy of the buffer.
        logits = gather_rows(parts, planned, device).float().cpu().numpy()
        hidden = gather_rows(hidden_parts, planned, device).float().cpu().numpy() if want_hidden else None
    return logits, hidden


@contextlib.contextmanager
def fork_safe_threads(state: HFState):
    """Run the forward pass on one torch thread, restored afterwards, where
    torch's OpenMP pool cannot be trusted: in a multiprocessing worker
    (spaCy's `nlp.pipe(n_process=...)`), and in any process forked after
    this model predicted in its parent (a web server that loaded and ran
    the pipeline before forking its workers, W004). GNU OpenMP's pool does
    not survive fork: the first parallel region hangs. Every other process,
    a worker that loads the pipeline after the fork among them, keeps
    torch's own thread setting."""
    import multiprocessing

    import torch

    pid = os.getpid()
    forked_after_use = state.predicted_in_pid not in (None, pid)
    in_worker = multiprocessing.parent_process() is not None
    if not in_worker and not forked_after_use:
        state.predicted_in_pid = pid
        yield
        return
    if forked_after_use and not in_worker and not state.warned_fork:
        state.warned_fork = True
        warnings.warn(Warnings.W004.format(parent=state.predicted_in_pid, pid=pid))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _quantized(state: HFState, how: str = "int8"):
    """An int8 dynamically quantized copy of the model for CPU inference, made
    once per loaded checkpoint (training steps drop it)."""
    import copy

    import torch

    if state.quantized is None:
        hf = copy.deepcopy(state.hf_model).cpu().eval()
        with warnings.catch_warnings():
            # torch marks its eager-mode quantization as deprecated (moving to torchao).
            warnings.simplefilter("ignore")
            state.quantized = torch.ao.quantization.quantize_dynamic(hf, quantized_linears(hf, how), dtype=torch.qint8)
    return state.quantized


def quantized_linears(hf_model, how: str) -> Set[str]:
    """Names of the linear layers to quantize: all of them ("int8_all"), or
    all but the feed-forward output projections and the head ("int8")."""
    import torch

    linears = {name: m for name, m in hf_model.named_modules() if isinstance(m, torch.nn.Linear)}
    if how == "int8_all":
        return set(linears)
    config = hf_model.config
    inter, hidden = getattr(config, "intermediate_size", None), getattr(config, "hidden_size", None)
    head = find_classifier(hf_model)
    return {name for name, m in linears.items()
            if m is not head and not (m.in_features == inter and m.out_features == hidden)}
