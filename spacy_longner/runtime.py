"""The torch forward pass at inference: over a planned buffer, on the
device and in the precision set (device.py), int8 quantization on CPU, what
a forward call costs for batching, and OpenMP safety after fork."""

import contextlib
import os
import warnings
from typing import Optional

import numpy as np
from thinc.api import Model

from .batching import Batch, PlannedBuffer
from .checkpoint import HFState, find_classifier
from .device import autocast, resolve_device, to_device
from .errors import Warnings

# A forward call's fixed cost over the cost of one wordpiece, times the
# weights per layer: fitted on the CPU machine (docs/PERFORMANCE.md): a 2-layer, 64-wide BERT pays 644 us
# a call and 1.97 us a wordpiece
# (327 wordpieces a call; 32,768 weights a layer; 327 x 32,768, rounded
# down).
_CPU_CALL_COST = 10_000_000


def batch_overhead(state: HFState, device_type: str) -> int:
    """What a forward call costs beyond its wordpieces, in padded
    wordpieces, for make_batches. On CPU a call's fixed cost (Python and
    torch dispatch per module, about the same for any width) weighs against
    the per-wordpiece cost, which grows with the weights per layer: a few
    hundred wordpieces for a 64-wide model, single digits for MiniLM and
    larger. On CUDA: 0 (batches as before; not measured)."""
    if device_type != "cpu":
        return 0
    cfg = state.hf_model.config
    hidden = getattr(cfg, "hidden_size", 0) or 0
    inner = getattr(cfg, "intermediate_size", 0) or 4 * hidden
    per_layer = 4 * hidden * hidden + 2 * hidden * inner
    return int(_CPU_CALL_COST // per_layer) if per_layer else 0


def batch_inputs(state: HFState, batch: Batch, device) -> dict:
    """The keyword arguments of the model's forward call for a batch: ids and
    attention mask on the device, and Longformer's global attention mask
    where the checkpoint uses one."""
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

    device = resolve_device(model.attrs["device"])
    hf = state.hf_model
    if next(hf.parameters()).device != device:
        hf.to(device)
    hf.eval()
    if model.attrs["quantize"] != "none" and device.type == "cpu":
        hf = quantized_model(state, model.attrs["quantize"])
    parts, hidden_parts = [], []
    want_hidden = bool(model.attrs.get("hidden_states"))
    # A quantized copy computes its own way; autocast is for the float model.
    precision = "fp32" if hf is not state.hf_model else model.attrs["precision"]
    with torch.inference_mode(), autocast(device, precision):
        for batch in planned.batches:
            out = hf(**batch_inputs(state, batch, device), output_hidden_states=want_hidden)
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
        warnings.warn(Warnings.W004.format(parent=state.predicted_in_pid, pid=pid), stacklevel=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def quantized_model(state: HFState, how: str = "int8"):
    """An int8 dynamically quantized copy of the model for CPU inference, made
    once per loaded checkpoint (`state.weights_changed()` drops it)."""

    def build():
        import copy

        import torch

        hf = copy.deepcopy(state.hf_model).cpu().eval()
        with warnings.catch_warnings():
            # torch marks its eager-mode quantization as deprecated (moving to torchao).
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(hf, quantized_linears(hf, how), dtype=torch.qint8)

    return state.derive(f"quantized_{how}", build)


def quantized_linears(hf_model, how: str) -> set[str]:
    """Names of the linear layers to quantize: all of them ("int8_all"), or
    all but the feed-forward output projections and the head ("int8")."""
    import torch

    linears = {name: m for name, m in hf_model.named_modules() if isinstance(m, torch.nn.Linear)}
    if how == "int8_all":
        return set(linears)
    config = hf_model.config
    inter, hidden = getattr(config, "intermediate_size", None), getattr(config, "hidden_size", None)
    head = find_classifier(hf_model)
    return {
        name
        for name, m in linears.items()
        if m is not head and not (m.in_features == inter and m.out_features == hidden)
    }
