"""Alignment between spaCy tokens and the checkpoint's wordpieces.

spaCy tokens go to the Hugging Face tokenizer as pre-split words
(`is_split_into_words=True`), the way HF's token-classification scripts feed
CoNLL data, so the tokenizer's own `word_ids()` is the alignment. Whitespace
tokens are not sent; tokens that come back with no wordpiece are invisible to
the model (their tag is O).
"""

import itertools
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

AGGREGATIONS = ("first", "average", "max")


@dataclass
class DocEncoding:
    """A doc's content wordpieces (no special tokens).

    input_ids (np.ndarray): (n_wp,) wordpiece ids.
    wp_token (np.ndarray): (n_wp,) spaCy token index of each wordpiece,
        non-decreasing.
    n_tokens (int): number of spaCy tokens in the doc.
    """

    input_ids: np.ndarray
    wp_token: np.ndarray
    n_tokens: int

    @property
    def n_wp(self) -> int:
        return len(self.input_ids)


def encode_words(tokenizer, docs_words: Sequence[Sequence[str]], docs_token_index: Sequence[np.ndarray], n_tokens: Sequence[int]) -> List[DocEncoding]:
    """Tokenize pre-split words of many docs in one tokenizer call.

    docs_words: per doc, the words sent to the tokenizer.
    docs_token_index: per doc, the spaCy token index of each word.
    n_tokens: per doc, its number of spaCy tokens.
    """
    out: List[DocEncoding] = [
        DocEncoding(np.zeros(0, np.int64), np.zeros(0, np.int64), n) for n in n_tokens
    ]
    todo = [i for i, words in enumerate(docs_words) if len(words)]
    if not todo:
        return out
    enc = tokenizer(
        [list(docs_words[i]) for i in todo],
        is_split_into_words=True,
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    # All rows at once: flat ids and word ids, mapped to spaCy tokens with
    # one take over the docs' concatenated token indices, then split.
    rows = enc["input_ids"]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    total = int(lengths.sum())
    flat_ids = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=total)
    word_rows = [enc.word_ids(row) for row in range(len(rows))]
    flat_words = np.fromiter(itertools.chain.from_iterable(word_rows), dtype=np.int64, count=total)
    n_words = np.array([len(docs_words[i]) for i in todo], dtype=np.int64)
    word_base = np.concatenate([[0], np.cumsum(n_words)[:-1]]).astype(np.int64)
    token_index = np.concatenate([np.asarray(docs_token_index[i], dtype=np.int64) for i in todo])
    flat_tokens = token_index[flat_words + np.repeat(word_base, lengths)]
    cuts = np.cumsum(lengths)[:-1]
    for i, ids, tokens in zip(todo, np.split(flat_ids, cuts), np.split(flat_tokens, cuts)):
        out[i] = DocEncoding(ids, tokens, n_tokens[i])
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def first_wordpiece(wp_token: np.ndarray) -> np.ndarray:
    """Index of the first wordpiece of every token that has one, and the
    tokens they belong to, as (wp_index, token_index)."""
    if len(wp_token) == 0:
        return np.zeros(0, np.int64)
    is_first = np.ones(len(wp_token), dtype=bool)
    is_first[1:] = wp_token[1:] != wp_token[:-1]
    return np.flatnonzero(is_first)


def aggregate(
    wp_probs: np.ndarray, wp_token: np.ndarray, n_tokens: int, aggregation: str = "first"
) -> "tuple[np.ndarray, np.ndarray]":
    """Per-token label probabilities from per-wordpiece ones.

    aggregation: "first" (the token's first wordpiece), "average" (mean of its
        wordpieces' probabilities) or "max" (the wordpiece with the highest
        probability, as in HF's `aggregation_strategy="max"`).
    RETURNS (tuple): (probs (n_tokens, n_labels), visible (n_tokens,) bool);
        rows of invisible tokens are zero.
    """
    n_labels = wp_probs.shape[1]
    probs = np.zeros((n_tokens, n_labels), dtype=wp_probs.dtype)
    visible = np.zeros(n_tokens, dtype=bool)
    if len(wp_token) == 0:
        return probs, visible
    firsts = first_wordpiece(wp_token)
    tokens = wp_token[firsts]
    visible[tokens] = True
    if aggregation == "first":
        probs[tokens] = wp_probs[firsts]
    elif aggregation == "average":
        counts = np.diff(np.concatenate([firsts, [len(wp_token)]]))
        probs[tokens] = np.add.reduceat(wp_probs, firsts, axis=0) / counts[:, None]
    elif aggregation == "max":
        best = wp_probs.max(axis=1)
        # Highest-scoring wordpiece per token (the first one on ties).
        order = np.lexsort((-best, wp_token))
        is_first = np.ones(len(order), dtype=bool)
        is_first[1:] = wp_token[order][1:] != wp_token[order][:-1]
        chosen = order[is_first]
        probs[wp_token[chosen]] = wp_probs[chosen]
    else:
        raise ValueError(f"unknown aggregation {aggregation!r}")
    return probs, visible


def token_probs(
    logits: np.ndarray, wp_token: np.ndarray, n_tokens: int, aggregation: str = "first"
) -> "tuple[np.ndarray, np.ndarray]":
    """Per-token label probabilities from per-wordpiece logits, for the
    wordpieces of one doc or of many concatenated (wp_token then counts
    tokens across the docs). As softmax then aggregate, but with "first"
    only each token's first wordpiece goes through the softmax."""
    if aggregation == "first":
        n_labels = logits.shape[1]
        probs = np.zeros((n_tokens, n_labels), dtype=np.float32)
        visible = np.zeros(n_tokens, dtype=bool)
        if len(wp_token):
            firsts = first_wordpiece(wp_token)
            tokens = wp_token[firsts]
            probs[tokens] = softmax(logits[firsts].astype(np.float32))
            visible[tokens] = True
        return probs, visible
    return aggregate(softmax(np.asarray(logits, dtype=np.float32)), wp_token, n_tokens, aggregation)
