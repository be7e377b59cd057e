"""A pipeline folder saved by spacy-longner 0.1.0 (tests/data/pipeline_0_1_0:
a tiny random BERT, window 24, label_map MISC -> OTHER) loads with this
version and gives the entities that 0.1.0 wrote for the same texts
(tests/data/pipeline_0_1_0_ents.json, made when the folder was saved)."""

import json
from pathlib import Path

import spacy

DATA = Path(__file__).parent / "data"


def test_pipeline_saved_by_0_1_0_loads_and_predicts_the_same():
    nlp = spacy.load(DATA / "pipeline_0_1_0")
    expected = json.loads((DATA / "pipeline_0_1_0_ents.json").read_text(encoding="utf8"))
    texts = [item["text"] for item in expected]
    got = [[[e.start_char, e.end_char, e.label_] for e in doc.ents] for doc in nlp.pipe(texts)]
    assert got == [item["ents"] for item in expected]
    assert sum(len(item["ents"]) for item in expected) > 50
    assert "OTHER" in nlp.get_pipe("long_ner").labels
