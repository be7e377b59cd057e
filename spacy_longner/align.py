"""Alignment between spaCy tokens and the checkpoint's wordpieces.

spaCy tokens go to the Hugging Face tokenizer as pre-split words
(`is_split_into_words=True`), the way HF's token-classification scripts feed
CoNLL data, so the tokenizer's own `word_ids()` is the alignment (through a
cache of each distinct word's wordpieces, `WordpieceCache`). Whitespace
tokens are not sent; tokens that come back with no wordpiece are invisible to
the model (their tag is O).
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .arrays import offsets, ragged_index, row_max, softmax

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


class WordpieceCache:
    """Each distinct word's wordpieces, keyed by its spaCy orth id (the hash
    of its text), so that the checkpoint's tokenizer sees every distinct word
    once instead of every occurrence.

    Exact for Hugging Face fast tokenizers: with pre-split words
    (`is_split_into_words=True`) the tokenizer normalizes, pre-tokenizes and
    tokenizes each word on its own, so a word's wordpieces never depend on
    its neighbours (tests/test_wordpiece_cache.py checks this against whole
    sequences for the WordPiece, byte-level BPE and SentencePiece families).
    New words go to the tokenizer in one call per buffer; the cache is
    emptied when it would pass `max_words` distinct words.
    """

    def __init__(self, tokenizer, max_words: int = 200_000):
        self.tokenizer = tokenizer
        self.max_words = max_words
        self.clear()

    def clear(self) -> None:
        self.row_of: dict[int, int] = {}
        self.starts = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.ids = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.row_of)

    def rows(self, orths: np.ndarray, word_of: Callable[[int], "tuple[str, bool]"]) -> np.ndarray:
        """The cache row of each orth id, tokenizing the words not yet cached.
        `word_of` gives (text, skip) for an orth id; a skipped word (spaCy's
        whitespace tokens) gets no wordpieces and never reaches the
        tokenizer."""
        if len(orths) == 0:
            return np.zeros(0, dtype=np.int64)
        uniq, inverse = np.unique(orths, return_inverse=True)
        keys = uniq.tolist()
        get = self.row_of.get
        rows = np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            if len(self.row_of) + len(missing) > self.max_words:
                self.clear()
                missing = np.arange(len(keys))
            new_keys = [keys[i] for i in missing]
            rows[missing] = self._add(new_keys, [word_of(k) for k in new_keys])
        return rows[inverse.reshape(-1)]

    def _add(self, keys: list[int], words: list["tuple[str, bool]"]) -> np.ndarray:
        """Tokenize new words in one call, as one sequence of pre-split words;
        their rows."""
        sent = [i for i, (_, skip) in enumerate(words) if not skip]
        lengths = np.zeros(len(words), dtype=np.int64)
        ids = np.zeros(0, dtype=np.int64)
        if sent:
            enc = self.tokenizer(
                [[words[i][0] for i in sent]],
                is_split_into_words=True,
                add_special_tokens=False,
                return_attention_mask=False,
                return_token_type_ids=False,
                verbose=False,
            )
            ids = np.asarray(enc["input_ids"][0], dtype=np.int64)
            word_ids = np.fromiter((-1 if w is None else w for w in enc.word_ids(0)), dtype=np.int64, count=len(ids))
            keep = word_ids >= 0
            ids, word_ids = ids[keep], word_ids[keep]
            # Pre-split words come back in order, each word's pieces together.
            lengths[sent] = np.bincount(word_ids, minlength=len(sent))
        starts = len(self.ids) + offsets(lengths)[:-1]
        first_row = len(self.row_of)
        self.ids = np.concatenate([self.ids, ids])
        self.starts = np.concatenate([self.starts, starts])
        self.lengths = np.concatenate([self.lengths, lengths])
        self.row_of.update(zip(keys, range(first_row, first_row + len(keys))))
        return np.arange(first_row, first_row + len(keys), dtype=np.int64)

    def encode(
        self, orths: np.ndarray, word_of: Callable[[int], "tuple[str, bool]"]
    ) -> "tuple[np.ndarray, np.ndarray]":
        """(wordpiece ids, number of wordpieces of each word) for a sequence of
        words given by orth id."""
        rows = self.rows(orths, word_of)
        lengths = self.lengths[rows]
        # Ragged gather: each word's run of ids from the flat cache.
        index, _ = ragged_index(self.starts[rows], lengths)
        return self.ids[index], lengths


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
        best = row_max(wp_probs)
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
        firsts = first_wordpiece(wp_token)
        tokens = wp_token[firsts]
        first_probs = softmax(logits[firsts].astype(np.float32, copy=False))
        if len(tokens) == n_tokens:  # every token seen (tokens is then 0..n-1)
            return first_probs, np.ones(n_tokens, dtype=bool)
        probs = np.zeros((n_tokens, logits.shape[1]), dtype=np.float32)
        visible = np.zeros(n_tokens, dtype=bool)
        probs[tokens] = first_probs
        visible[tokens] = True
        return probs, visible
    return aggregate(softmax(np.asarray(logits, dtype=np.float32)), wp_token, n_tokens, aggregation)
