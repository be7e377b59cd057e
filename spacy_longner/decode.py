"""Label schemes and decoding: from per-token label probabilities to entities.

Pure functions on numpy arrays. Tags are normalised to five prefixes so that one
chunker serves every scheme: BILOU's L and U become E and S, and a bare IO label
X becomes I-X.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .arrays import row_argmax
from .errors import Errors

SCHEMES = ("auto", "IOB1", "IOB2", "BIOES", "BILOU", "IO")
DECODINGS = ("conlleval", "viterbi")

O, B, I, E, S = 0, 1, 2, 3, 4  # noqa: E741  (the tag prefixes, named as in the tags)
_PREFIX_CODES = {"B": B, "I": I, "E": E, "S": S, "L": E, "U": S}


@dataclass(frozen=True)
class TagSet:
    """The checkpoint's labels, parsed.

    labels (Tuple[str]): the raw labels, in id order.
    scheme (str): the resolved scheme (never "auto").
    prefix (np.ndarray): int code per label: O, B, I, E or S.
    type_id (np.ndarray): entity type index per label, -1 for O.
    types (Tuple[str]): entity types, sorted.
    o_index (int): id of the outside label.
    """

    labels: tuple[str, ...]
    scheme: str
    prefix: np.ndarray
    type_id: np.ndarray
    types: tuple[str, ...]
    o_index: int


OUTSIDE = ("O", "o")
_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


def split_label(label: str) -> tuple[Optional[str], str]:
    """Split 'B-PER' into ('B', 'PER'); exported heads also write 'b-per' and
    'B_PER' (the prefix is read upper-case, the type kept as written). A bare
    label 'PER' gives (None, 'PER')."""
    if len(label) > 2 and label[0].upper() in _PREFIX_CODES and label[1] in "-_":
        return label[0].upper(), label[2:]
    return None, label


def outside_label(labels: Sequence[str]) -> Optional[str]:
    """The checkpoint's outside label: 'O' (or 'o'), else None."""
    return next((lab for lab in OUTSIDE if lab in labels), None)


def detect_scheme(labels: Iterable[str]) -> str:
    """The scheme that a set of labels is written in (IOB1 and IOB2 can't be told
    apart from the labels alone; IOB2 is returned, and decodes the same)."""
    prefixes = {split_label(lab)[0] for lab in labels if lab not in OUTSIDE}
    if prefixes & {"L", "U"}:
        return "BILOU"
    if prefixes & {"E", "S"}:
        return "BIOES"
    if prefixes & {"B", "I"}:
        return "IOB2"
    return "IO"


def parse_tagset(labels: Sequence[str], scheme: str = "auto") -> TagSet:
    """Parse a checkpoint's labels (id order) into a TagSet."""
    labels = tuple(labels)
    if scheme not in SCHEMES:
        raise ValueError(Errors.E010.format(value=scheme, setting="scheme", options=", ".join(SCHEMES)))
    outside = outside_label(labels)
    if outside is None:
        raise ValueError(Errors.E008.format(labels=list(labels)))
    tags = [lab for lab in labels if lab != outside]
    generic = [lab for lab in tags if _GENERIC_LABEL.match(lab)]
    bare = [lab for lab in tags if split_label(lab)[0] is None]
    if generic or (bare and len(bare) < len(tags)):
        # LABEL_3 beside PER, or PER beside B-LOC: no scheme reads both.
        raise ValueError(Errors.E027.format(labels=list(labels), odd=", ".join((generic or bare)[:5])))
    detected = detect_scheme(labels)
    if scheme == "auto":
        scheme = detected
    compatible = {
        "IOB2": {"IOB1", "IOB2"},
        "IO": {"IO", "IOB1", "IOB2"},
        "BIOES": {"BIOES"},
        "BILOU": {"BILOU"},
    }[detected]
    if scheme not in compatible:
        raise ValueError(Errors.E009.format(scheme=scheme, labels=list(labels), detected=detected))
    types = sorted({split_label(lab)[1] for lab in tags})
    type_index = {t: i for i, t in enumerate(types)}
    prefix = np.zeros(len(labels), dtype=np.int8)
    type_id = np.full(len(labels), -1, dtype=np.int32)
    for i, lab in enumerate(labels):
        if lab == outside:
            continue
        p, t = split_label(lab)
        prefix[i] = _PREFIX_CODES[p] if p is not None else I
        type_id[i] = type_index[t]
    return TagSet(
        labels=labels,
        scheme=scheme,
        prefix=prefix,
        type_id=type_id,
        types=tuple(types),
        o_index=labels.index(outside),
    )


def chunk_arrays(
    prefix: np.ndarray, type_id: np.ndarray, seq_start: Optional[np.ndarray] = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """conlleval's chunking of one or many concatenated tag sequences, vectorised.

    prefix (np.ndarray): O/B/I/E/S code per token.
    type_id (np.ndarray): entity type per token (-1 for O).
    seq_start (Optional[np.ndarray]): bool per token, True where a new
        sequence begins (no chunk crosses it); None for one sequence.
    RETURNS (Tuple[np.ndarray, np.ndarray, np.ndarray]): starts, ends
        (exclusive) and type ids of the chunks, in order.

    Follows conlleval's startOfChunk/endOfChunk: an I- after O or after another
    type starts a new chunk, as in published CoNLL scores.
    """
    n = len(prefix)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    p = np.asarray(prefix)
    t = np.asarray(type_id)
    prev_p = np.empty_like(p)
    prev_p[0], prev_p[1:] = O, p[:-1]
    prev_t = np.empty_like(t)
    prev_t[0], prev_t[1:] = -1, t[:-1]
    next_p = np.empty_like(p)
    next_p[-1], next_p[:-1] = O, p[1:]
    next_t = np.empty_like(t)
    next_t[-1], next_t[:-1] = -1, t[1:]
    if seq_start is not None:
        # Each sequence starts after an O and ends before one.
        prev_p[seq_start] = O
        prev_t[seq_start] = -1
        seq_end = np.empty(n, dtype=bool)
        seq_end[-1], seq_end[:-1] = True, seq_start[1:]
        next_p[seq_end] = O
        next_t[seq_end] = -1
    inside = p != O
    cont = (p == E) | (p == I)
    start = (p == B) | (p == S) | (cont & ((prev_p == E) | (prev_p == S) | (prev_p == O))) | (inside & (prev_t != t))
    closes = (next_p == B) | (next_p == S) | (next_p == O)
    end_after = (p == E) | (p == S) | (((p == B) | (p == I)) & closes) | (inside & (t != next_t))
    starts = np.flatnonzero(start)
    ends = np.flatnonzero(end_after)
    last = ends[np.searchsorted(ends, starts)]
    return starts, last + 1, t[starts].astype(np.int64)


def chunk_starts_ends(prefix: np.ndarray, type_id: np.ndarray) -> list[tuple[int, int, int]]:
    """conlleval's chunking of one tag sequence: (start, end, type_id), end
    exclusive (see chunk_arrays)."""
    starts, ends, types = chunk_arrays(prefix, type_id)
    return [(int(s), int(e), int(c)) for s, e, c in zip(starts, ends, types)]


def allowed_transitions(tagset: TagSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which tag may follow which under the scheme (for constrained decoding).

    RETURNS (Tuple[np.ndarray, np.ndarray, np.ndarray]): `trans[i, j]` (tag j may
    follow tag i), `first[j]` (tag j may start a sequence), `last[i]` (tag i may
    end one).
    """
    p, t = tagset.prefix, tagset.type_id
    n = len(p)
    same = t[:, None] == t[None, :]
    pi, pj = p[:, None], p[None, :]
    scheme = tagset.scheme
    if scheme == "IO":
        trans = np.ones((n, n), dtype=bool)
        first = np.ones(n, dtype=bool)
        last = np.ones(n, dtype=bool)
    elif scheme == "IOB2":
        # I-X only continues B-X or I-X.
        trans = (pj != I) | (((pi == B) | (pi == I)) & same)
        first = p != I
        last = np.ones(n, dtype=bool)
    elif scheme == "IOB1":
        # B-X only separates two adjacent X entities.
        trans = (pj != B) | (((pi == B) | (pi == I)) & same)
        first = p != B
        last = np.ones(n, dtype=bool)
    else:  # BIOES / BILOU, normalised to B, I, E, S
        inside_prev = ((pi == B) | (pi == I)) & same
        outside_prev = (pi == O) | (pi == E) | (pi == S)
        trans = np.where((pj == I) | (pj == E), inside_prev, np.broadcast_to(outside_prev, (n, n)))
        first = (p == O) | (p == B) | (p == S)
        last = (p == O) | (p == E) | (p == S)
    return trans, first, last


def invalid_sequences(tags: np.ndarray, seq_id: np.ndarray, seq_start: np.ndarray, n_seqs: int, allowed) -> np.ndarray:
    """Which of many concatenated tag sequences break the scheme.

    tags, seq_id, seq_start: per token, its tag, its sequence and whether it
    starts its sequence. allowed: allowed_transitions' (trans, first, last).
    RETURNS (np.ndarray): bool per sequence.
    """
    trans, first, last = allowed
    bad = np.zeros(n_seqs, dtype=bool)
    if len(tags) == 0:
        return bad
    seq_end = np.empty(len(tags), dtype=bool)
    seq_end[-1], seq_end[:-1] = True, seq_start[1:]
    bad[seq_id[seq_start & ~first[tags]]] = True
    bad[seq_id[seq_end & ~last[tags]]] = True
    pair_bad = ~trans[tags[:-1], tags[1:]] & ~seq_start[1:]
    bad[seq_id[1:][pair_bad]] = True
    return bad


def viterbi_batch(log_probs: Sequence[np.ndarray], tagset: TagSet, allowed=None) -> list[np.ndarray]:
    """viterbi() over many sequences at once: one step over all of them per
    position, so the Python loop runs as many times as the longest is long."""
    out = [np.zeros(0, dtype=np.int64) for _ in log_probs]
    todo = [i for i, lp in enumerate(log_probs) if len(lp)]
    if not todo:
        return out
    trans, first, last = allowed if allowed is not None else allowed_transitions(tagset)
    n_labels = log_probs[todo[0]].shape[1]
    lengths = np.array([len(log_probs[i]) for i in todo], dtype=np.int64)
    n_seq, T = len(todo), int(lengths.max())
    neg = np.float64(-1e30)
    lp = np.zeros((n_seq, T, n_labels), dtype=np.float64)
    for row, i in enumerate(todo):
        lp[row, : lengths[row]] = log_probs[i]
    trans_score = np.where(trans, 0.0, neg)
    score = lp[:, 0] + np.where(first, 0.0, neg)
    back = np.zeros((n_seq, T, n_labels), dtype=np.int32)
    cols = np.arange(n_labels)
    for t in range(1, T):
        active = lengths > t
        cand = score[active][:, :, None] + trans_score[None]
        best = cand.argmax(axis=1)
        back[active, t] = best
        score[active] = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0, cols] + lp[active, t]
    score = score + np.where(last, 0.0, neg)
    path = np.zeros((n_seq, T), dtype=np.int64)
    rows = np.arange(n_seq)
    path[rows, lengths - 1] = score.argmax(axis=1)
    for t in range(T - 1, 0, -1):
        active = lengths > t
        r = rows[active]
        path[r, t - 1] = back[r, t, path[r, t]]
    for row, i in enumerate(todo):
        out[i] = path[row, : lengths[row]]
    return out


@dataclass
class EntityArrays:
    """Entities of many docs as arrays, sorted by doc and start.

    doc: index of the doc; start, end: token offsets in that doc (end
    exclusive); type_id: index into TagSet.types; score: the confidence.
    """

    doc: np.ndarray
    start: np.ndarray
    end: np.ndarray
    type_id: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.doc)

    def select(self, keep: np.ndarray) -> "EntityArrays":
        return EntityArrays(self.doc[keep], self.start[keep], self.end[keep], self.type_id[keep], self.score[keep])


def decode_buffer(
    probs: np.ndarray,
    visible: np.ndarray,
    doc_offsets: np.ndarray,
    tagset: TagSet,
    *,
    decoding: str = "conlleval",
    confidence: str = "mean",
) -> tuple[np.ndarray, EntityArrays]:
    """Decode per-token label probabilities of many docs into tags and
    entities, each doc as its own sequence.

    probs (np.ndarray): (n_tokens, n_labels) probabilities, the docs' tokens
        concatenated.
    visible (np.ndarray): bool per token: False for tokens the model never
        saw (whitespace, no wordpiece). A doc's visible tokens are decoded as
        one sequence, as if the others were not there, so whitespace between
        two words never changes the entities: an entity may hold invisible
        tokens inside it, but never starts or ends on one.
    doc_offsets (np.ndarray): (n_docs + 1,) where each doc's tokens start.
    decoding (str): "conlleval" (argmax, then conlleval chunking) or
        "viterbi" (most probable valid sequence, then the same chunking).
    confidence (str): the entities' score: "mean" (the mean probability of
        the chosen tag over the entity's visible tokens) or "marginal" (the
        probability that the entity is exactly in the tags, under the
        decoding's transition rules: confidence.py).
    RETURNS (Tuple[np.ndarray, EntityArrays]): label id per token (-1 for an
        invisible token) and the entities in token offsets with their score.
    """
    if decoding not in DECODINGS:
        raise ValueError(Errors.E010.format(value=decoding, setting="decoding", options=", ".join(DECODINGS)))
    n = probs.shape[0]
    tags = np.full(n, -1, dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)
    none = EntityArrays(empty, empty, empty, empty, np.zeros(0, dtype=np.float64))
    seen = np.flatnonzero(visible)
    if len(seen) == 0:
        return tags, none
    n_docs = len(doc_offsets) - 1
    seq_id = np.searchsorted(doc_offsets, seen, side="right") - 1
    seq_start = np.empty(len(seen), dtype=bool)
    seq_start[0], seq_start[1:] = True, seq_id[1:] != seq_id[:-1]
    p = probs if len(seen) == n else probs[seen]
    seq = row_argmax(p)
    if decoding == "viterbi":
        allowed = allowed_transitions(tagset)
        bad = np.flatnonzero(invalid_sequences(seq, seq_id, seq_start, n_docs, allowed))
        if len(bad):
            # Only there is the constrained optimum different from the argmax
            # (which maximises the same sum without constraints).
            bounds = np.searchsorted(seq_id, np.stack([bad, bad + 1]))
            with np.errstate(divide="ignore"):
                lps = [np.log(np.clip(p[a:b], 1e-30, None)) for a, b in zip(*bounds)]
            for (a, b), path in zip(zip(*bounds), viterbi_batch(lps, tagset, allowed)):
                seq[a:b] = path
    tags[seen] = seq
    starts, ends, types = chunk_arrays(tagset.prefix[seq], tagset.type_id[seq], seq_start)
    if len(starts) == 0:
        return tags, none
    if confidence == "marginal":
        from .confidence import entity_probabilities, make_chain

        scores = entity_probabilities(p, seq_start, starts, ends, types, make_chain(tagset, decoding))
    else:
        tag_prob = p.reshape(-1)[np.arange(len(seq)) * p.shape[1] + seq]
        csum = np.concatenate([[0.0], np.cumsum(tag_prob, dtype=np.float64)])
        scores = np.clip((csum[ends] - csum[starts]) / (ends - starts), 0.0, 1.0)
    # Back to token offsets in each doc: from the first visible token to the last.
    docs = seq_id[starts]
    base = doc_offsets[docs]
    return tags, EntityArrays(docs, seen[starts] - base, seen[ends - 1] + 1 - base, types, scores)
