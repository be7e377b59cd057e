"""Writing predicted entities to Docs through spaCy's array API.

One `Doc.from_array([ENT_IOB, ENT_TYPE], ...)` call per doc writes all its
entities: no Token objects, and no Span objects for doc.ents (the span group
still needs one Span per entity).
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import numpy as np
from spacy.attrs import ENT_IOB, ENT_TYPE
from spacy.tokens import Doc, Span, SpanGroup

from .arrays import ragged_index

if TYPE_CHECKING:
    from .prediction import BufferPrediction

TOKEN_PROBS_ATTR = "long_ner_probs"
TOKEN_LABELS_ATTR = "long_ner_labels"

for _attr in (TOKEN_PROBS_ATTR, TOKEN_LABELS_ATTR):
    if not Doc.has_extension(_attr):
        Doc.set_extension(_attr, default=None)

# spaCy's Token.iob_strings(): ("", "I", "O", "B")
IOB_MISSING, IOB_I, IOB_O, IOB_B = 0, 1, 2, 3
ENT_ATTRS = [ENT_IOB, ENT_TYPE]


def ent_rows(
    doc_offsets: np.ndarray, doc: np.ndarray, starts: np.ndarray, ends: np.ndarray, label_hashes: np.ndarray
) -> np.ndarray:
    """(n_tokens, 2) uint64 ENT_IOB/ENT_TYPE rows for the tokens of many docs
    (their offsets in `doc_offsets`), every token O but the entities'.
    Slicing a doc's rows and `doc.from_array(ENT_ATTRS, rows)` writes its
    entities as `Doc.set_ents(spans, default="outside")` does."""
    base = doc_offsets[doc] if len(doc) else np.zeros(0, dtype=np.int64)
    return mark_entities(outside_rows(int(doc_offsets[-1])), starts + base, ends + base, label_hashes)


def outside_rows(n: int) -> np.ndarray:
    """(n, 2) ENT_IOB/ENT_TYPE rows, every token O."""
    rows = np.zeros((n, 2), dtype=np.uint64)
    rows[:, 0] = IOB_O
    return rows


def mark_entities(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, label_hashes: np.ndarray) -> np.ndarray:
    """Write entities (row offsets, end exclusive) into ENT_IOB/ENT_TYPE rows:
    B on the first token, I on the others, the label on all; returns rows."""
    idx, owner = entity_token_index(starts, ends)
    rows[idx, 0] = IOB_I
    rows[starts, 0] = IOB_B
    rows[idx, 1] = label_hashes[owner]
    return rows


def write_ents(doc: Doc, starts: np.ndarray, ends: np.ndarray, label_hashes: np.ndarray, existing: str) -> np.ndarray:
    """Write predicted entities (token offsets, end exclusive, sorted and
    non-overlapping) to doc.ents; return a bool mask of those written.

    existing: "overwrite" (doc.ents becomes the prediction: every other token
    is O), "keep" (a doc that has entities keeps them and gets none), "fill"
    (entities are added where they overlap none of the doc's; its other
    tokens keep their annotation). A doc without entities gets the
    prediction in every mode, as with `Doc.set_ents(default="outside")`.
    """
    n = len(doc)
    written = np.ones(len(starts), dtype=bool)
    if existing == "overwrite":
        current = None
    else:
        current = doc.to_array([ENT_IOB, ENT_TYPE]).astype(np.uint64)
        in_ent = (current[:, 0] == IOB_B) | (current[:, 0] == IOB_I)
        if not in_ent.any():
            current = None
        elif existing == "keep":
            return np.zeros(len(starts), dtype=bool)
        else:
            taken = np.concatenate([[0], np.cumsum(in_ent)])
            written = taken[ends] == taken[starts]
            starts, ends, label_hashes = starts[written], ends[written], label_hashes[written]
    if current is None:
        current = outside_rows(n)
    doc.from_array(ENT_ATTRS, mark_entities(current, starts, ends, label_hashes))  # type: ignore[arg-type]  # uint64 rows
    return written


def entity_token_index(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The token indices covered by the entities, and for each the entity it
    belongs to."""
    return ragged_index(starts, ends - starts)


def write_buffer(
    docs: Sequence[Doc],
    preds: "BufferPrediction",
    *,
    output: str,
    spans_key: str,
    existing: str,
    model_labels: Optional[list[str]] = None,
) -> None:
    """Write a buffer's predictions to its docs: doc.ents (output "ents",
    as `existing` says, see write_ents), the span group `spans_key` with one
    confidence per entity, and, where predicted, the token probabilities
    (with `model_labels` naming their columns) and doc._.trf_data."""
    # Label strings go into the docs' own StringStore (a doc may come with
    # another Vocab than the pipeline's); hashes are the same in all.
    for vocab in {id(d.vocab): d.vocab for d in docs}.values():
        hashes = np.array([vocab.strings.add(label) for label in preds.labels], dtype=np.uint64)
    ents = preds.entities
    bounds = preds.doc_bounds()
    doc_offsets = preds.token_offsets
    label_hashes = hashes[ents.type_id]
    # Whole-buffer arrays, sliced per doc: with "overwrite" each doc's
    # entities are one from_array call on its slice of the buffer's
    # ENT_IOB/ENT_TYPE rows.
    rows = None
    if output == "ents" and existing == "overwrite":
        rows = ent_rows(doc_offsets, ents.doc, ents.start, ents.end, label_hashes)
    # Python ints for the per-doc slicing (numpy scalars index slowly).
    bounds_l, offsets_l = bounds.tolist(), doc_offsets.tolist()
    for i, doc in enumerate(docs):
        a, b = bounds_l[i], bounds_l[i + 1]
        chosen: slice | np.ndarray = slice(a, b)
        if rows is not None:
            if offsets_l[i + 1] > offsets_l[i]:
                doc.from_array(ENT_ATTRS, rows[offsets_l[i] : offsets_l[i + 1]])  # type: ignore[arg-type]  # uint64 rows
        elif output == "ents":
            written = write_ents(doc, ents.start[a:b], ents.end[a:b], label_hashes[a:b], existing)
            if not written.all():
                chosen = a + np.flatnonzero(written)
        # The span group holds the entities written (all of them, but with
        # "keep"/"fill" only those that did not clash).
        doc.spans[spans_key] = span_group(
            doc, spans_key, ents.start[chosen], ents.end[chosen], label_hashes[chosen], ents.score[chosen]
        )
        if preds.token_probs is not None:
            doc._.set(TOKEN_PROBS_ATTR, preds.token_probs[i])
            doc._.set(TOKEN_LABELS_ATTR, model_labels)
        if preds.trf_data is not None:
            doc._.trf_data = preds.trf_data[i]


# Spans made at a time for a span group: a book-length doc's entities are not
# all Python objects at once. Large, as each SpanGroup.extend reserves room
# for exactly what it adds, copying the group.
SPAN_CHUNK = 65536


def span_group(
    doc: Doc, key: str, starts: np.ndarray, ends: np.ndarray, label_hashes: np.ndarray, scores: np.ndarray
) -> SpanGroup:
    """The span group `key` of a doc's entities, their confidences in
    `attrs["scores"]`."""

    def spans(c: int) -> list[Span]:
        chunk = slice(c, c + SPAN_CHUNK)
        return [
            Span(doc, s, e, label=h)
            for s, e, h in zip(starts[chunk].tolist(), ends[chunk].tolist(), label_hashes[chunk].tolist())
        ]

    group = SpanGroup(doc, name=key, attrs={"scores": scores.tolist()}, spans=spans(0))
    for c in range(SPAN_CHUNK, len(starts), SPAN_CHUNK):
        group.extend(spans(c))
    return group
