"""The document-consistency post-processes of scripts/consistency_study.py,
on hand-built documents."""

import sys
from pathlib import Path

import spacy
from spacy.tokens import Doc, Span

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from consistency_study import majority, propagate  # noqa: E402


def doc_with(text, ents):
    doc = Doc(spacy.blank("en").vocab, words=text.split(" "))
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    return doc


def test_majority_gives_repeated_names_the_type_with_the_largest_summed_score():
    doc = doc_with(
        "Jordan beat Jordan and JORDAN lost to Smith", [(0, 1, "PER"), (2, 3, "LOC"), (4, 5, "LOC"), (7, 8, "PER")]
    )
    # LOC 0.5 + 0.4 = 0.9 beats PER 0.8; case-folded text groups "JORDAN" with them.
    assert majority(doc, [0.8, 0.5, 0.4, 0.9]) == [(0, 1, "LOC"), (2, 3, "LOC"), (4, 5, "LOC"), (7, 8, "PER")]
    # A tie keeps each mention's own type.
    assert majority(doc, [0.9, 0.5, 0.4, 0.9]) == [(0, 1, "PER"), (2, 3, "LOC"), (4, 5, "LOC"), (7, 8, "PER")]


def test_propagate_labels_free_capitalized_repeats_and_never_touches_an_entity():
    doc = doc_with("Real Madrid won . real Madrid fans saw Real Madrid Real Madrid play", [(0, 2, "ORG")])
    # 4-5 ("real Madrid") is lower case at its start: not the name's words;
    # 8-9 is free; 10-11 would touch the new 8-9 entity, so it stays out.
    assert propagate(doc, [(0, 2, "ORG")]) == [(0, 2, "ORG"), (8, 10, "ORG")]
    lower = doc_with("the euro fell ; the euro", [(1, 2, "MISC")])
    assert propagate(lower, [(1, 2, "MISC")]) == [(1, 2, "MISC")]  # not capitalized: left alone
