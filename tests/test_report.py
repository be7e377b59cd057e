import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score, precision_score, recall_score

from spacy_longner.report import conlleval, format_conlleval, token_report

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
seqs = st.lists(st.lists(st.sampled_from(TAGS), min_size=1, max_size=12), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_conlleval_numbers_agree_with_seqeval(data):
    gold = data.draw(seqs)
    pred = [data.draw(st.lists(st.sampled_from(TAGS), min_size=len(g), max_size=len(g))) for g in gold]
    ours = conlleval(gold, pred)
    assert ours["precision"] == pytest.approx(100 * precision_score(gold, pred, zero_division=0), abs=1e-9)
    assert ours["recall"] == pytest.approx(100 * recall_score(gold, pred, zero_division=0), abs=1e-9)
    assert ours["f1"] == pytest.approx(100 * f1_score(gold, pred, zero_division=0), abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # seqeval averages over no entity types
        per_type = seqeval_report(gold, pred, output_dict=True, zero_division=0)
    for t, s in ours["per_type"].items():
        if s["gold"]:
            assert s["gold"] == per_type[t]["support"]
            assert s["recall"] == pytest.approx(100 * per_type[t]["recall"], abs=1e-9)
            assert s["precision"] == pytest.approx(100 * per_type[t]["precision"], abs=1e-9)


def test_conlleval_table_layout():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-MISC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-PER"], ["B-MISC", "O"]]
    text = format_conlleval(conlleval(gold, pred))
    lines = text.splitlines()
    assert lines[0] == "processed 6 tokens with 3 phrases; found: 3 phrases; correct: 2."
    assert re.fullmatch(r"accuracy:  83\.33%; precision:  66\.67%; recall:  66\.67%; FB1:  66\.67", lines[1])
    assert lines[2] == "              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0"
    assert lines[4] == "              PER: precision:  50.00%; recall: 100.00%; FB1:  66.67  2"


def test_token_report_has_tags_accuracy_and_averages():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"]]
    text, data = token_report(gold, pred)
    for needle in ("B-PER", "I-PER", "B-LOC", "accuracy", "macro avg", "weighted avg", "precision", "support"):
        assert needle in text
    assert data["accuracy"] == pytest.approx(0.75)
    assert data["I-PER"]["recall"] == 0.0
