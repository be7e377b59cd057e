"""Entity probabilities: how likely each decoded entity is to be exactly
right (its start, end and type), read from the token distributions the model
gives.

The model's per-token label distributions, joined by the decoding's
transition rules (the scheme's valid transitions for Viterbi decoding; none
for argmax), define a distribution over tag sequences:

    P(y) ∝ prod_t p_t(y_t) * allowed(y_{t-1}, y_t)   (and allowed first/last tags)

An entity (s, e, X) is the event that conlleval's chunker, run on y, finds a
chunk of type X from token s to token e (exclusive): a chunk of X starts at s,
every token up to e - 1 continues it, and token e does not. Each condition
is on a pair of neighbouring tags, so the event's probability is a ratio of
two path sums over the window s - 1 .. e, between the forward message at
s - 1 and the backward message at e (forward-backward), one with the pair
conditions applied and one without. Pure numpy; all sequences and all
entities of a buffer at once, a loop only over positions.
"""

from dataclasses import dataclass

import numpy as np

from .decode import E, I, O, S, TagSet, allowed_transitions

B_ = 1  # the B prefix code (decode.B), named apart from the loop variables


@dataclass(frozen=True)
class Chain:
    """The transition rules of a decoding, as float masks.

    trans (np.ndarray): (K, K) 1.0 where tag j may follow tag i.
    first, last (np.ndarray): (K,) 1.0 where a tag may start / end a sequence.
    start, cont, end (np.ndarray): (n_types, K, K) trans times conlleval's
        pair conditions: a chunk of the type starts at j after i; j continues
        the chunk that i is in; the chunk that i is in ends before j.
    start_first (np.ndarray): (n_types, K) first times "a chunk of the type
        starts at j at the start of a sequence".
    """

    trans: np.ndarray
    first: np.ndarray
    last: np.ndarray
    start: np.ndarray
    cont: np.ndarray
    end: np.ndarray
    start_first: np.ndarray


def chunk_conditions(tagset: TagSet) -> tuple[np.ndarray, np.ndarray]:
    """conlleval's chunker as conditions on neighbouring tags.

    RETURNS (Tuple[np.ndarray, np.ndarray]): `starts[x, i, j]`: a chunk of type x
    starts at a tag j that follows tag i; `conts[x, i, j]`: tag j continues
    the chunk of type x that tag i is in. A chunk ends before j exactly where
    j does not continue it. (decode.chunk_arrays applies the same rules.)
    """
    p, t = tagset.prefix, tagset.type_id
    n_types = len(tagset.types)
    pi, pj = p[:, None], p[None, :]
    ti, tj = t[:, None], t[None, :]
    inside_j = pj != O
    cont_j = (pj == I) | (pj == E)
    start = (pj == B_) | (pj == S) | (cont_j & ((pi == E) | (pi == S) | (pi == O))) | (inside_j & (ti != tj))
    cont = cont_j & ((pi == B_) | (pi == I)) & (ti == tj)
    types = np.arange(n_types)[:, None, None]
    return start[None] & (tj == types), cont[None] & (tj == types)


def make_chain(tagset: TagSet, decoding: str) -> Chain:
    """The Chain of `decoding`: the scheme's valid transitions for
    "viterbi", every transition for "conlleval" (argmax)."""
    k = len(tagset.labels)
    if decoding == "viterbi":
        trans_b, first_b, last_b = allowed_transitions(tagset)
    else:
        trans_b, first_b, last_b = np.ones((k, k), bool), np.ones(k, bool), np.ones(k, bool)
    starts, conts = chunk_conditions(tagset)
    trans = trans_b.astype(np.float64)
    ends = ~conts
    # At a sequence's start the tag before is taken as O, as the chunker does.
    start_first = starts[:, tagset.o_index, :] & first_b[None, :]
    return Chain(
        trans=trans,
        first=first_b.astype(np.float64),
        last=last_b.astype(np.float64),
        start=trans * starts,
        cont=trans * conts,
        end=trans * ends,
        start_first=start_first.astype(np.float64),
    )


def _normalise(x: np.ndarray) -> np.ndarray:
    total = x.sum(axis=1, keepdims=True)
    total[total <= 0] = 1.0
    return x / total


def forward_backward(probs: np.ndarray, seq_start: np.ndarray, chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward messages of each position, each normalised to sum
    to 1 (their scale cancels in entity_probabilities).

    probs (np.ndarray): (n, K) token label distributions, the sequences
        concatenated.
    seq_start (np.ndarray): (n,) bool, True where a sequence starts.
    RETURNS (Tuple[np.ndarray, np.ndarray]): alpha, beta, (n, K) float64.
    """
    n, _ = probs.shape
    p = np.asarray(probs, dtype=np.float64)
    alpha = np.empty_like(p)
    beta = np.empty_like(p)
    if n == 0:
        return alpha, beta
    starts = np.flatnonzero(seq_start)
    lengths = np.diff(np.append(starts, n))
    # Longest sequences first: those still running at step t are a prefix.
    order = np.argsort(-lengths, kind="stable")
    starts, lengths = starts[order], lengths[order]
    ends = starts + lengths - 1
    alpha[starts] = _normalise(p[starts] * chain.first)
    beta[ends] = _normalise(np.broadcast_to(chain.last, (len(ends), len(chain.last))).copy())
    running = len(lengths)
    trans, trans_t = chain.trans, chain.trans.T
    for step in range(1, int(lengths[0])):
        while lengths[running - 1] <= step:
            running -= 1
        here = starts[:running] + step
        alpha[here] = _normalise((alpha[here - 1] @ trans) * p[here])
        back = ends[:running] - step
        beta[back] = _normalise((p[back + 1] * beta[back + 1]) @ trans_t)
    return alpha, beta


def entity_probabilities(
    probs: np.ndarray,
    seq_start: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    types: np.ndarray,
    chain: Chain,
    messages: "tuple[np.ndarray, np.ndarray] | None" = None,
) -> np.ndarray:
    """P(the tag sequence has exactly the chunk (start, end, type)) for each
    entity, under the chain (see the module's docstring).

    probs, seq_start: as for forward_backward.
    starts, ends, types (np.ndarray): the entities in positions of `probs`
        (end exclusive; no entity crosses a sequence start).
    messages: forward_backward's result, where computed already.
    RETURNS (np.ndarray): float64 probability per entity, in [0, 1].
    """
    n_ent = len(starts)
    if n_ent == 0:
        return np.zeros(0, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    alpha, beta = messages if messages is not None else forward_backward(p, seq_start, chain)
    n = len(p)
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    types = np.asarray(types, dtype=np.int64)
    # Where each position's sequence ends (exclusive).
    seq_end = np.empty(n, dtype=np.int64)
    bounds = np.append(np.flatnonzero(seq_start), n)
    seq_end[:] = np.repeat(bounds[1:], np.diff(bounds))
    at_start = seq_start[starts]
    # The first token: a chunk of the type starts there (u), or anything (w).
    prev = alpha[np.maximum(starts - 1, 0)]
    u = np.einsum("nk,nkj->nj", prev, chain.start[types])
    w = prev @ chain.trans
    u[at_start] = chain.start_first[types[at_start]]
    w[at_start] = chain.first
    u *= p[starts]
    w *= p[starts]
    u, w = _scaled(u, w)
    # The tokens inside: each continues the chunk.
    lengths = ends - starts
    for step in range(1, int(lengths.max())):
        go = np.flatnonzero(lengths > step)
        here = starts[go] + step
        u_go = np.einsum("nk,nkj->nj", u[go], chain.cont[types[go]]) * p[here]
        w_go = (w[go] @ chain.trans) * p[here]
        u[go], w[go] = _scaled(u_go, w_go)
    # The token after: the chunk ends before it (always at a sequence's end).
    out = np.empty(n_ent, dtype=np.float64)
    last = ends - 1
    closing = ends >= seq_end[last]
    if closing.any():
        b = beta[last[closing]]
        out[closing] = _ratio((u[closing] * b).sum(axis=1), (w[closing] * b).sum(axis=1))
    inner = np.flatnonzero(~closing)
    if len(inner):
        nxt = ends[inner]
        v = p[nxt] * beta[nxt]
        num = np.einsum("nk,nkj,nj->n", u[inner], chain.end[types[inner]], v)
        den = np.einsum("nk,kj,nj->n", w[inner], chain.trans, v)
        out[inner] = _ratio(num, den)
    return np.clip(out, 0.0, 1.0)


def _scaled(u: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both path sums divided by the unconditioned one's total, which keeps
    them from underflowing and leaves their ratio as it is."""
    total = w.sum(axis=1, keepdims=True)
    total[total <= 0] = 1.0
    return u / total, w / total


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out
