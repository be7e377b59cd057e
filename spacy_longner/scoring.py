"""Scores and entity read-outs: the registered scorer
`spacy-longner.scorer.v1`, the score weights that follow the component's
output, and each entity's confidence as plain data."""

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Callable, Optional

import numpy as np
from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry


def score_long_ner(examples: Iterable[Example], **kwargs) -> dict[str, object]:
    """ents_p/r/f and per type (spaCy's NER scoring), plus, where the
    component writes a span group, the same for `spans_<key>`."""
    examples = list(examples)
    scores: dict[str, object] = dict(get_ner_prf(examples))
    spans_key = kwargs.get("spans_key")
    if spans_key:
        scores.update(
            Scorer.score_spans(
                examples,
                attr=f"spans_{spans_key}",
                getter=lambda doc, attr: doc.spans.get(spans_key, []),
                allow_overlap=False,
            )
        )
    return scores


@registry.scorers("spacy-longner.scorer.v1")
def make_long_ner_scorer() -> Callable:
    return score_long_ner


def follow_output_in_score_weights(nlp: Language, name: str, output: str, spans_key: str) -> None:
    """With output = "spans", doc.ents stays empty, so the factory's default
    weights (ents_f) would pick model-best on a score that is always 0: this
    component's default weights become spans_<key>_f/p/r instead. Weights
    set by hand in [training.score_weights] for other keys are kept.

    spaCy has no public API to change a component's default score weights
    after `add_pipe`: this replaces the component's pipe meta and recombines
    the weights through `nlp.config`, as `add_pipe` does."""
    if output != "spans":
        return
    prefix = f"spans_{spans_key}"
    weights: dict[str, Optional[float]] = {f"{prefix}_f": 1.0, f"{prefix}_p": 0.0, f"{prefix}_r": 0.0}
    meta = nlp.get_pipe_meta(name)
    if meta.default_score_weights == weights:
        return
    nlp._pipe_meta[name] = dataclasses.replace(meta, default_score_weights=weights)
    others = {
        k for other, _ in nlp.pipeline if other != name for k in nlp.get_pipe_meta(other).default_score_weights or {}
    }
    current = nlp._config.get("training", {}).get("score_weights", {})
    for key in list(current):
        if key.startswith("ents_") and key not in others:
            del current[key]
    _ = nlp.config  # recombines the weights from the pipe metas


def entity_scores(doc: Doc, spans_key: str = "long_ner") -> list[Optional[float]]:
    """The confidence of each entity in `doc.ents`, in order (None for an
    entity long_ner did not write, e.g. one kept from an EntityRuler)."""
    group = doc.spans.get(spans_key)
    scores = {}
    if group is not None:
        scores = {(s.start, s.end, s.label_): sc for s, sc in zip(group, group.attrs.get("scores", []))}
    return [scores.get((e.start, e.end, e.label_)) for e in doc.ents]


def entity_dicts(
    doc: Doc, spans_key: str = "long_ner", offset_keys: tuple[str, str] = ("start_char", "end_char")
) -> list[dict[str, object]]:
    """The entities of `doc.ents` as dicts: text, label, character offsets
    (end exclusive) under `offset_keys`, and confidence."""
    return list(iter_entity_dicts(doc, spans_key, offset_keys))


def iter_entity_dicts(
    doc: Doc, spans_key: str = "long_ner", offset_keys: tuple[str, str] = ("start_char", "end_char")
) -> Iterator[dict[str, object]]:
    """`entity_dicts`, one entity at a time, read from the doc's arrays a
    stretch of tokens at a time: a book's entities are never all Span
    objects or dicts at once (doc.ents makes a Span of each), and no array
    is as long as the book."""
    scores = group_scores(doc, spans_key)
    names: dict[int, str] = {}
    start_key, end_key = offset_keys
    for starts, ends, labels in entity_bounds(doc):
        for s, e, label, score in zip(starts.tolist(), ends.tolist(), labels.tolist(), scores(starts, ends, labels)):
            if label not in names:
                names[label] = doc.vocab.strings[label]
            span = doc[s:e]
            yield {
                "text": span.text,
                "label": names[label],
                start_key: span.start_char,
                end_key: span.end_char,
                "score": score,
            }


# Tokens read at a time by entity_bounds.
TOKEN_CHUNK = 65536


def entity_bounds(doc: Doc) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(starts, ends, label hashes) of doc.ents, in order, a stretch of
    TOKEN_CHUNK tokens at a time. As doc.ents reads them: an entity starts
    at a B with a type and runs over the I tokens after it."""
    from spacy.attrs import ENT_IOB, ENT_TYPE

    n = len(doc)
    for pos in range(0, n, TOKEN_CHUNK):
        stop = min(n, pos + TOKEN_CHUNK)
        arr = doc[pos:stop].to_array([ENT_IOB, ENT_TYPE])  # type: ignore[attr-defined]  # not in spaCy's stubs
        iob, types = arr[:, 0], arr[:, 1]
        starts = np.flatnonzero((iob == 3) & (types != 0))
        not_inside = np.append(np.flatnonzero(iob != 1), stop - pos)
        ends = not_inside[np.searchsorted(not_inside, starts, side="right")]
        if len(ends) and ends[-1] == stop - pos and stop < n:
            # The last entity may go on past the stretch.
            end = stop
            while end < n and doc[end].ent_iob == 1:
                end += 1
            ends[-1] = end - pos
        yield starts + pos, ends + pos, types[starts]


def group_scores(doc: Doc, spans_key: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], list[Optional[float]]]:
    """A function from entities (token starts, ends, label hashes) to their
    confidences in the span group `spans_key`; None for an entity the group
    does not hold (one kept from an EntityRuler, say)."""
    group = doc.spans.get(spans_key)
    group_scores = group.attrs.get("scores", []) if group is not None else []
    if group is None or not len(group) or len(group_scores) != len(group):
        return lambda starts, ends, labels: [None] * len(starts)
    g = np.fromiter((v for sp in group for v in (sp.start, sp.end, sp.label)), dtype=np.uint64, count=3 * len(group))
    g = g.reshape(-1, 3)
    order = np.argsort(g[:, 0], kind="stable")
    g_start = g[order, 0].astype(np.int64)

    def scores(starts: np.ndarray, ends: np.ndarray, labels: np.ndarray) -> list[Optional[float]]:
        found: list[Optional[float]] = [None] * len(starts)
        at = np.clip(np.searchsorted(g_start, starts), 0, len(g_start) - 1)
        hit = order[at]
        match = (g_start[at] == starts) & (g[hit, 1].astype(np.int64) == ends) & (g[hit, 2] == labels)
        for i in np.flatnonzero(match).tolist():
            found[i] = group_scores[int(hit[i])]
        return found

    return scores
