"""Scores and entity read-outs: the registered scorer
`spacy-longner.scorer.v1`, the score weights that follow the component's
output, and each entity's confidence as plain data."""

import dataclasses
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry


def score_long_ner(examples: Iterable[Example], **kwargs) -> Dict[str, object]:
    """ents_p/r/f and per type (spaCy's NER scoring), plus, where the
    component writes a span group, the same for `spans_<key>`."""
    examples = list(examples)
    scores: Dict[str, object] = dict(get_ner_prf(examples))
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
    weights = {f"{prefix}_f": 1.0, f"{prefix}_p": 0.0, f"{prefix}_r": 0.0}
    meta = nlp.get_pipe_meta(name)
    if meta.default_score_weights == weights:
        return
    nlp._pipe_meta[name] = dataclasses.replace(meta, default_score_weights=weights)
    others = {k for other, _ in nlp.pipeline if other != name for k in nlp.get_pipe_meta(other).default_score_weights}
    current = nlp._config.get("training", {}).get("score_weights", {})
    for key in list(current):
        if key.startswith("ents_") and key not in others:
            del current[key]
    nlp.config  # recombines the weights from the pipe metas


def entity_scores(doc: Doc, spans_key: str = "long_ner") -> List[Optional[float]]:
    """The confidence of each entity in `doc.ents`, in order (None for an
    entity long_ner did not write, e.g. one kept from an EntityRuler)."""
    group = doc.spans.get(spans_key)
    scores = {}
    if group is not None:
        scores = {(s.start, s.end, s.label_): sc for s, sc in zip(group, group.attrs.get("scores", []))}
    return [scores.get((e.start, e.end, e.label_)) for e in doc.ents]


def entity_dicts(doc: Doc, spans_key: str = "long_ner", offset_keys: Tuple[str, str] = ("start_char", "end_char")) -> List[Dict[str, object]]:
    """The entities of `doc.ents` as dicts: text, label, character offsets
    (end exclusive) under `offset_keys`, and confidence."""
    start, end = offset_keys
    return [
        {"text": e.text, "label": e.label_, start: e.start_char, end: e.end_char, "score": score}
        for e, score in zip(doc.ents, entity_scores(doc, spans_key))
    ]
