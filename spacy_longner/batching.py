"""Planning and batching: the words of each doc through the checkpoint's
tokenizer, the windows of each doc (windows.py), and length-sorted batches of
windows over a whole buffer of docs. CPU-only work on numpy arrays; it runs
ahead of the forward pass where long_ner prefetches (stream.py). It never
sees a device: what a forward call costs comes in as a number
(`plan_buffer(..., overhead=)`, runtime.batch_overhead)."""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from spacy.strings import hash_string  # type: ignore[attr-defined]  # not in spaCy's stubs
from spacy.tokens import Doc
from thinc.api import Model

from .align import DocEncoding
from .arrays import offsets, ragged_index
from .checkpoint import HFState
from .errors import Warnings
from .windows import WindowPlan, sentence_cut_windows, sentence_windows, sliding_windows


def encode_docs(state: HFState, docs: Sequence[Doc]) -> list[DocEncoding]:
    """The words of each doc (whitespace tokens left out) through the
    checkpoint's tokenizer, via the cache of each distinct word's wordpieces
    (align.WordpieceCache): the whole buffer's tokens are looked up at once by
    orth id, and only words never seen go to the tokenizer. Reads one array
    per doc: making a Token object per word costs more than the rest of this
    function."""
    from spacy.attrs import ORTH

    n_tokens = np.fromiter((len(doc) for doc in docs), dtype=np.int64, count=len(docs))
    orths = [doc.to_array(ORTH) for doc in docs if len(doc)]
    all_orths = np.concatenate(orths) if orths else np.zeros(0, dtype=np.uint64)
    with state.tokenizer_lock:
        ids, lengths = state.wordpieces.encode(all_orths, _word_lookup(docs))
    # Each wordpiece's token index within its doc.
    local, _ = ragged_index(np.zeros(len(docs), dtype=np.int64), n_tokens)
    tokens = np.repeat(local, lengths)
    # A doc's wordpieces end where its last token's do.
    piece_bounds = offsets(lengths)[offsets(n_tokens)]
    piece_start, piece_end = piece_bounds[:-1], piece_bounds[1:]
    return [
        DocEncoding(ids[s:e], tokens[s:e], int(n))
        for s, e, n in zip(piece_start.tolist(), piece_end.tolist(), n_tokens.tolist())
    ]


def _word_lookup(docs: Sequence[Doc]):
    """(text, is whitespace) of an orth id, from the docs' vocabs (one,
    unless the buffer mixes vocabs). Whitespace tokens are not sent to the
    checkpoint's tokenizer."""
    vocabs: list = []

    def lookup(key: int) -> "tuple[str, bool]":
        if not vocabs:  # gathered on the first word not cached
            vocabs.extend({id(doc.vocab): doc.vocab for doc in docs}.values())
        for vocab in vocabs:
            if key in vocab.strings:
                lex = vocab[key]
                return lex.orth_, lex.is_space
        raise KeyError(key)

    return lookup


def sentence_starts_wp(doc: Doc, enc: DocEncoding) -> np.ndarray:
    """Wordpiece index where each sentence of the doc starts."""
    if not doc.has_annotation("SENT_START") or enc.n_wp == 0:
        return np.zeros(1, dtype=np.int64)
    tok_starts = np.asarray([s.start for s in doc.sents], dtype=np.int64)
    return np.searchsorted(enc.wp_token, tok_starts)


# Tokens that end a sentence where a doc has no sentence boundaries.
SENTENCE_END_ORTHS = np.array([hash_string(t) for t in (".", "!", "?")], dtype=np.uint64)


def sentence_cuts_wp(doc: Doc, enc: DocEncoding) -> np.ndarray:
    """Wordpiece positions where a sentence starts, for cutting a document
    into windows: the doc's own sentence boundaries where it has them (a
    sentencizer or parser ran), else the token after each ".", "!" or "?"
    and after each whitespace token that holds a blank line."""
    if doc.has_annotation("SENT_START"):
        return sentence_starts_wp(doc, enc)
    from spacy.attrs import IS_SPACE, ORTH

    ends = sentence_ends(doc, doc.to_array([ORTH, IS_SPACE]))
    return np.unique(np.searchsorted(enc.wp_token, np.flatnonzero(ends) + 1))


def sentence_ends(doc: Doc, attrs: np.ndarray, offset: int = 0) -> np.ndarray:
    """Whether each token of `doc` from `offset` on ends a sentence, where
    the doc has no sentence boundaries: ".", "!" or "?", or whitespace that
    holds a blank line. attrs: the tokens' (ORTH, IS_SPACE) rows."""
    ends = np.isin(attrs[:, 0], SENTENCE_END_ORTHS)
    for i in np.flatnonzero(attrs[:, 1]).tolist():
        ends[i] = doc[offset + i].text.count("\n") >= 2
    return ends


def plan_doc(model: Model, state: HFState, doc: Doc, enc: DocEncoding) -> WindowPlan:
    context = model.attrs["context"]
    if context == "document":
        if enc.n_wp > state.window and model.attrs.get("cut_at_sentences", True):
            return sentence_cut_windows(enc.n_wp, state.window, state.stride, sentence_cuts_wp(doc, enc))
        return sliding_windows(enc.n_wp, state.window, state.stride)
    if enc.n_wp and not doc.has_annotation("SENT_START") and not state.warned_no_sents:
        # Once per loaded model: the doc is read as one sentence, which is not
        # the mode the pipeline was trained for. Marked as warned only once
        # the warning is out: where warnings are errors it raises for every
        # buffer, whichever thread plans it (prefetch).
        warnings.warn(Warnings.W003.format(context=context), stacklevel=2)
        state.warned_no_sents = True
    sents = sentence_starts_wp(doc, enc)
    size = model.attrs["context_size"] if context == "sentence_context" else None
    return sentence_windows(enc.n_wp, sents, state.window, state.stride, size, model.attrs.get("pack", 0))


@dataclass
class Batch:
    """One forward call's input.

    windows: the window index of each row; input_ids, attention_mask: (b, T)
    with special tokens and padding; lengths: (b,) content wordpieces a row.
    """

    windows: np.ndarray
    input_ids: np.ndarray
    attention_mask: np.ndarray
    lengths: np.ndarray


PAD_TOLERANCE = 0.1


def make_batches(
    window_ids: Sequence[np.ndarray],
    prefix: list[int],
    suffix: list[int],
    pad_id: int,
    budget: int,
    pad_multiple: int = 1,
    pad_tolerance: float = PAD_TOLERANCE,
    overhead: int = 0,
) -> list[Batch]:
    """Length-sorted batches of windows, each within `budget` padded wordpieces
    (a single window longer than the budget gets a batch of its own). Widths
    are rounded up to a multiple of `pad_multiple`. A batch takes only
    windows at least (1 - pad_tolerance) as wide as its widest (each rounded
    up to `pad_multiple`), so padding stays under about that fraction:
    filling each batch up to the budget instead pads hundreds of short
    sentences to the longest of them (on CoNLL dev sentences, 19% more
    wordpieces than real ones, against 4%).

    overhead: what one forward call costs beyond its wordpieces, in padded
    wordpieces (see `batch_overhead`). The next batch joins this one where
    the padding that adds costs less than another call and the budget
    allows. 0: no joining."""
    n_special = len(prefix) + len(suffix)
    prefix_arr = np.asarray(prefix, dtype=np.int64)
    suffix_arr = np.asarray(suffix, dtype=np.int64)
    lengths = np.fromiter((len(w) for w in window_ids), dtype=np.int64, count=len(window_ids))
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order] + n_special
    # What each window would be padded to alone: Longformer rounds every
    # batch up to its attention window (512 for the large model), so windows
    # of any length under it pad alike, and only the rounded widths tell
    # what a batch adds.
    sorted_widths = -(-sorted_lengths // pad_multiple) * pad_multiple
    groups: list[list[int]] = []  # [first, end, width] in sorted order
    i = 0
    while i < len(order):
        width = int(sorted_widths[i])
        rows = max(1, budget // max(width, 1))
        # Sorted descending: the windows long enough are a prefix of the rest.
        long_enough = int(np.searchsorted(-sorted_widths[i : i + rows], -(1.0 - pad_tolerance) * width, side="right"))
        end = i + max(1, long_enough)
        last = groups[-1] if groups else None
        if last is not None and overhead > 0:
            fits = (end - last[0]) * last[2] <= budget
            # Padding the group's rows to the open batch's width, against a call.
            extra = int((last[2] - sorted_widths[i:end]).sum())
            if fits and extra < overhead:
                last[1] = end
                i = end
                continue
        groups.append([i, end, width])
        i = end
    batches: list[Batch] = []
    for first, end, width in groups:
        chosen = order[first:end]
        b = len(chosen)
        # All rows at once: each row is prefix + window + suffix, then padding.
        row_len = lengths[chosen] + n_special
        ids = np.full((b, width), pad_id, dtype=np.int64)
        mask = (np.arange(width)[None, :] < row_len[:, None]).astype(np.int64)
        pieces = []
        for w in chosen:
            pieces += [prefix_arr, window_ids[w], suffix_arr]
        ids[mask.astype(bool)] = np.concatenate(pieces)
        batches.append(Batch(chosen, ids, mask, lengths[chosen]))
    return batches


@dataclass
class PlannedBuffer:
    """A buffer of docs ready for the forward pass.

    encs: per doc, its wordpieces and their tokens.
    batches: the forward batches.
    gather: (n_wp_total,) for each wordpiece of the docs, in doc order, its
        row in the concatenated content rows of the batches' outputs.
    n_prefix: special tokens before the content in each window.
    rows: (n_wp_total,) for each wordpiece of the docs, in doc order, its
        row in the batches' outputs flattened to (b * T) rows and
        concatenated: one index_select on the device gathers every doc's
        wordpieces, with no boolean masks (which synchronise a GPU).
    """

    encs: list[DocEncoding]
    batches: list["Batch"]
    gather: np.ndarray
    n_prefix: int
    rows: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.rows is None:
            self.rows = output_rows(self.batches, self.gather, self.n_prefix)

    @property
    def wp_lengths(self) -> list[int]:
        return [enc.n_wp for enc in self.encs]


def plan_buffer(model: Model, docs: Sequence[Doc], *, overhead: int = 0, budget: Optional[int] = None) -> PlannedBuffer:
    """Tokenize, plan the windows of and batch a buffer of docs. In document
    context a doc that fits one window (every sentence, most documents) is
    its own window, with no plan made for it; the rows of all such docs are
    computed at once.

    overhead: what a forward call costs beyond its wordpieces, in padded
    wordpieces (runtime.batch_overhead): make_batches joins batches where
    that is cheaper than a call. 0 (training): no joining, since joined
    batches change the shapes dropout draws its masks for, and a training
    run would no longer give the weights that earlier versions gave for the
    same config and seed.
    budget: padded wordpieces per batch; None: the model's
    `wordpiece_budget` (model.inference_budget gives the one to predict
    with)."""
    state: HFState = model.attrs["state"]
    encs = encode_docs(state, docs)
    n_wp = np.fromiter((enc.n_wp for enc in encs), dtype=np.int64, count=len(encs))
    one_window = n_wp <= state.window if model.attrs["context"] == "document" else np.zeros(len(encs), dtype=bool)
    window_ids: list[np.ndarray] = []
    window_base = np.zeros(len(encs), dtype=np.int64)
    plans = {}
    for i, (doc, enc, single) in enumerate(zip(docs, encs, one_window.tolist())):
        window_base[i] = len(window_ids)
        if single:
            if enc.n_wp:
                window_ids.append(enc.input_ids)
            continue
        plan = plan_doc(model, state, doc, enc)
        plans[i] = plan
        window_ids.extend(enc.input_ids[s:e] for s, e in zip(plan.starts.tolist(), plan.ends.tolist()))
    # A padding-sensitive model gets batches of one length each, unjoined.
    tolerance = 0.0 if state.exact_lengths else PAD_TOLERANCE
    budget = model.attrs["wordpiece_budget"] if budget is None else budget
    batches = make_batches(
        window_ids,
        state.prefix,
        state.suffix,
        state.pad_id,
        budget,
        state.pad_multiple,
        pad_tolerance=tolerance,
        overhead=0 if state.exact_lengths else overhead,
    )
    # Offset of each window's content rows in the concatenated batch outputs.
    window_offset = np.zeros(len(window_ids), dtype=np.int64)
    if batches:
        order = np.concatenate([b.windows for b in batches])
        proc_len = np.concatenate([b.lengths for b in batches]).astype(np.int64)
        window_offset[order] = offsets(proc_len)[:-1]
    # Each wordpiece's row, in doc order: its window's offset plus its place
    # in the window (one-window docs at once, planned docs one by one).
    piece_start = offsets(n_wp)[:-1]
    local, owner = ragged_index(np.zeros(len(encs), dtype=np.int64), n_wp)
    gather = window_offset[window_base[owner]] + local if len(local) else local
    for i, plan in plans.items():
        a, b = int(piece_start[i]), int(piece_start[i] + n_wp[i])
        if b > a:
            gather[a:b] = window_offset[window_base[i] + plan.owner] + (local[a:b] - plan.starts[plan.owner])
    return PlannedBuffer(encs, batches, gather, len(state.prefix))


def output_rows(batches: Sequence["Batch"], gather: np.ndarray, n_prefix: int) -> np.ndarray:
    """See PlannedBuffer.rows."""
    content = []
    base = 0
    for batch in batches:
        b, T = batch.input_ids.shape
        lengths = batch.lengths.astype(np.int64)
        row_start = base + np.arange(b, dtype=np.int64) * T + n_prefix
        content.append(ragged_index(row_start, lengths)[0])
        base += b * T
    if not content:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(content)[gather]
