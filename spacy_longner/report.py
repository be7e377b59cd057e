"""Evaluation reports in the layout of the seed model cards: a token-level
classification report (per B-/I- tag) and a conlleval phrase-level table.

Tags are IOB2 strings, one list per sequence. Phrases are found with our
conlleval chunking (decode.chunk_starts_ends); tests check the numbers against
seqeval's conlleval-mode scores.
"""

from collections import Counter
from collections.abc import Sequence

import numpy as np
from spacy.tokens import Doc
from spacy.training import biluo_to_iob
from spacy.training.iob_utils import doc_to_biluo_tags

from .decode import chunk_starts_ends, parse_tagset

Phrase = tuple[int, int, int, str]  # (sequence, start, end, type)


def doc_iob2(doc: Doc) -> list[str]:
    """IOB2 tags of a doc's entities (O where there is none)."""
    return [t if t != "-" else "O" for t in biluo_to_iob(doc_to_biluo_tags(doc, missing="O"))]


def phrases(seqs: Sequence[Sequence[str]]) -> set[Phrase]:
    """conlleval phrases of IOB1/IOB2/BIOES tag sequences."""
    labels = sorted({t for seq in seqs for t in seq} | {"O"})
    tagset = parse_tagset(labels)
    index = {lab: i for i, lab in enumerate(tagset.labels)}
    out: set[Phrase] = set()
    for n, seq in enumerate(seqs):
        ids = np.fromiter((index[t] for t in seq), dtype=np.int64, count=len(seq))
        for s, e, t in chunk_starts_ends(tagset.prefix[ids], tagset.type_id[ids]):
            out.add((n, s, e, tagset.types[t]))
    return out


def _prf(correct: int, found: int, gold: int) -> tuple[float, float, float]:
    p = 100.0 * correct / found if found else 0.0
    r = 100.0 * correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def conlleval(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> dict[str, object]:
    """conlleval's counts and scores (percentages), overall and per type."""
    gold, pred = phrases(gold_seqs), phrases(pred_seqs)
    correct = gold & pred
    n_tokens = sum(len(s) for s in gold_seqs)
    same = sum(g == p for gs, ps in zip(gold_seqs, pred_seqs) for g, p in zip(gs, ps))
    p, r, f = _prf(len(correct), len(pred), len(gold))
    by_type: dict[str, dict[str, float]] = {}
    g_count, p_count, c_count = (Counter(x[3] for x in s) for s in (gold, pred, correct))
    for t in sorted(set(g_count) | set(p_count)):
        tp, tr, tf = _prf(c_count[t], p_count[t], g_count[t])
        by_type[t] = {
            "precision": tp,
            "recall": tr,
            "f1": tf,
            "found": p_count[t],
            "gold": g_count[t],
            "correct": c_count[t],
        }
    return {
        "tokens": n_tokens,
        "phrases": len(gold),
        "found": len(pred),
        "correct": len(correct),
        "accuracy": 100.0 * same / n_tokens if n_tokens else 0.0,
        "precision": p,
        "recall": r,
        "f1": f,
        "per_type": by_type,
    }


def format_conlleval(scores: dict[str, object]) -> str:
    """The table as conlleval prints it."""
    lines = [
        f"processed {scores['tokens']} tokens with {scores['phrases']} phrases; "
        f"found: {scores['found']} phrases; correct: {scores['correct']}.",
        f"accuracy: {scores['accuracy']:6.2f}%; precision: {scores['precision']:6.2f}%; "
        f"recall: {scores['recall']:6.2f}%; FB1: {scores['f1']:6.2f}",
    ]
    per_type: dict[str, dict[str, float]] = scores["per_type"]  # type: ignore[assignment]
    for t, s in per_type.items():
        lines.append(
            f"{t:>17}: precision: {s['precision']:6.2f}%; recall: {s['recall']:6.2f}%; "
            f"FB1: {s['f1']:6.2f}  {s['found']}"
        )
    return "\n".join(lines)


def token_report(
    gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> tuple[str, dict[str, object]]:
    """scikit-learn's classification report over tokens (per tag; accuracy;
    macro and weighted averages), as text and as a dict."""
    from sklearn.metrics import classification_report

    gold = [t for s in gold_seqs for t in s]
    pred = [t for s in pred_seqs for t in s]
    tags = sorted(set(gold) | set(pred), key=lambda t: (t == "O", t[2:], t))
    text = classification_report(gold, pred, labels=tags, digits=4, zero_division=0)
    data = classification_report(gold, pred, labels=tags, digits=4, zero_division=0, output_dict=True)
    return text, data


def token_confusion(
    gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> tuple[list[str], np.ndarray]:
    """Entity-type confusion over tokens (type of the tag, O for outside)."""

    def typ(t: str) -> str:
        return t[2:] if t != "O" else "O"

    gold = [typ(t) for s in gold_seqs for t in s]
    pred = [typ(t) for s in pred_seqs for t in s]
    types = sorted(set(gold) | set(pred), key=lambda t: (t == "O", t))
    index = {t: i for i, t in enumerate(types)}
    matrix = np.zeros((len(types), len(types)), dtype=np.int64)
    np.add.at(matrix, ([index[g] for g in gold], [index[p] for p in pred]), 1)
    return types, matrix
