"""Reference decoders for the tests: one sequence at a time, written plainly,
to check the package's batched decoding (spacy_longner.decode) against."""

from dataclasses import dataclass

import numpy as np

from spacy_longner.decode import TagSet, allowed_transitions, decode_buffer


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
) -> tuple[np.ndarray, list[Entity]]:
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
    tags, ents = decode_buffer(probs, visible, np.array([0, probs.shape[0]]), tagset, decoding=decoding)
    return tags, [
        Entity(int(a), int(b), tagset.types[c], float(sc))
        for a, b, c, sc in zip(ents.start, ents.end, ents.type_id, ents.score)
    ]
