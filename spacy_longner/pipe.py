"""The `long_ner` component: a Hugging Face token-classification checkpoint
over whole documents, setting `doc.ents` (or a span group).

`predict()` returns plain data for a whole buffer of docs
(`BufferPrediction`: the entities of all docs as arrays); `set_annotations()`
writes them to the Docs through spaCy's array API (write.py). Alignment,
windowing, decoding and the stream of buffers live in align.py, windows.py,
decode.py and stream.py.
"""

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Literal, Optional, Sequence

import numpy as np
import srsly
from spacy.attrs import IS_SPACE
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import get_ner_prf, Scorer
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from .align import AGGREGATIONS, first_wordpiece, token_probs
from .decode import DECODINGS, SCHEMES, Entity, EntityArrays, TagSet, decode_buffer, parse_tagset, split_label
from .errors import Errors, Warnings
from .heap import HeapTrimmer
from .listeners import is_listener, make_trf_data, require_spacy_transformers
from .model import HFState, load_checkpoint, plan_buffer, predict_buffer, resize_head, save_checkpoint
from .runtime import _resolve_device
from .stream import prefetch, read_ahead
from .write import ENT_ATTRS, ent_rows, write_ents

TOKEN_PROBS_ATTR = "long_ner_probs"
TOKEN_LABELS_ATTR = "long_ner_labels"

if not Doc.has_extension(TOKEN_PROBS_ATTR):
    Doc.set_extension(TOKEN_PROBS_ATTR, default=None)
if not Doc.has_extension(TOKEN_LABELS_ATTR):
    Doc.set_extension(TOKEN_LABELS_ATTR, default=None)

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

"""
DEFAULT_MODEL = Config().from_str(DEFAULT_CONFIG)["model"]

EXISTING = ("overwrite", "keep", "fill")
PREFETCH = ("auto", "on", "off")
OUTPUTS = ("ents", "spans")


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
    label_map: Dict[str, str],
    ignore_labels: List[str],
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
    scorer: Optional[Callable],
) -> "LongNER":
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
        scorer=scorer,
    )


def score_long_ner(examples: Iterable[Example], **kwargs) -> Dict[str, object]:
    """ents_p/r/f and per type (spaCy's NER scoring), plus, where the
    component writes a span group, the same for `spans_<key>`."""
    examples = list(examples)
    scores: Dict[str, object] = dict(get_ner_prf(examples))
    spans_key = kwargs.get("spans_key")
    if spans_key:
        scores.update(
            Scorer.score_spans(
                examples,
                attr=f"spans_{spans_key}",
                getter=lambda doc, attr: doc.spans.get(spans_key, []),
                allow_overlap=False,
            )
        )
    return scores


@registry.scorers("spacy-longner.scorer.v1")
def make_long_ner_scorer() -> Callable:
    return score_long_ner


@dataclass
class DocPrediction:
    """What `predict()` returns for one doc.

    entities: (start, end, label, score) after label mapping, token offsets.
    token_probs: (n_tokens, n_labels) per-token label probabilities, or None.
    trf_data: spacy-transformers' TransformerData for doc._.trf_data
        (store_trf_data), or None.
    """

    entities: List[Entity]
    token_probs: Optional[np.ndarray]
    trf_data: Optional[object] = None


@dataclass
class BufferPrediction:
    """What `predict()` returns for a list of docs: the entities of all of
    them as arrays (after label mapping; `entities.type_id` indexes
    `labels`), and per doc its token probabilities and TransformerData where
    asked for. `len()` and indexing give each doc's `DocPrediction`."""

    n_docs: int
    entities: EntityArrays
    labels: List[str]
    token_probs: Optional[List[np.ndarray]] = None
    trf_data: Optional[List[object]] = None

    def __len__(self) -> int:
        return self.n_docs

    def doc_bounds(self) -> np.ndarray:
        """Where each doc's entities start in `entities`, and the end."""
        return np.searchsorted(self.entities.doc, np.arange(self.n_docs + 1))

    def __getitem__(self, i: int) -> DocPrediction:
        if not 0 <= i < self.n_docs:
            raise IndexError(i)
        a, b = self.doc_bounds()[i : i + 2]
        e = self.entities
        ents = [Entity(int(s), int(t), self.labels[c], float(sc))
                for s, t, c, sc in zip(e.start[a:b], e.end[a:b], e.type_id[a:b], e.score[a:b])]
        probs = self.token_probs[i] if self.token_probs is not None else None
        trf = self.trf_data[i] if self.trf_data is not None else None
        return DocPrediction(ents, probs, trf)


class LongNER(TrainablePipe):
    """Named entities from a Hugging Face token-classification model run over
    whole documents."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "long_ner",
        *,
        aggregation: str = "first",
        scheme: str = "auto",
        decoding: str = "conlleval",
        label_map: Optional[Dict[str, str]] = None,
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
        scorer: Optional[Callable] = score_long_ner,
    ) -> None:
        for setting, value, options in (
            ("aggregation", aggregation, AGGREGATIONS),
            ("scheme", scheme, SCHEMES),
            ("decoding", decoding, DECODINGS),
            ("output", output, OUTPUTS),
            ("existing_ents", existing_ents, EXISTING),
            ("loss_on", loss_on, ("first", "all")),
            ("prefetch", prefetch, PREFETCH),
        ):
            if value not in options:
                raise ValueError(Errors.E010.format(value=value, setting=f"[components.{name}] {setting}", options=", ".join(options)))
        if not max_grad_norm >= 0:
            raise ValueError(Errors.E010.format(value=max_grad_norm, setting=f"[components.{name}] max_grad_norm", options="a number >= 0 (0: no clipping)"))
        if not isinstance(buffer_words, int) or buffer_words < 0:
            raise ValueError(Errors.E010.format(value=buffer_words, setting=f"[components.{name}] buffer_words", options="an integer >= 0 (0: nlp.pipe's batch_size)"))
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg = {
            "aggregation": aggregation,
            "scheme": scheme,
            "decoding": decoding,
            "label_map": dict(label_map or {}),
            "ignore_labels": list(ignore_labels),
            "output": output,
            "spans_key": spans_key,
            "existing_ents": existing_ents,
            "token_probs": token_probs,
            "loss_on": loss_on,
            "max_grad_norm": float(max_grad_norm),
            "buffer_words": buffer_words,
            "trim_heap": bool(trim_heap),
            "store_trf_data": bool(store_trf_data),
            "prefetch": prefetch,
        }
        if store_trf_data:
            require_spacy_transformers(name)
        # The model returns hidden states only where a listener needs them.
        model.attrs["hidden_states"] = bool(store_trf_data)
        self.listener_map: Dict[str, List[Model]] = {}
        self.scorer = scorer
        self._tagset: Optional[TagSet] = None
        self._added_labels: List[str] = []
        self._trim_heap = HeapTrimmer()

    # ------------------------------------------------------------ state

    @property
    def state(self) -> HFState:
        """The loaded checkpoint; loaded from `name` on first use."""
        state = self.model.attrs["state"]
        if state is None:
            state = load_checkpoint(self.model, self.model.attrs["name"], component=self.name)
            self._tagset = None
            self._set_listener_widths()
        return state

    @property
    def tagset(self) -> TagSet:
        if self._tagset is None:
            self._tagset = parse_tagset(self.state.labels, self.cfg["scheme"])
        return self._tagset

    @property
    def labels(self) -> List[str]:
        """Entity labels written to docs (after label_map and ignore_labels).
        Empty until the checkpoint is loaded: spaCy reads this for nlp.meta
        before from_disk, which must not load the original checkpoint."""
        if self.model.attrs["state"] is None:
            return []
        mapping, ignored = self.cfg["label_map"], set(self.cfg["ignore_labels"])
        return sorted({mapping.get(t, t) for t in self.tagset.types if t not in ignored})

    @property
    def label_data(self) -> List[str]:
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
    def model_labels(self) -> List[str]:
        """The checkpoint's raw labels, in id order."""
        return list(self.state.labels)

    # ------------------------------------------------------------ predict

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate a stream of docs, in order. Docs are read ahead until the
        buffer holds `buffer_words` tokens or `batch_size` docs, whichever
        comes first (at least one doc), and the windows of all of them are
        sorted by length together and batched with little padding. The cap
        at `batch_size` docs keeps nlp.pipe's memory bound and yields docs at
        the pace they are computed (spaCy's `benchmark speed` times each
        slice of `batch_size` docs). With `buffer_words = 0`, buffers are
        `batch_size` docs. With prefetch on, a thread reads and plans the
        next buffer while the model runs on this one (stream.py); the
        results are the same, in the same order.

        If predicting a buffer fails, its docs are retried one by one, so
        that only the docs that fail on their own reach spaCy's error handler
        (which raises by default; an error handler that ignores errors drops
        those docs only, not the whole buffer)."""
        error_handler = self.get_error_handler()
        buffers = read_ahead(stream, self.cfg["buffer_words"], batch_size)
        if self._prefetching():
            model = self.model
            self.state  # load the checkpoint here, not in the thread
            planned_buffers = prefetch(buffers, lambda docs: plan_buffer(model, docs))
        else:
            planned_buffers = ((docs, None) for docs in buffers)
        for docs, planned in planned_buffers:
            try:
                preds = self.predict(docs, planned=planned)
            except Exception as e:
                if len(docs) == 1:
                    error_handler(self.name, self, docs, e)
                    continue
                docs = self._annotate_each(docs, error_handler)
            else:
                try:
                    self.set_annotations(docs, preds)
                except Exception as e:
                    error_handler(self.name, self, docs, e)
                    continue
            if self.cfg["trim_heap"]:
                self._trim_heap()
            yield from docs

    def _prefetching(self) -> bool:
        """prefetch "auto": on where the model runs on a CUDA device (the CPU
        is free while the GPU computes), off on CPU, where the forward pass
        already uses every core (docs/PERFORMANCE.md has both measured)."""
        setting = self.cfg["prefetch"]
        if setting != "auto":
            return setting == "on"
        return _resolve_device(self.model).type == "cuda"

    def _annotate_each(self, docs: List[Doc], error_handler: Callable) -> List[Doc]:
        kept = []
        for doc in docs:
            try:
                self.set_annotations([doc], self.predict([doc]))
                kept.append(doc)
            except Exception as e:
                error_handler(self.name, self, [doc], e)
        return kept

    def predict(self, docs: Iterable[Doc], *, planned=None) -> BufferPrediction:
        """Entities for a list of docs, computed for all of them at once: one
        softmax and aggregation over all their wordpieces, one decoding over
        all their tokens (each doc its own sequence), label mapping on
        arrays. `planned`: the docs' PlannedBuffer, where it was made ahead."""
        docs = list(docs)
        tagset = self.tagset
        labels, keep_type = self._label_table(tagset)
        out = predict_buffer(self.model, docs, planned)
        encs = out.encs
        doc_offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        doc_offsets[1:] = np.cumsum([enc.n_tokens for enc in encs])
        # Each wordpiece's token in the buffer: its token in its doc plus
        # the doc's offset (one repeat, not an addition per doc).
        n_wp = np.fromiter((enc.n_wp for enc in encs), dtype=np.int64, count=len(encs))
        wp_token = np.concatenate([np.zeros(0, np.int64)] + [enc.wp_token for enc in encs]) + np.repeat(doc_offsets[:-1], n_wp)
        probs, visible = token_probs(out.logits, wp_token, int(doc_offsets[-1]), self.cfg["aggregation"])
        _, ents = decode_buffer(probs, visible, doc_offsets, tagset, decoding=self.cfg["decoding"])
        if not keep_type.all():
            ents = ents.select(keep_type[ents.type_id])
        per_doc_probs = np.split(probs, doc_offsets[1:-1]) if self.cfg["token_probs"] else None
        trf_data = [self._trf_data(o) for o in out.split()] if self.cfg["store_trf_data"] else None
        return BufferPrediction(len(docs), ents, labels, per_doc_probs, trf_data)

    def _label_table(self, tagset: TagSet) -> "tuple[List[str], np.ndarray]":
        """The label of each entity type after label_map, and which types
        are kept (ignore_labels names types before mapping)."""
        label_map, ignored = self.cfg["label_map"], set(self.cfg["ignore_labels"])
        labels = [label_map.get(t, t) for t in tagset.types]
        keep = np.array([t not in ignored for t in tagset.types], dtype=bool)
        return labels, keep

    def set_annotations(self, docs: Iterable[Doc], preds: BufferPrediction) -> None:
        docs = list(docs)
        if not docs:
            return
        output, key, existing = self.cfg["output"], self.cfg["spans_key"], self.cfg["existing_ents"]
        # Label strings go into the docs' own StringStore (a doc may come
        # with another Vocab than the pipeline's); hashes are the same in all.
        for vocab in {id(d.vocab): d.vocab for d in docs}.values():
            hashes = np.array([vocab.strings.add(label) for label in preds.labels], dtype=np.uint64)
        ents = preds.entities
        bounds = preds.doc_bounds()
        # Whole-buffer arrays, sliced per doc: with "overwrite" each doc's
        # entities are one from_array call on its slice of the buffer's
        # ENT_IOB/ENT_TYPE rows.
        lengths = [len(doc) for doc in docs]
        doc_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        label_hashes = hashes[ents.type_id]
        rows = None
        if output == "ents" and existing == "overwrite":
            rows = ent_rows(doc_offsets, ents.doc, ents.start, ents.end, label_hashes)
        starts_l, ends_l, hashes_l, scores_l = ents.start.tolist(), ents.end.tolist(), label_hashes.tolist(), ents.score.tolist()
        # Python ints for the per-doc slicing (numpy scalars index slowly).
        bounds_l, offsets_l = bounds.tolist(), doc_offsets.tolist()
        for i, doc in enumerate(docs):
            a, b = bounds_l[i], bounds_l[i + 1]
            if rows is not None:
                if lengths[i]:
                    doc.from_array(ENT_ATTRS, rows[offsets_l[i] : offsets_l[i + 1]])
                keep = None
            elif output == "ents":
                written = write_ents(doc, ents.start[a:b], ents.end[a:b], label_hashes[a:b], existing)
                keep = None if written.all() else written
            else:
                keep = None
            # The span group holds the entities written (all of them, but
            # with "keep"/"fill" only those that did not clash).
            chosen = range(a, b) if keep is None else (a + np.flatnonzero(keep)).tolist()
            spans = [Span(doc, starts_l[j], ends_l[j], label=hashes_l[j]) for j in chosen]
            scores = scores_l[a:b] if keep is None else [scores_l[j] for j in chosen]
            doc.spans[key] = SpanGroup(doc, name=key, attrs={"scores": scores}, spans=spans)
            if preds.token_probs is not None:
                doc._.set(TOKEN_PROBS_ATTR, preds.token_probs[i])
                doc._.set(TOKEN_LABELS_ATTR, self.model_labels)
            if preds.trf_data is not None:
                doc._.trf_data = preds.trf_data[i]

    def _trf_data(self, out):
        hidden = out.hidden
        if hidden is None:  # a doc with no wordpieces
            hidden = np.zeros((0, self.hidden_width), dtype="float32")
        input_ids = out.input_ids if out.input_ids is not None else np.zeros(0, dtype="int64")
        return make_trf_data(out.wp_token, input_ids, hidden, out.n_tokens)

    # ------------------------------------------------------------ listeners
    # spaCy's listened-to protocol (spacy.ty.ListenedToComponent), as
    # spacy-transformers' Transformer implements it.

    @property
    def hidden_width(self) -> int:
        """Width of the encoder's hidden states (what a listener receives)."""
        return int(self.state.hf_model.config.hidden_size)

    @property
    def listeners(self) -> List[Model]:
        return [m for c in self.listening_components for m in self.listener_map[c]]

    @property
    def listening_components(self) -> List[str]:
        return list(self.listener_map.keys())

    def add_listener(self, listener: Model, component_name: str) -> None:
        self.listener_map.setdefault(component_name, [])
        if listener not in self.listener_map[component_name]:
            self.listener_map[component_name].append(listener)
        self._set_listener_widths()

    def remove_listener(self, listener: Model, component_name: str) -> bool:
        if listener in self.listener_map.get(component_name, []):
            self.listener_map[component_name].remove(listener)
            if not self.listener_map[component_name]:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        """Register the TransformerListener layers of `component` whose
        upstream is this component ("*": any upstream, taken only where this
        component shares its encoder output)."""
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            return
        for node in model.walk():
            if is_listener(node, (self.name,)) and not self.cfg["store_trf_data"]:
                raise ValueError(Errors.E023.format(listener=component.name, component=self.name))
            if self.cfg["store_trf_data"] and is_listener(node, ("*", self.name)):
                self.add_listener(node, component.name)

    def _set_listener_widths(self) -> None:
        """Give listeners the encoder's width once the checkpoint is loaded
        (a listener reads it even at inference, for docs without trf_data)."""
        if self.model.attrs["state"] is None or not self.listener_map:
            return
        width = self.hidden_width
        for listener in self.listeners:
            if listener.has_dim("nO") is None:
                listener.set_dim("nO", width)

    # ------------------------------------------------------------ training

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *, nlp: Optional[Language] = None, labels: Optional[List[str]] = None) -> None:
        """Load the checkpoint (unless one is loaded already, e.g. from disk)
        and, given training data whose entity labels differ from the
        checkpoint's, build or resize the classification head for them.

        labels (Optional[List[str]]): entity types to train (e.g. from
            `spacy init labels`); by default, those of the examples.
        """
        state = self.model.attrs["state"]
        if state is None:
            state = load_checkpoint(
                self.model, self.model.attrs["name"], component=self.name, allow_no_head=get_examples is not None or labels is not None
            )
        if labels is None and get_examples is not None:
            validate_examples(get_examples(), "LongNER.initialize")
            labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
        current = sorted(parse_tagset(state.labels, self.cfg["scheme"]).types) if state.has_head else None
        if labels is None and not self._added_labels:
            if not state.has_head:
                raise ValueError(Errors.E004.format(path=state.source, labels=state.labels))
        else:
            # Data without entities (spaCy's stand-in examples) keeps the head's types.
            wanted = set(labels or ()) or set(current or ())
            wanted |= set(self._added_labels)
            if not wanted:
                raise ValueError(Errors.E014.format(path=state.source))
            if current != sorted(wanted):
                resize_head(state, tag_labels(sorted(wanted), self._train_scheme(state)))
        self._tagset = None
        self.tagset  # validate labels now, not at the first doc
        self._set_listener_widths()
        if nlp is not None:
            follow_output_in_score_weights(nlp, self.name, self.cfg["output"], self.cfg["spans_key"])

    def _train_scheme(self, state: HFState) -> str:
        if self.cfg["scheme"] != "auto":
            return self.cfg["scheme"]
        if state.has_head:
            return parse_tagset(state.labels).scheme
        return "IOB2"

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
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
        self.state
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
        """Clip the gradient's global norm over all the model's parameters to
        `max_grad_norm` (as torch's clip_grad_norm_ in a Hugging Face Trainer
        run; thinc's optimizer `grad_clip` clips each parameter on its own),
        then step the optimizer."""
        state = self.model.attrs["state"]
        if self.cfg["max_grad_norm"] > 0 and state is not None:
            import torch

            grads = [p for p in state.hf_model.parameters() if p.grad is not None]
            if grads:
                torch.nn.utils.clip_grad_norm_(grads, self.cfg["max_grad_norm"])
        self.model.finish_update(sgd)

    def get_loss(self, examples: Iterable[Example], outputs) -> "tuple[float, List]":
        tagset = self.tagset
        xp = self.model.ops.xp
        targets, unknown = [], {}
        for eg, out in zip(examples, outputs):
            gold = gold_label_ids(eg, tagset, unknown)
            if self.cfg["loss_on"] == "first":
                idx = first_wordpiece(out.wp_token)
                wp_target = np.full(len(out.wp_token), -1, dtype=np.int64)
                wp_target[idx] = gold[out.wp_token[idx]]
            else:
                wp_target = gold[out.wp_token] if len(out.wp_token) else np.zeros(0, np.int64)
            targets.append(wp_target)
        if unknown:
            warnings.warn(Warnings.W001.format(n=sum(unknown.values()), labels=", ".join(sorted(unknown))))
        n_counted = max(1, sum(int((t >= 0).sum()) for t in targets))
        loss = 0.0
        grads = []
        for out, target in zip(outputs, targets):
            logits = out.logits
            if len(target) == 0:
                grads.append(logits * 0)
                continue
            z = logits - logits.max(axis=1, keepdims=True)
            probs = xp.exp(z)
            probs /= probs.sum(axis=1, keepdims=True)
            mask = xp.asarray(target >= 0)
            tgt = xp.asarray(np.where(target >= 0, target, 0))
            rows = xp.arange(len(target))
            p_true = probs[rows, tgt]
            loss += float((-xp.log(xp.clip(p_true, 1e-12, None)) * mask).sum())
            d = probs
            d[rows, tgt] -= 1.0
            d *= mask[:, None]
            grads.append(d / n_counted)
        return loss / n_counted, grads

    # ------------------------------------------------------------ serialization

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = self.state
        srsly.write_json(path / "cfg", {**self.cfg, "model_labels": state.labels, "window": state.window, "stride": state.stride})
        save_checkpoint(state, path / "model")

    def from_disk(self, path, *, exclude=tuple()) -> "LongNER":
        """Load the checkpoint saved by `to_disk`, and check it against the
        `cfg` written beside it (the labels): a mismatch means a damaged or
        hand-edited folder, and is an error that says so."""
        path = Path(path)
        folder = path / "model"
        if not (folder / "config.json").exists():
            raise ValueError(Errors.E013.format(path=folder))
        try:
            saved = srsly.read_json(path / "cfg")
        except (OSError, ValueError) as e:
            raise ValueError(Errors.E019.format(path=path / "cfg", problem=f"it cannot be read ({e})")) from e
        if not isinstance(saved, dict):
            raise ValueError(Errors.E019.format(path=path / "cfg", problem="it is not a JSON object"))
        check_pipeline_weights(folder)
        state = load_checkpoint(self.model, str(folder), component=self.name, local=True, safetensors_only=True)
        # window and stride may differ: they are settings, which a user may
        # change when loading (spacy.load(..., config=...)); the labels may not.
        if "model_labels" in saved and saved["model_labels"] != state.labels:
            raise ValueError(Errors.E019.format(path=path / "cfg", problem=f"its model_labels {saved['model_labels']!r} differ from the saved model's {state.labels!r}"))
        self._tagset = None
        self._set_listener_widths()
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "LongNER":
        files = srsly.msgpack_loads(bytes_data)
        tmp = tempfile.mkdtemp()
        try:
            for rel, data in files.items():
                target = Path(tmp) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, object]:
        if self.cfg["output"] == "spans":
            kwargs = {**kwargs, "spans_key": self.cfg["spans_key"]}
        return self.scorer(examples, **kwargs) if self.scorer else {}


UNSAFE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def check_pipeline_weights(folder: Path) -> None:
    """A pipeline folder is something people download and share: its weights
    are read as safetensors only (no pickle, which can run code on load), and
    a damaged file is named in a coded error."""
    from safetensors import SafetensorError, safe_open

    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in UNSAFE_WEIGHT_SUFFIXES)
    if pickled:
        raise ValueError(Errors.E020.format(path=folder, files=", ".join(pickled)))
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(Errors.E021.format(path=folder / "model.safetensors", problem="it is missing"))
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                f.keys()
        except (SafetensorError, OSError) as e:
            raise ValueError(Errors.E021.format(path=file, problem=e)) from e


def follow_output_in_score_weights(nlp: Language, name: str, output: str, spans_key: str) -> None:
    """With output = "spans", doc.ents stays empty, so the factory's default
    weights (ents_f) would pick model-best on a score that is always 0: this
    component's default weights become spans_<key>_f/p/r instead. Weights
    set by hand in [training.score_weights] for other keys are kept."""
    if output != "spans":
        return
    import dataclasses

    prefix = f"spans_{spans_key}"
    weights = {f"{prefix}_f": 1.0, f"{prefix}_p": 0.0, f"{prefix}_r": 0.0}
    meta = nlp.get_pipe_meta(name)
    if meta.default_score_weights == weights:
        return
    nlp._pipe_meta[name] = dataclasses.replace(meta, default_score_weights=weights)
    others = {k for other, _ in nlp.pipeline if other != name for k in nlp.get_pipe_meta(other).default_score_weights}
    current = nlp._config.get("training", {}).get("score_weights", {})
    for key in list(current):
        if key.startswith("ents_") and key not in others:
            del current[key]
    nlp.config  # recombines the weights from the pipe metas


def entity_scores(doc: Doc, spans_key: str = "long_ner") -> List[Optional[float]]:
    """The confidence of each entity in `doc.ents`, in order (None for an
    entity long_ner did not write, e.g. one kept from an EntityRuler)."""
    group = doc.spans.get(spans_key)
    scores = {}
    if group is not None:
        scores = {(s.start, s.end, s.label_): sc for s, sc in zip(group, group.attrs.get("scores", []))}
    return [scores.get((e.start, e.end, e.label_)) for e in doc.ents]


def tag_labels(types: Sequence[str], scheme: str) -> List[str]:
    """The model labels for entity types under a scheme, O first."""
    prefixes = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES", "BILOU": "BILU", "IO": ""}[scheme]
    labels = ["O"]
    for t in sorted(types):
        if prefixes:
            labels.extend(f"{p}-{t}" for p in prefixes)
        else:
            labels.append(t)
    return labels


def gold_label_ids(eg: Example, tagset: TagSet, unknown: Dict[str, int]) -> np.ndarray:
    """Gold label id per predicted-doc token, -1 where gold is missing or
    misaligned (left out of the loss) or the label is not in the model."""
    biluo = eg.get_aligned_ner()
    label_id = {lab: i for i, lab in enumerate(tagset.labels)}
    out = np.full(len(biluo), -1, dtype=np.int64)
    # Whitespace tokens get no wordpiece: the model's tag sequence runs over
    # the other tokens as if they were not there, so they are skipped here too
    # (an O on a line break must not separate two IOB1 entities).
    space = eg.predicted.to_array([IS_SPACE]).astype(bool) if len(biluo) else np.zeros(0, bool)
    prev_type = None
    for i, tag in enumerate(biluo):
        if space[i]:
            continue
        if tag is None or tag == "-" or tag == "":
            prev_type = None
            continue
        if tag == "O":
            out[i] = tagset.o_index
            prev_type = None
            continue
        p, t = split_label(tag)
        label = _convert_biluo(p, t, tagset.scheme, prev_type)
        prev_type = t if p in ("L", "U") else None
        if label in label_id:
            out[i] = label_id[label]
        else:
            unknown[t] = unknown.get(t, 0) + 1
    return out


_BILUO_TO = {
    "BIOES": {"B": "B", "I": "I", "L": "E", "U": "S"},
    "BILOU": {"B": "B", "I": "I", "L": "L", "U": "U"},
    "IOB2": {"B": "B", "I": "I", "L": "I", "U": "B"},
}


def _convert_biluo(prefix: str, etype: str, scheme: str, prev_closed_type: Optional[str]) -> str:
    """A BILUO gold tag in the model's scheme. `prev_closed_type` is the type
    of an entity that ended on the token before (for IOB1's B-)."""
    if scheme == "IO":
        return etype
    if scheme in _BILUO_TO:
        return f"{_BILUO_TO[scheme][prefix]}-{etype}"
    # IOB1: I- everywhere, B- only where an entity starts right after another
    # entity of the same type.
    if prefix in ("B", "U") and prev_closed_type == etype:
        return f"B-{etype}"
    return f"I-{etype}"
