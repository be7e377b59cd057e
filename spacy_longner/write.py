"""Writing entities to Docs through spaCy's array API.

One `Doc.from_array([ENT_IOB, ENT_TYPE], ...)` call per doc writes all its
entities: no Token objects, and no Span objects for doc.ents (the span group
still needs one Span per entity).
"""

from typing import Tuple

import numpy as np
from spacy.attrs import ENT_IOB, ENT_TYPE
from spacy.tokens import Doc

# spaCy's Token.iob_strings(): ("", "I", "O", "B")
IOB_MISSING, IOB_I, IOB_O, IOB_B = 0, 1, 2, 3
ENT_ATTRS = [ENT_IOB, ENT_TYPE]


def ent_rows(doc_offsets: np.ndarray, doc: np.ndarray, starts: np.ndarray, ends: np.ndarray, label_hashes: np.ndarray) -> np.ndarray:
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
    doc.from_array(ENT_ATTRS, mark_entities(current, starts, ends, label_hashes))
    return written


def entity_token_index(starts: np.ndarray, ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The token indices covered by the entities, and for each the entity it
    belongs to."""
    lengths = (ends - starts).astype(np.int64)
    total = int(lengths.sum())
    owner = np.repeat(np.arange(len(starts)), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    idx = starts.astype(np.int64)[owner] + (np.arange(total, dtype=np.int64) - first[owner])
    return idx, owner
