"""Documents longer than a read-ahead buffer, read in pieces.

A doc of more than `size` tokens (a book, a court record) is cut into
pieces of at most `size` tokens where sentences start; each piece is a copy
of its slice of the doc, and long_ner plans, predicts and decodes one buffer
of pieces at a time, so the memory that prediction takes stays that of one
buffer whatever the length of the doc. The entities of a doc's pieces are
joined, shifted to the doc's token offsets, and written to the doc once its
last piece is done.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from spacy.attrs import IS_SPACE, ORTH, SENT_START, SPACY
from spacy.tokens import Doc, Span

from .batching import sentence_ends
from .decode import EntityArrays
from .prediction import BufferPrediction

# The smallest pieces long_ner cuts a doc into (tokens): far longer than any
# window, so that only a book-length doc is cut, and a small `buffer_words`
# does not cut documents into small pieces.
MIN_PIECE_WORDS = 32768


@dataclass
class Piece:
    """What the model reads for `doc`: the doc itself (`part is doc`), or a
    copy of its tokens [start, start + len(part))."""

    doc: Doc
    part: Doc
    start: int = 0
    last: bool = True

    def __len__(self) -> int:
        return len(self.part)

    @property
    def whole(self) -> bool:
        return self.part is self.doc


def span_array(span: Span, attrs: list[int]) -> np.ndarray:
    """Span.to_array (which spaCy's type stubs lack)."""
    return span.to_array(attrs)  # type: ignore[attr-defined]


def piece_end(doc: Doc, start: int, size: int, *, has_sents: bool) -> int:
    """Where the piece of `doc` that begins at token `start` ends: the last
    sentence start within `size` tokens of `start` (the doc's own sentence
    boundaries where it has them, else after ".", "!", "?" and after blank
    lines), or `start + size` where no sentence starts in that stretch."""
    n = len(doc)
    if n - start <= size:
        return n
    if has_sents:
        # Sentence starts at tokens start + 1 ... start + size.
        starts = span_array(doc[start + 1 : start + size + 1], [SENT_START])[:, 0] == 1
        cuts = np.flatnonzero(starts)
        return start + 1 + int(cuts[-1]) if len(cuts) else start + size
    # A sentence starts after each token that ends one.
    ends = sentence_ends(doc, span_array(doc[start : start + size], [ORTH, IS_SPACE]), start)
    ends[0] = False  # a piece holds at least one token
    cuts = np.flatnonzero(ends)
    return start + int(cuts[-1]) + 1 if len(cuts) else start + size


def copy_tokens(doc: Doc, start: int, end: int, *, has_sents: bool) -> Doc:
    """A new Doc of tokens [start, end) of `doc`: their words, whitespace and
    sentence starts, all that long_ner reads. `Span.as_doc` would also copy
    every other attribute, converting the whole parent doc to an array for
    each piece: time and memory that grow with the doc."""
    span = doc[start:end]
    strings = doc.vocab.strings
    words = [strings[orth] for orth in span_array(span, [ORTH])[:, 0].tolist()]
    spaces = span_array(span, [SPACY])[:, 0].astype(bool).tolist()
    part = Doc(doc.vocab, words=words, spaces=spaces)
    if has_sents:
        sent_starts = span_array(span, [SENT_START])
        sent_starts[0, 0] = 1  # a piece starts a sentence, even where it had to be cut inside one
        part.from_array([SENT_START], sent_starts)  # type: ignore[arg-type]  # int64 rows
    return part


def split_long_docs(docs: Iterable[Doc], size: int) -> Iterator[Piece]:
    """Each doc as one Piece, or, where it has more than `size` tokens
    (`size` > 0), as consecutive pieces cut by `piece_end`, made lazily:
    only the pieces being read ahead exist at a time."""
    for doc in docs:
        if size <= 0 or len(doc) <= size:
            yield Piece(doc, doc)
            continue
        has_sents = doc.has_annotation("SENT_START")
        start = 0
        while start < len(doc):
            end = piece_end(doc, start, size, has_sents=has_sents)
            yield Piece(doc, copy_tokens(doc, start, end, has_sents=has_sents), start, last=end == len(doc))
            start = end


def take_doc(preds: BufferPrediction, i: int, shift: int = 0) -> BufferPrediction:
    """Doc `i` of a buffer's prediction as a prediction of its own, its
    token offsets moved by `shift`."""
    a, b = preds.doc_bounds()[i : i + 2].tolist()
    ents = preds.entities
    n_tokens = int(preds.token_offsets[i + 1] - preds.token_offsets[i])
    return BufferPrediction(
        1,
        EntityArrays(
            np.zeros(b - a, dtype=ents.doc.dtype),
            ents.start[a:b] + shift,
            ents.end[a:b] + shift,
            ents.type_id[a:b],
            ents.score[a:b],
        ),
        preds.labels,
        np.array([shift, shift + n_tokens], dtype=np.int64),
        [preds.token_probs[i]] if preds.token_probs is not None else None,
        [preds.trf_data[i]] if preds.trf_data is not None else None,
    )


@dataclass
class PieceJoiner:
    """Collects the predictions of one doc's pieces, in order."""

    parts: list[BufferPrediction] = field(default_factory=list)
    error: Optional[Exception] = None

    def add(self, piece: Piece, preds: BufferPrediction, i: int) -> None:
        part = take_doc(preds, i, shift=piece.start)
        if not piece.whole:
            # Kept until the doc's last piece: 20 bytes an entity, not 40
            # (the score stays float64, as a whole read gives it).
            e = part.entities
            part.entities = EntityArrays(
                e.doc[:0], e.start.astype(np.int32), e.end.astype(np.int32), e.type_id.astype(np.int32), e.score
            )
        self.parts.append(part)

    def prediction(self, n_tokens: int) -> BufferPrediction:
        """The whole doc's prediction."""
        parts = self.parts
        n = sum(len(p.entities.start) for p in parts)
        ents = EntityArrays(
            np.zeros(n, dtype=parts[0].entities.doc.dtype),
            *(np.concatenate([getattr(p.entities, k) for p in parts]) for k in ("start", "end", "type_id", "score")),
        )
        probs = None
        if parts[0].token_probs is not None:
            probs = [np.concatenate([p.token_probs[0] for p in parts if p.token_probs is not None])]
        return BufferPrediction(1, ents, parts[0].labels, np.array([0, n_tokens], dtype=np.int64), probs)

    def reset(self) -> None:
        self.parts, self.error = [], None
