"""The `long_ner` component: a Hugging Face token-classification checkpoint
over whole documents, setting `doc.ents` (or a span group).

The class holds spaCy's pipe API and delegates each job: settings
(settings.py), prediction (prediction.py: plain data for a whole buffer of
docs), writing (write.py), training (training.py), checkpoint and pipeline
folder I/O (checkpoint.py, pipeline_folder.py: to_disk and friends), the listener protocol (listeners.py), the
stream of buffers (stream.py), scores (scoring.py).
"""

import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Callable, Literal, Optional

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from .calibration import Calibration
from .checkpoint import HFState, load_checkpoint, resolve_source
from .decode import TagSet, parse_tagset, split_label
from .errors import Errors, Warnings
from .heap import HeapTrimmer
from .length import install_length_rule
from .listeners import ListenedToMixin, require_spacy_transformers
from .pipeline_folder import FolderMixin
from .prediction import BufferPrediction, predict_entities
from .scoring import follow_output_in_score_weights, score_long_ner
from .settings import built_from_config, check_threshold_labels, component_settings
from .stream import annotate_stream, piece_words
from .training import clip_gradients, fit_head, token_classification_loss
from .write import write_buffer

DEFAULT_CONFIG = """
[model]
@architectures = "spacy-longner.TokenClassifier.v1"
name = ""
window = null
stride = null
context = "document"
context_size = 64
global_attention = "auto"
precision = "fp32"
device = null
wordpiece_budget = 8192
quantize = "none"
pack = 0
cut_at_sentences = true
runtime = "torch"
gradient_checkpointing = false

"""
DEFAULT_MODEL = Config().from_str(DEFAULT_CONFIG)["model"]


@Language.factory(
    "long_ner",
    default_config={
        "model": DEFAULT_MODEL,
        "aggregation": "first",
        "scheme": "auto",
        "decoding": "conlleval",
        "label_map": {},
        "ignore_labels": [],
        "output": "ents",
        "spans_key": "long_ner",
        "existing_ents": "overwrite",
        "token_probs": False,
        "loss_on": "first",
        "max_grad_norm": 1.0,
        "buffer_words": 32768,
        "trim_heap": True,
        "store_trf_data": False,
        "prefetch": "auto",
        "calibrated": True,
        "threshold": 0.0,
        "thresholds": {},
        "scorer": {"@scorers": "spacy-longner.scorer.v1"},
    },
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_long_ner(
    nlp: Language,
    name: str,
    model: Model,
    aggregation: Literal["first", "average", "max"],
    scheme: Literal["auto", "IOB1", "IOB2", "BIOES", "BILOU", "IO"],
    decoding: Literal["conlleval", "viterbi"],
    label_map: dict[str, str],
    ignore_labels: list[str],
    output: Literal["ents", "spans"],
    spans_key: str,
    existing_ents: Literal["overwrite", "keep", "fill"],
    token_probs: bool,
    loss_on: Literal["first", "all"],
    max_grad_norm: float,
    buffer_words: int,
    trim_heap: bool,
    store_trf_data: bool,
    prefetch: Literal["auto", "on", "off"],
    calibrated: bool,
    threshold: float,
    thresholds: dict[str, float],
    scorer: Optional[Callable],
) -> "LongNER":
    from_config = built_from_config()
    if model.attrs["name"] and not from_config:
        # A missing local folder is known now, not only at the first doc.
        resolve_source(model.attrs["name"], name)
    install_length_rule(nlp, from_config=from_config)
    return LongNER(
        nlp.vocab,
        model,
        name,
        aggregation=aggregation,
        scheme=scheme,
        decoding=decoding,
        label_map=label_map,
        ignore_labels=ignore_labels,
        output=output,
        spans_key=spans_key,
        existing_ents=existing_ents,
        token_probs=token_probs,
        loss_on=loss_on,
        max_grad_norm=max_grad_norm,
        buffer_words=buffer_words,
        trim_heap=trim_heap,
        store_trf_data=store_trf_data,
        prefetch=prefetch,
        calibrated=calibrated,
        threshold=threshold,
        thresholds=thresholds,
        scorer=scorer,
    )


class LongNER(ListenedToMixin, FolderMixin, TrainablePipe):
    """Named entities from a Hugging Face token-classification model over whole documents."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "long_ner",
        *,
        aggregation: str = "first",
        scheme: str = "auto",
        decoding: str = "conlleval",
        label_map: Optional[dict[str, str]] = None,
        ignore_labels: Sequence[str] = (),
        output: str = "ents",
        spans_key: str = "long_ner",
        existing_ents: str = "overwrite",
        token_probs: bool = False,
        loss_on: str = "first",
        max_grad_norm: float = 1.0,
        buffer_words: int = 32768,
        trim_heap: bool = True,
        store_trf_data: bool = False,
        prefetch: str = "auto",
        calibrated: bool = True,
        threshold: float = 0.0,
        thresholds: Optional[dict[str, float]] = None,
        scorer: Optional[Callable] = score_long_ner,
    ) -> None:
        self.cfg = component_settings(
            name,
            aggregation=aggregation,
            scheme=scheme,
            decoding=decoding,
            label_map=label_map,
            ignore_labels=ignore_labels,
            output=output,
            spans_key=spans_key,
            existing_ents=existing_ents,
            token_probs=token_probs,
            loss_on=loss_on,
            max_grad_norm=max_grad_norm,
            buffer_words=buffer_words,
            trim_heap=trim_heap,
            store_trf_data=store_trf_data,
            prefetch=prefetch,
            calibrated=calibrated,
            threshold=threshold,
            thresholds=thresholds,
        )
        if store_trf_data:
            require_spacy_transformers(name)
        self.vocab = vocab
        self.model = model
        self.name = name
        # The model returns hidden states only where a listener needs them.
        model.attrs["hidden_states"] = bool(store_trf_data)
        self.listener_map: dict[str, list[Model]] = {}
        self.scorer = scorer
        self._tagset: Optional[TagSet] = None
        # The confidence map that `spacy-longner calibrate` fits (calibration.py).
        self.calibration: Optional[Calibration] = None
        self._added_labels: list[str] = []
        self._trim_heap = HeapTrimmer()

    # ------------------------------------------------------------ state and labels

    @property
    def state(self) -> HFState:
        """The loaded checkpoint; loaded from `name` on first use."""
        state = self.model.attrs["state"]
        if state is None:
            state = load_checkpoint(self.model, self.model.attrs["name"], component=self.name)
            self._loaded()
        return state

    def _loaded(self) -> None:
        """After a checkpoint is loaded or its head changed: labels are parsed
        again and listeners learn the encoder's width."""
        self._tagset = None
        self.set_listener_widths()
        check_threshold_labels(self.cfg, self.labels, self.name)
        if self.model.attrs["runtime"] == "onnx":
            from .onnx_backend import check_family

            check_family(self.model.attrs["state"], self.name)

    @property
    def tagset(self) -> TagSet:
        if self._tagset is None:
            self._tagset = parse_tagset(self.state.labels, self.cfg["scheme"])
        return self._tagset

    @property
    def labels(self) -> list[str]:
        """Entity labels written to docs (after label_map and ignore_labels); empty
        until loaded: spaCy reads this for nlp.meta before from_disk, which
        must not load the original checkpoint."""
        if self.model.attrs["state"] is None:
            return []
        mapping, ignored = self.cfg["label_map"], set(self.cfg["ignore_labels"])
        return sorted({mapping.get(t, t) for t in self.tagset.types if t not in ignored})

    @property
    def label_data(self) -> list[str]:
        """The entity types the model predicts (before label_map), for
        `spacy init labels`; `initialize(labels=...)` takes them back."""
        types = self.tagset.types if self.state.has_head else ()
        return sorted(set(types) | set(self._added_labels))

    def add_label(self, label: str) -> int:
        """Add an entity type before training. `initialize()` builds the
        head with it (its rows freshly initialised, the others kept).
        RETURNS (int): 1 if the label is new, else 0."""
        if not isinstance(label, str) or not label or label == "O" or split_label(label)[0] is not None:
            raise ValueError(Errors.E018.format(label=label, component=self.name))
        known = set(self._added_labels) | (set(self.tagset.types) if self.state.has_head else set())
        if label in known:
            return 0
        self._added_labels.append(label)
        return 1

    @property
    def model_labels(self) -> list[str]:
        """The checkpoint's raw labels, in id order."""
        return list(self.state.labels)

    @property
    def hidden_width(self) -> int:
        """Width of the encoder's hidden states (what a listener receives)."""
        return int(self.state.hf_model.config.hidden_size)

    # ------------------------------------------------------------ predict

    def __call__(self, doc: Doc) -> Doc:
        """Annotate one doc; one longer than a buffer is read in pieces."""
        size = piece_words(self.cfg)
        if not size or len(doc) <= size:
            return super().__call__(doc)
        for done in self.pipe([doc], batch_size=1):
            return done
        return None  # type: ignore[return-value]  # the error handler took it, as in TrainablePipe.__call__

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate a stream of docs, in order, a buffer of docs (or of pieces
        of a long doc) at a time, planned ahead where prefetch is on; a doc
        that fails alone goes to spaCy's error handler (stream.py)."""
        return annotate_stream(self, stream, batch_size)

    def predict(self, docs: Iterable[Doc], *, planned=None) -> BufferPrediction:
        """Entities for a list of docs, computed for all of them at once
        (prediction.py). `planned`: the docs' PlannedBuffer, where it was
        made ahead."""
        trf_data = self.doc_trf_data if self.cfg["store_trf_data"] else None
        calibration = self.calibration if self.cfg["calibrated"] else None
        return predict_entities(
            self.model, list(docs), self.tagset, self.cfg, planned=planned, trf_data=trf_data, calibration=calibration
        )

    def set_annotations(self, docs: Iterable[Doc], preds: BufferPrediction) -> None:
        docs = list(docs)
        if not docs:
            return
        write_buffer(
            docs,
            preds,
            output=self.cfg["output"],
            spans_key=self.cfg["spans_key"],
            existing=self.cfg["existing_ents"],
            model_labels=self.model_labels if preds.token_probs is not None else None,
        )

    # ------------------------------------------------------------ training

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        labels: Optional[list[str]] = None,
    ) -> None:
        """Load the checkpoint (unless one is loaded already, e.g. from disk)
        and, given training data whose entity labels differ from the
        checkpoint's, build or resize the classification head for them.

        labels (Optional[List[str]]): entity types to train (e.g. from
            `spacy init labels`); by default, those of the examples.
        """
        state = self.model.attrs["state"]
        if state is None:
            state = load_checkpoint(
                self.model,
                self.model.attrs["name"],
                component=self.name,
                allow_no_head=get_examples is not None or labels is not None,
            )
        if labels is None and get_examples is not None:
            validate_examples(get_examples(), "LongNER.initialize")
            labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
        fit_head(state, labels, self._added_labels, self.cfg["scheme"])
        self._loaded()
        _ = self.tagset  # validate labels now, not at the first doc
        if nlp is not None:
            follow_output_in_score_weights(nlp, self.name, self.cfg["output"], self.cfg["spans_key"])

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[dict[str, float]] = None,
    ) -> dict[str, float]:
        """Token-classification cross-entropy on each token's first wordpiece
        (or all its wordpieces, `loss_on = "all"`). Dropout is the
        checkpoint's own (its config's *dropout_prob settings); `drop` is
        not used."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "LongNER.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        _ = self.state  # loads the checkpoint
        outputs, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_outputs = self.get_loss(examples, outputs)
        backprop(d_outputs)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        if self.cfg["trim_heap"]:
            self._trim_heap()
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Clip the gradient's global norm to `max_grad_norm` over all the
        model's parameters, then step the optimizer."""
        clip_gradients(self.model.attrs["state"], self.cfg["max_grad_norm"])
        self.model.finish_update(sgd)

    def get_loss(self, examples: Iterable[Example], outputs) -> "tuple[float, list]":
        loss, grads, unknown = token_classification_loss(
            examples, outputs, self.tagset, self.cfg["loss_on"], self.model.ops.xp
        )
        if unknown:
            warnings.warn(
                Warnings.W001.format(n=sum(unknown.values()), labels=", ".join(sorted(unknown))), stacklevel=2
            )
        return loss, grads

    def score(self, examples: Iterable[Example], **kwargs) -> dict[str, object]:
        if self.cfg["output"] == "spans":
            kwargs = {**kwargs, "spans_key": self.cfg["spans_key"]}
        return self.scorer(examples, **kwargs) if self.scorer else {}
