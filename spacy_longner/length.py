"""How long a text a pipeline with long_ner takes.

spaCy refuses texts over `nlp.max_length` (1,000,000 characters) because its
transition-based parser and NER need about 1 GB of temporary memory per
100,000 characters. long_ner reads long docs in pieces of one buffer
(pieces.py), so its memory does not grow with the text, and a pipeline whose
heavy work is long_ner has nothing to protect with that limit.

The rule: a pipeline with long_ner and no spaCy parser or NER (any component
built on spaCy's transition-based `Parser`: `parser`, `ner`, `beam_parser`,
`beam_ner`) takes texts of any length; with one, it keeps spaCy's limit.
It is applied when long_ner is added (its factory sees the components added
before it) and again, over the whole pipeline, by the callback
`spacy-longner.length_rule.v1` in `[nlp.after_pipeline_creation]`, which
`add_pipe("long_ner")` writes into the pipeline's config and which the
project's configs name, so that a saved pipeline carries the rule.
"""

import sys
from typing import Callable, Optional

from spacy.language import Language
from spacy.util import registry

from .errors import Errors

LENGTH_RULE = "spacy-longner.length_rule.v1"
# What `nlp.max_length` becomes where nothing in the pipeline needs a limit,
# and spaCy's own default, restored where the rule had lifted it before a
# length-bound component was added.
NO_LIMIT = sys.maxsize
SPACY_MAX_LENGTH = 10**6


def length_bound_components(nlp: Language) -> list[str]:
    """The components whose memory grows with the text's length: spaCy's
    transition-based parser and NER (disabled ones too, as they can be
    enabled again)."""
    from spacy.pipeline.transition_parser import Parser

    return [name for name, proc in nlp.components if isinstance(proc, Parser)]


def apply_length_rule(nlp: Language, *, max_length: Optional[int] = None) -> Language:
    """Lift `nlp.max_length` where the pipeline has no length-bound
    component; otherwise keep it, or restore spaCy's default where this
    rule had lifted it; `max_length` set: that limit, whatever the pipeline
    holds."""
    if max_length is not None:
        nlp.max_length = max_length
    elif not length_bound_components(nlp):
        nlp.max_length = NO_LIMIT
    elif nlp.max_length == NO_LIMIT:
        nlp.max_length = SPACY_MAX_LENGTH
    return nlp


@registry.callbacks(LENGTH_RULE)
def make_length_rule(max_length: Optional[int] = None) -> Callable[[Language], Language]:
    """`[nlp.after_pipeline_creation]` callback: applies the rule to the
    loaded pipeline. max_length (Optional[int]): a fixed limit instead of
    the rule (e.g. to cap what a service accepts)."""
    if max_length is not None and (not isinstance(max_length, int) or max_length <= 0):
        raise ValueError(Errors.E035.format(value=max_length))

    def after_pipeline_creation(nlp: Language) -> Language:
        return apply_length_rule(nlp, max_length=max_length)

    return after_pipeline_creation


def install_length_rule(nlp: Language, *, from_config: bool) -> None:
    """What long_ner's factory does: apply the rule to the pipeline as it is
    now, and, where the pipeline is built by hand (`add_pipe`) and has no
    after-creation callback of its own, write the rule's callback into its
    config, so that the pipeline saved from it applies the rule on loading.
    (While spaCy builds a pipeline from a config, that config is the one
    that is kept.)"""
    apply_length_rule(nlp)
    if from_config:
        return
    settings = nlp.config["nlp"]
    if settings.get("after_pipeline_creation") is None:
        settings["after_pipeline_creation"] = {"@callbacks": LENGTH_RULE}


def too_long(nlp: Language, text: str) -> Optional[str]:
    """A coded reason why `nlp` refuses `text` for its length, or None."""
    if len(text) <= nlp.max_length:
        return None
    keepers = length_bound_components(nlp)
    why = (
        f"which spaCy keeps for {', '.join(repr(k) for k in keepers)} (about 1 GB of memory per 100,000 "
        "characters); split the text, remove those components, or raise nlp.max_length where the memory is there"
        if keepers
        else "set for this pipeline; raise nlp.max_length or `max_length` of the callback "
        f"{LENGTH_RULE} in [nlp.after_pipeline_creation]"
    )
    return Errors.E036.format(length=len(text), max_length=nlp.max_length, why=why)
