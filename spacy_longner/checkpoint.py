"""Checkpoint I/O: load a Hugging Face token-classification checkpoint and
its tokenizer, resolve window and stride against it, save it, and resize its
classification head. Remote code is never trusted."""

import contextlib
import gc
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from thinc.api import Model

from .align import WordpieceCache
from .errors import Errors, Warnings, reason

# Model types whose position ids start after the padding index.
_PADDING_OFFSET_TYPES = {"roberta", "longformer", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text"}
GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


def pad_multiple_of(config) -> int:
    """What a model pads every sequence length up to a multiple of inside its
    forward pass: Longformer's attention window (the largest, where each
    layer has its own), 1 for other models. Batches padded to it here spare
    the model a copy (and a log line)."""
    aw = getattr(config, "attention_window", None) if config.model_type == "longformer" else None
    return max(aw, default=1) if isinstance(aw, (list, tuple)) else int(aw or 1)


# Model types whose outputs for a sequence change with the padding added to
# it (Funnel pools over the padded length): batched only with windows of
# exactly the same length, so a doc's entities never depend on its batch.
PAD_SENSITIVE_TYPES = {"funnel"}


def needs_exact_lengths(config) -> bool:
    """Whether the model must see each sequence without padding."""
    return config.model_type in PAD_SENSITIVE_TYPES


class HFState:
    """What `load_checkpoint` puts in `model.attrs["state"]`: the torch model,
    its tokenizer and the settings resolved against them.

    What other modules derive from the model (an int8 copy, the training
    shim) lives in `derived`, made by its owner through `derive()` and
    dropped in one place, `weights_changed()`. The wordpiece cache depends
    on the tokenizer only and lives as long as it does."""

    # Derived objects that wrap the modules rather than copy the weights'
    # values: they survive a training step and go only with a new head.
    WRAPPERS = ("shim",)

    def __init__(
        self,
        hf_model,
        tokenizer,
        *,
        source: str,
        has_head: bool,
        max_len: int,
        prefix: list[int],
        suffix: list[int],
        window: int,
        stride: int,
        global_attention: str,
    ):
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
        self.pad_multiple = pad_multiple_of(hf_model.config)
        self.exact_lengths = needs_exact_lengths(hf_model.config)
        self.derived: dict[str, Any] = {}
        self.warned_no_sents = False
        # Whether the checkpoint came with classifier weights (with generic
        # labels, has_head is False even so).
        self.head_weights = has_head
        self.warned_fork = False
        self.predicted_in_pid: Optional[int] = None
        # One tokenizer call at a time: with prefetch, a thread plans ahead
        # while the main thread may plan a failed buffer's docs one by one.
        self.tokenizer_lock = threading.Lock()
        self._wordpieces: Optional[WordpieceCache] = None

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["tokenizer_lock"]
        state["_wordpieces"] = None  # rebuilt on first use
        state["derived"] = {}
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self.tokenizer_lock = threading.Lock()

    def derive(self, key: str, build: Callable[[], Any]) -> Any:
        """The object derived from the weights under `key`, built on first
        use (until `weights_changed()`)."""
        if key not in self.derived:
            self.derived[key] = build()
        return self.derived[key]

    def weights_changed(self, *, new_modules: bool = False) -> None:
        """Drop what was derived from the weights' values (after a training
        step); with `new_modules` (a new head), also what wraps the modules
        (the training shim, so the optimizer sees the new parameters)."""
        kept = () if new_modules else self.WRAPPERS
        self.derived = {k: v for k, v in self.derived.items() if k in kept}

    @property
    def wordpieces(self) -> WordpieceCache:
        """The cache of each distinct word's wordpieces for this tokenizer
        (use it under `tokenizer_lock`)."""
        if self._wordpieces is None or self._wordpieces.tokenizer is not self.tokenizer:
            self._wordpieces = WordpieceCache(self.tokenizer)
        return self._wordpieces

    @property
    def labels(self) -> list[str]:
        cfg = self.hf_model.config
        return [cfg.id2label[i] for i in range(cfg.num_labels)]

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0


def resolve_source(name: str, component: str) -> tuple[str, bool]:
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


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single sequence of
    pre-split words: the wordpieces that its `word_ids()` marks as no word
    (the tokenizer's public API in transformers 4 and 5, for every family)."""
    enc = tokenizer(
        ["a"],
        is_split_into_words=True,
        add_special_tokens=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    ids = list(enc["input_ids"])
    content = [i for i, w in enumerate(enc.word_ids()) if w is not None]
    if not content:
        return [], []
    return ids[: content[0]], ids[content[-1] + 1 :]


# Used where neither the model nor its tokenizer names a length limit
# (relative-position models such as XLNet): what most checkpoints are
# trained with.
DEFAULT_MAX_LENGTH = 512


def max_model_length(config, tokenizer) -> int:
    """Most wordpieces (special tokens included) the checkpoint takes: the
    smaller of its position embeddings and its tokenizer's
    `model_max_length`; where neither sets one (XLNet's config gives -1, its
    tokenizer a huge number), DEFAULT_MAX_LENGTH."""
    limits = []
    mpe = getattr(config, "max_position_embeddings", None)
    if isinstance(mpe, int) and mpe > 0:
        offset = 0
        if config.model_type in _PADDING_OFFSET_TYPES:
            offset = (config.pad_token_id or 0) + 1
        limits.append(int(mpe) - offset)
    tml = getattr(tokenizer, "model_max_length", None)
    if tml and 0 < tml < 1_000_000:
        limits.append(int(tml))
    return min(limits) if limits else DEFAULT_MAX_LENGTH


@contextlib.contextmanager
def quiet_transformers():
    """Load or save without transformers' progress bars and log lines (its
    "Loading weights" bar, a LOAD REPORT table): a server or a loop calling
    spacy.load would print them every time. Both settings are restored
    afterwards; what matters to the user comes as long_ner's own warnings."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def sentencepiece_missing() -> list[str]:
    """Which of the packages that build a fast tokenizer from a SentencePiece
    model are not installed."""
    import importlib.util

    def installed(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a missing parent package
            return False

    return [
        name
        for name, module in (("sentencepiece", "sentencepiece"), ("protobuf", "google.protobuf"))
        if not installed(module)
    ]


def check_sentencepiece(source: str, local: bool, error: Optional[BaseException] = None) -> None:
    """E028 where the checkpoint's tokenizer is only a SentencePiece model
    (spiece.model: ALBERT, XLNet, T5-style) and the packages that convert it
    are missing: transformers' own message then points elsewhere (to
    tiktoken). For a hub id the files are not known before loading, so only
    an `error` that names one of those packages counts."""
    missing = sentencepiece_missing()
    if not missing:
        return
    if local:
        folder = Path(source)
        models = sorted(p.name for p in folder.glob("*.model"))
        if models and not (folder / "tokenizer.json").exists():
            raise ValueError(Errors.E028.format(path=source, files=", ".join(models), missing=", ".join(missing)))
    elif error is not None and any(word in str(error).lower() for word in ("sentencepiece", "tiktoken", "protobuf")):
        raise ValueError(
            Errors.E028.format(path=source, files="a SentencePiece model", missing=", ".join(missing))
        ) from error


def _load_tokenizer(source: str, local: bool):
    from transformers import AutoTokenizer

    check_sentencepiece(source, local)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local, use_fast=True)
    except (ImportError, OSError, ValueError) as e:
        check_sentencepiece(source, local, e)
        raise
    if getattr(tokenizer, "add_prefix_space", None) is False:
        # Byte-level BPE (RoBERTa, Longformer) needs this for pre-split words.
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local, use_fast=True, add_prefix_space=True)
    return tokenizer


def load_checkpoint(
    model: Model,
    source: str,
    *,
    component: str = "long_ner",
    allow_no_head: bool = False,
    local: Optional[bool] = None,
    safetensors_only: bool = False,
) -> HFState:
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
        with quiet_transformers():
            tokenizer = _load_tokenizer(source, local)
            hf_model, info = AutoModelForTokenClassification.from_pretrained(
                source,
                local_files_only=local,
                output_loading_info=True,
                use_safetensors=True if safetensors_only else None,
            )
    except (OSError, ValueError, KeyError, ImportError) as e:
        if str(e).startswith("[long_ner "):
            raise
        raise ValueError(Errors.E003.format(path=source, component=component, reason=reason(e))) from e
    hf_model.eval()
    all_missing = list(info.get("missing_keys", []))
    missing = [k for k in all_missing if "classifier" in k or "score" in k]
    encoder_missing = [k for k in all_missing if k not in missing]
    if encoder_missing:
        warnings.warn(
            Warnings.W005.format(path=source, n=len(encoder_missing), keys=", ".join(sorted(encoder_missing)[:5])),
            stacklevel=2,
        )
    labels = [hf_model.config.id2label[i] for i in range(hf_model.config.num_labels)]
    generic = all(GENERIC_LABEL.match(str(lab)) for lab in labels)
    has_head = not missing and not generic
    if not has_head and not allow_no_head:
        raise ValueError(Errors.E004.format(path=source, labels=labels))
    head_weights = not missing
    max_len = max_model_length(hf_model.config, tokenizer)
    prefix, suffix = special_tokens(tokenizer)
    max_window = max_len - len(prefix) - len(suffix)
    window = model.attrs["window"]
    if window is None:
        window = max_window
    elif window > max_window:
        raise ValueError(
            Errors.E005.format(
                window=window,
                component=component,
                max_window=max_window,
                max_len=max_len,
                n_special=len(prefix) + len(suffix),
            )
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
    state.head_weights = head_weights
    model.attrs["state"] = state
    # Loading torch, transformers and the weights leaves hundreds of
    # thousands of new objects that no full garbage collection has seen yet:
    # the first one then comes during the first docs (0.26 s on the CPU
    # machine, 5 us a word over CoNLL dev), and Python's rule (a full
    # collection once the objects promoted since the last one pass a quarter
    # of those it kept) brings it back sooner. One collection here, at load.
    gc.collect()
    return state


def save_checkpoint(state: HFState, path: Path) -> None:
    """Write weights (safetensors), HF config and tokenizer files to `path`."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = state.hf_model.config
    cfg.longner_global_attention = state.global_attention
    with quiet_transformers():
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
    state.weights_changed(new_modules=True)
