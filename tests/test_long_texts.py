"""Texts of any length: spaCy's max_length lifted where long_ner is what it
would protect, kept where a parser or NER needs it; long docs read in pieces
with the entities of a whole read; `annotate` losing no good record."""

import json
import subprocess
import sys

import numpy as np
import pytest
import spacy
from conftest import ents_of, make_nlp
from spacy.language import Language
from spacy.tokens import Doc

from spacy_longner.cli import main
from spacy_longner.length import LENGTH_RULE, NO_LIMIT, SPACY_MAX_LENGTH
from spacy_longner.pieces import piece_end, split_long_docs

SENTENCE = "Peter Blackburn went to Brussels and met Maria Müller of the European Commission ."


def book(n_chars: int) -> str:
    """A text of about `n_chars` characters: sentences, and a blank line
    every 20 of them."""
    para = " ".join([SENTENCE] * 20) + "\n\n"
    return (para * (n_chars // len(para) + 1))[:n_chars]


@pytest.fixture(scope="module")
def tiny(checkpoints):
    return checkpoints("bert")


def strip_rule(path):
    """The config as a pipeline saved before the rule existed has it."""
    cfg = path / "config.cfg"
    text = cfg.read_text(encoding="utf8")
    assert f'@callbacks = "{LENGTH_RULE}"' in text
    text = text.replace(f'[nlp.after_pipeline_creation]\n@callbacks = "{LENGTH_RULE}"\n', "")
    cfg.write_text(text.replace("[nlp]\n", "[nlp]\nafter_pipeline_creation = null\n", 1), encoding="utf8")


# ------------------------------------------------------------ the length rule


def test_add_pipe_lifts_max_length_and_writes_the_rule_into_the_config(tiny, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("long_ner", config={"model": {"name": str(tiny)}})
    assert nlp.max_length == NO_LIMIT
    assert nlp.config["nlp"]["after_pipeline_creation"] == {"@callbacks": LENGTH_RULE}
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    # A fresh process finds the callback through its entry point.
    code = f"import spacy; print(spacy.load({str(tmp_path / 'p')!r}).max_length)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) == NO_LIMIT


def test_a_pipeline_saved_without_the_rule_still_loads_and_takes_long_texts(tiny, tmp_path):
    nlp = make_nlp(tiny)
    nlp.initialize()
    nlp.to_disk(tmp_path / "old")
    strip_rule(tmp_path / "old")
    loaded = spacy.load(tmp_path / "old")
    assert loaded.config["nlp"]["after_pipeline_creation"] is None
    assert loaded.max_length == NO_LIMIT


@pytest.mark.parametrize("order", ["parser_first", "ner_after"])
def test_a_spacy_parser_or_ner_keeps_spacys_limit(tiny, tmp_path, order):
    nlp = spacy.blank("en")
    if order == "parser_first":
        nlp.add_pipe("parser")
        nlp.add_pipe("long_ner", config={"model": {"name": str(tiny)}})
        assert nlp.max_length == SPACY_MAX_LENGTH
    else:
        nlp.add_pipe("long_ner", config={"model": {"name": str(tiny)}, "output": "spans"})
        nlp.add_pipe("ner").add_label("ORG")
    nlp.initialize()
    nlp.to_disk(tmp_path / order)
    loaded = spacy.load(tmp_path / order)
    # Built from the config, long_ner comes before "ner": the callback,
    # which sees the whole pipeline, restores the limit.
    assert loaded.max_length == SPACY_MAX_LENGTH
    with pytest.raises(ValueError, match=r"\[E088\].*max_length"):
        loaded("x" * (SPACY_MAX_LENGTH + 1))


def test_the_rules_max_length_setting_and_its_bad_values(tiny, tmp_path):
    nlp = make_nlp(tiny)
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(
        tmp_path / "p", config={"nlp": {"after_pipeline_creation": {"@callbacks": LENGTH_RULE, "max_length": 5000}}}
    )
    assert loaded.max_length == 5000
    with pytest.raises(ValueError, match=r"\[long_ner E035\]"):
        spacy.load(
            tmp_path / "p", config={"nlp": {"after_pipeline_creation": {"@callbacks": LENGTH_RULE, "max_length": 0}}}
        )


# ------------------------------------------------------------ pieces


def test_piece_ends_fall_on_sentence_starts():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("a b . c d e ! f\n\ng h i j k l")
    #                  0 1 2 3 4 5 6 7 8  9 10...
    assert piece_end(doc, 0, 100, has_sents=False) == len(doc)
    assert piece_end(doc, 0, 6, has_sents=False) == 3  # after "."
    assert piece_end(doc, 0, 8, has_sents=False) == 7  # after "!"
    assert piece_end(doc, 3, 7, has_sents=False) == 9  # after the blank line
    assert piece_end(doc, 9, 3, has_sents=False) == 12  # no sentence start: cut at the size
    with_sents = Doc(nlp.vocab, words=list("abcdefgh"), sent_starts=[1, 0, 0, 1, 0, 0, 0, 1])
    assert piece_end(with_sents, 0, 5, has_sents=True) == 3
    assert piece_end(with_sents, 3, 4, has_sents=True) == 7
    assert piece_end(with_sents, 1, 3, has_sents=True) == 3


def test_split_long_docs_covers_every_token_once_in_order():
    nlp = spacy.blank("en")
    docs = [nlp.make_doc(book(3000)), nlp.make_doc("Short one ."), nlp.make_doc("")]
    pieces = list(split_long_docs(docs, 50))
    assert [p.whole for p in pieces].count(True) == 2
    long_pieces = [p for p in pieces if p.doc is docs[0]]
    assert len(long_pieces) > 5 and all(0 < len(p) <= 50 for p in long_pieces)
    assert [p.start for p in long_pieces] == list(np.cumsum([0] + [len(p) for p in long_pieces[:-1]]))
    assert [p.last for p in long_pieces] == [False] * (len(long_pieces) - 1) + [True]
    assert "".join(p.part.text_with_ws for p in long_pieces) == docs[0].text
    assert [p.doc for p in pieces[-2:]] == docs[1:]


@pytest.mark.parametrize("sentencizer", [False, True])
def test_a_doc_read_in_pieces_has_the_entities_of_a_whole_read(checkpoints, sentencizer, monkeypatch):
    # Context-free logits: a token's tag does not depend on its window, so
    # pieces and windows change nothing.
    monkeypatch.setattr("spacy_longner.pieces.MIN_PIECE_WORDS", 0)
    path = checkpoints("bert", context_free=True)
    whole = make_nlp(path, buffer_words=10**6, token_probs=True, window=32)
    pieced = make_nlp(path, buffer_words=60, token_probs=True, window=32)
    for nlp in (whole, pieced):
        if sentencizer:
            nlp.add_pipe("sentencizer", first=True)
    texts = ["Tokyo .", book(4000), "", "Paris and New York .", book(1500)]
    want = list(whole.pipe(texts))
    assert any(len(d) > 60 for d in want)
    for got in (list(pieced.pipe(texts, batch_size=3)), [pieced(t) for t in texts]):
        assert [ents_of(d) for d in got] == [ents_of(d) for d in want]
        for g, w in zip(got, want):
            assert g.spans["long_ner"].attrs["scores"] == pytest.approx(w.spans["long_ner"].attrs["scores"], abs=1e-5)
            assert g._.long_ner_probs.shape == (len(g), len(whole.get_pipe("long_ner").model_labels))
            np.testing.assert_allclose(g._.long_ner_probs, w._.long_ner_probs, atol=1e-5)


def test_a_failing_piece_sends_its_doc_to_the_error_handler_once(checkpoints, monkeypatch):
    from conftest import fail_on

    monkeypatch.setattr("spacy_longner.pieces.MIN_PIECE_WORDS", 0)
    nlp = make_nlp(checkpoints("bert", context_free=True), buffer_words=40)
    pipe = nlp.get_pipe("long_ner")
    fail_on(pipe, "Wrong")
    seen = []
    nlp.set_error_handler(lambda name, proc, docs, e: seen.extend(d.text[:10] for d in docs))
    bad = book(1000) + " Wrong ." + book(1000)
    texts = ["Tokyo .", bad, "Paris ."]
    out = list(nlp.pipe(texts, batch_size=2))
    assert [d.text for d in out] == ["Tokyo .", "Paris ."]
    assert seen == [bad[:10]]
    assert out[0].ents and out[1].ents


# ------------------------------------------------------------ annotate


@Language.factory("test_fails_on_marker")
def make_fails_on_marker(nlp, name):
    return FailsOnMarker()


class FailsOnMarker:
    """A component whose batch `pipe` fails whole when one doc holds
    "FAIL", as spaCy's trainable components do."""

    def __call__(self, doc):
        if "FAIL" in doc.text:
            raise RuntimeError("marker found")
        return doc

    def pipe(self, docs, batch_size=128):
        docs = list(docs)
        if any("FAIL" in d.text for d in docs):
            raise RuntimeError("marker found")
        yield from docs


def test_annotate_skips_what_it_cannot_annotate_and_writes_every_good_record_in_order(tiny, tmp_path, capsys):
    nlp = make_nlp(tiny)
    nlp.add_pipe("test_fails_on_marker")
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    good = ["Peter Blackburn went to Brussels .", "Tokyo and Paris .", "Maria Müller met José .", "New York ."]
    folder = tmp_path / "docs"
    folder.mkdir()
    files = {"a.txt": good[0], "b.txt": "It will FAIL here .", "c.txt": good[1], "d.txt": good[2], "f.txt": good[3]}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf8")
    (folder / "e.txt").write_bytes(b"\xff\xfe not utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(tmp_path / "p"), str(folder), str(out), "--no-progress", "--batch-size", "8"]) == 3
    lines = [json.loads(x) for x in out.read_text(encoding="utf8").splitlines()]
    assert [r["key"] for r in lines] == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"]
    assert lines[1]["error"].startswith("[long_ner E037] The pipeline failed on this record") and lines[1]["id"] == "b"
    assert lines[4]["error"].startswith("[long_ner E038]") and lines[4]["id"] == "e"
    reference = spacy.load(tmp_path / "p")
    for r, text in zip([lines[0], lines[2], lines[3], lines[5]], good):
        assert [(e["start_char"], e["end_char"], e["label"]) for e in r["entities"]] == [
            (e.start_char, e.end_char, e.label_) for e in reference(text).ents
        ]
    printed = " ".join(capsys.readouterr().out.split())  # wasabi wraps lines
    assert (
        "b.txt (id 'b'): [long_ner E037]" in printed
        and "marker found" in printed
        and "4 annotated, 2 skipped" in printed
    )
    # Too long for a limit that the pipeline's config sets: E036, the rest goes on.
    cfg = tmp_path / "p" / "config.cfg"
    cfg.write_text(
        cfg.read_text(encoding="utf8").replace(
            f'@callbacks = "{LENGTH_RULE}"', f'@callbacks = "{LENGTH_RULE}"\nmax_length = 30'
        ),
        encoding="utf8",
    )
    assert spacy.load(tmp_path / "p").max_length == 30
    out2 = tmp_path / "out2.jsonl"
    assert main(["annotate", str(tmp_path / "p"), str(folder), str(out2), "--no-progress"]) == 3
    lines = {r["key"]: r for r in map(json.loads, out2.read_text(encoding="utf8").splitlines())}
    assert lines["a.txt"]["error"].startswith(
        "[long_ner E036] The text has 34 characters, over this pipeline's nlp.max_length of 30"
    )
    assert "entities" in lines["c.txt"] and "entities" in lines["f.txt"]


def test_annotate_names_the_components_that_keep_spacys_limit(tiny, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("ORG")
    nlp.add_pipe("long_ner", config={"model": {"name": str(tiny)}, "output": "spans"})
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": "big", "text": "x " * (SPACY_MAX_LENGTH // 2 + 1)})
        + "\n"
        + json.dumps({"id": "small", "text": "Tokyo ."})
        + "\n",
        encoding="utf8",
    )
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(tmp_path / "p"), str(src), str(out), "--no-progress"]) == 3
    big, small = [json.loads(x) for x in out.read_text(encoding="utf8").splitlines()]
    assert (
        big["id"] == "big" and "E036" in big["error"] and "'ner'" in big["error"] and "nlp.max_length" in big["error"]
    )
    assert small["id"] == "small" and "entities" in small


def test_a_text_over_a_million_characters_gives_entities_everywhere(tiny, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("long_ner", config={"model": {"name": str(tiny)}})
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    text = book(1_188_000)
    loaded = spacy.load(tmp_path / "p")
    doc = loaded(text)
    assert doc.text == text and len(doc.ents) > 1000
    # The last entities are found too: nothing was cut off.
    assert doc.ents[-1].end_char > len(text) - 200
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(text, encoding="utf8")
    (folder / "b.txt").write_text("Peter Blackburn went to Brussels .", encoding="utf8")
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(tmp_path / "p"), str(folder), str(out), "--no-progress"]) == 0
    a, b = [json.loads(x) for x in out.read_text(encoding="utf8").splitlines()]
    assert [(e["start_char"], e["label"]) for e in a["entities"]] == [(e.start_char, e.label_) for e in doc.ents]
    assert b["key"] == "b.txt" and "entities" in b


def test_entity_dicts_read_in_stretches_are_doc_ents_with_their_scores(monkeypatch):
    from spacy.tokens import Span, SpanGroup

    from spacy_longner.scoring import entity_dicts

    nlp = spacy.blank("en")
    doc = nlp.make_doc("New York and Los Angeles met San Francisco Bay Area officials in Paris .")
    ents = [Span(doc, 0, 2, "LOC"), Span(doc, 3, 5, "LOC"), Span(doc, 6, 10, "ORG"), Span(doc, 12, 13, "LOC")]
    doc.ents = ents
    # The group's scores; the last entity is not in it (another component's).
    doc.spans["long_ner"] = SpanGroup(doc, name="long_ner", attrs={"scores": [0.9, 0.8, 0.7]}, spans=ents[:3])
    want = [
        {"text": e.text, "label": e.label_, "start_char": e.start_char, "end_char": e.end_char, "score": s}
        for e, s in zip(ents, [0.9, 0.8, 0.7, None])
    ]
    for chunk in (3, 4, 7, 1000):  # stretches that end inside entities and between them
        monkeypatch.setattr("spacy_longner.scoring.TOKEN_CHUNK", chunk)
        assert entity_dicts(doc) == want
