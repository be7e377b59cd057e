"""Label schemes and decoding: from per-token label probabilities to entities.

Pure functions on numpy arrays. Tags are normalised to five prefixes so that one
chunker serves every scheme: BILOU's L and U become E and S, and a bare IO label
X becomes I-X.
"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import Errors

SCHEMES = ("auto", "IOB1", "IOB2", "BIOES", "BILOU", "IO")
DECODINGS = ("conlleval", "viterbi")

O, B, I, E, S = 0, 1, 2, 3, 4
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

    labels: Tuple[str, ...]
    scheme: str
    prefix: np.ndarray
    type_id: np.ndarray
    types: Tuple[str, ...]
    o_index: int


def split_label(label: str) -> Tuple[Optional[str], str]:
    """Split 'B-PER' into ('B', 'PER'); a bare label 'PER' gives (None, 'PER')."""
    if len(label) > 2 and label[0] in _PREFIX_CODES and label[1] in "-_":
        return label[0], label[2:]
    return None, label


def detect_scheme(labels: Iterable[str]) -> str:
    """The scheme that a set of labels is written in (IOB1 and IOB2 can't be told
    apart from the labels alone; IOB2 is returned, and decodes the same)."""
    prefixes = {split_label(lab)[0] for lab in labels if lab != "O"}
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
        raise ValueError(
            Errors.E010.format(value=scheme, setting="scheme", options=", ".join(SCHEMES))
        )
    if "O" not in labels:
        raise ValueError(Errors.E008.format(labels=list(labels)))
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
        raise ValueError(
            Errors.E009.format(scheme=scheme, labels=list(labels), detected=detected)
        )
    types = sorted({split_label(lab)[1] for lab in labels if lab != "O"})
    type_index = {t: i for i, t in enumerate(types)}
    prefix = np.zeros(len(labels), dtype=np.int8)
    type_id = np.full(len(labels), -1, dtype=np.int32)
    for i, lab in enumerate(labels):
        if lab == "O":
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
        o_index=labels.index("O"),
    )


def chunk_starts_ends(prefix: np.ndarray, type_id: np.ndarray) -> List[Tuple[int, int, int]]:
    """conlleval's chunking of a tag sequence, vectorised.

    prefix (np.ndarray): O/B/I/E/S code per token.
    type_id (np.ndarray): entity type per token (-1 for O).
    RETURNS (List[Tuple[int, int, int]]): (start, end, type_id), end exclusive.

    Follows conlleval's startOfChunk/endOfChunk: an I- after O or after another
    type starts a new chunk, as in published CoNLL scores.
    """
    n = len(prefix)
    if n == 0:
        return []
    prev_p = np.concatenate([[O], prefix[:-1]])
    prev_t = np.concatenate([[-1], type_id[:-1]])
    p, t = prefix, type_id
    start = (
        (p == B)
        | (p == S)
        | ((prev_p == E) & ((p == E) | (p == I)))
        | ((prev_p == S) & ((p == E) | (p == I)))
        | ((prev_p == O) & ((p == E) | (p == I)))
        | ((p != O) & (prev_t != t))
    )
    next_p = np.concatenate([prefix[1:], [O]])
    next_t = np.concatenate([type_id[1:], [-1]])
    # end_after[i]: a chunk that covers token i ends after it.
    end_after = (
        (p == E)
        | (p == S)
        | ((p == B) & ((next_p == B) | (next_p == S) | (next_p == O)))
        | ((p == I) & ((next_p == B) | (next_p == S) | (next_p == O)))
        | ((p != O) & (t != next_t))
    )
    starts = np.flatnonzero(start)
    ends = np.flatnonzero(end_after)
    last = ends[np.searchsorted(ends, starts)]
    return [(int(s), int(e) + 1, int(type_id[s])) for s, e in zip(starts, last)]


def allowed_transitions(tagset: TagSet) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def viterbi(log_probs: np.ndarray, tagset: TagSet) -> np.ndarray:
    """The most probable tag sequence that is valid under the scheme.

    log_probs (np.ndarray): (n_tokens, n_labels) log probabilities.
    RETURNS (np.ndarray): best label id per token.
    """
    n, n_labels = log_probs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    trans, first, last = allowed_transitions(tagset)
    neg = np.float64(-1e30)
    trans_score = np.where(trans, 0.0, neg)
    lp = log_probs.astype(np.float64)
    score = lp[0] + np.where(first, 0.0, neg)
    back = np.empty((n, n_labels), dtype=np.int32)
    for i in range(1, n):
        cand = score[:, None] + trans_score
        back[i] = cand.argmax(axis=0)
        score = cand[back[i], np.arange(n_labels)] + lp[i]
    score = score + np.where(last, 0.0, neg)
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def is_valid(tags: np.ndarray, tagset: TagSet) -> bool:
    """Whether a tag sequence obeys the scheme (see allowed_transitions)."""
    if len(tags) == 0:
        return True
    trans, first, last = allowed_transitions(tagset)
    return bool(first[tags[0]] and last[tags[-1]] and trans[tags[:-1], tags[1:]].all())


@dataclass
class Entity:
    start: int
    end: int
    label: str
    score: float


def decode_tokens(
    probs: np.ndarray,
    visible: np.ndarray,
    tagset: TagSet,
    *,
    decoding: str = "conlleval",
) -> Tuple[np.ndarray, List[Entity]]:
    """Decode per-token label probabilities into tags and entities.

    probs (np.ndarray): (n_tokens, n_labels) probabilities.
    visible (np.ndarray): bool per token: False for tokens the model never saw
        (whitespace, no wordpiece). The visible tokens are decoded as one
        sequence, as if the others were not there, so whitespace between two
        words never changes the entities: an entity may hold invisible tokens
        inside it, but never starts or ends on one.
    decoding (str): "conlleval" (argmax, then conlleval chunking) or "viterbi"
        (most probable valid sequence, then the same chunking).
    RETURNS (Tuple[np.ndarray, List[Entity]]): label id per token (-1 for an
        invisible token), and the entities in token offsets with their
        confidence: the mean probability of the chosen tag over the entity's
        visible tokens.
    """
    if decoding not in DECODINGS:
        raise ValueError(
            Errors.E010.format(value=decoding, setting="decoding", options=", ".join(DECODINGS))
        )
    n = probs.shape[0]
    seen = np.flatnonzero(visible)
    tags = np.full(n, -1, dtype=np.int64)
    if len(seen) == 0:
        return tags, []
    p = probs[seen]
    seq = p.argmax(axis=1)
    if decoding == "viterbi" and not is_valid(seq, tagset):
        # Only then is the constrained optimum different from the argmax
        # (which maximises the same sum without constraints).
        with np.errstate(divide="ignore"):
            seq = viterbi(np.log(np.clip(p, 1e-30, None)), tagset)
    tags[seen] = seq
    chunks = chunk_starts_ends(tagset.prefix[seq], tagset.type_id[seq])
    if not chunks:
        return tags, []
    tag_prob = p[np.arange(len(seq)), seq]
    starts = np.array([c[0] for c in chunks])
    ends = np.array([c[1] for c in chunks])
    csum = np.concatenate([[0.0], np.cumsum(tag_prob, dtype=np.float64)])
    scores = np.clip((csum[ends] - csum[starts]) / (ends - starts), 0.0, 1.0)
    # Back to token offsets: from the first visible token to the last.
    tok_starts = seen[starts]
    tok_ends = seen[ends - 1] + 1
    ents = [
        Entity(int(s), int(e), tagset.types[c[2]], float(sc))
        for s, e, c, sc in zip(tok_starts, tok_ends, chunks, scores)
    ]
    return tags, ents


def map_labels(
    ents: List[Entity], label_map: Dict[str, str], ignore: Iterable[str]
) -> List[Entity]:
    """Rename entity types and drop the ignored ones (names before renaming)."""
    ignored = set(ignore)
    return [
        Entity(e.start, e.end, label_map.get(e.label, e.label), e.score)
        for e in ents
        if e.label not in ignored
    ]
