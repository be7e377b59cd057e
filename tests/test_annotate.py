import json

import pytest
import spacy

from spacy_longner.cli import main


@pytest.fixture(scope="module")
def pipeline_dir(checkpoints, tmp_path_factory):
    path = tmp_path_factory.mktemp("annotate") / "pipeline"
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}})
    nlp.initialize()
    nlp.to_disk(path)
    return path


TEXTS = [
    "Peter Blackburn went to Brussels .",
    "",
    "Tokyo , Paris and New York .",
    "   ",
    "Müller met José in São Paulo .",
]


def expected_entities(pipeline_dir, texts):
    nlp = spacy.load(pipeline_dir)
    out = []
    for doc in nlp.pipe(texts):
        scores = doc.spans["long_ner"].attrs["scores"]
        out.append([[e.text, e.label_, e.start_char, e.end_char, s] for e, s in zip(doc.ents, scores)])
    return out


def read_out(path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert [x[:4] for x in g] == [x[:4] for x in w]
        assert [x[4] for x in g] == pytest.approx([x[4] for x in w], abs=1e-6)


def ents(line):
    return [[e["text"], e["label"], e["start_char"], e["end_char"], e["score"]] for e in line["entities"]]


def test_malformed_lines_are_reported_with_line_numbers_and_run_resumes(pipeline_dir, tmp_path, capsys):
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(TEXTS)]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps({"id": "x", "body": "no text field"}))
    lines.insert(5, json.dumps({"text": 42}))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    # Exit status 3: records were skipped.
    assert main(["annotate", str(pipeline_dir), str(src), str(out), "--no-progress"]) == 3
    printed = " ".join(capsys.readouterr().out.split())  # wasabi wraps lines
    for n in (3, 5, 6):
        assert f"line {n} (id " in printed and f"[long_ner E039] Line {n} is not a JSON object" in printed
    records = read_out(out)
    assert [r["key"] for r in records] == list(range(1, len(lines) + 1))
    errors = {r["key"]: r["error"] for r in records if "error" in r}
    assert set(errors) == {3, 5, 6}
    good = [r for r in records if "error" not in r]
    assert [r["id"] for r in good] == list(range(len(TEXTS)))
    same([ents(r) for r in good], expected_entities(pipeline_dir, TEXTS))
    # Simulate a crash: keep 4 complete lines and half of the fifth; resume.
    raw = out.read_text(encoding="utf8").splitlines(keepends=True)
    out.write_text("".join(raw[:4]) + raw[4][: len(raw[4]) // 2], encoding="utf8")
    assert main(["annotate", str(pipeline_dir), str(src), str(out), "--no-progress"]) == 3
    assert "Resumed: 4 records" in capsys.readouterr().out
    resumed = read_out(out)
    # The redone records come from other batches: same entities, scores up
    # to float noise from padding (transformers 5 runs SDPA attention).
    assert [{k: v for k, v in r.items() if k != "entities"} for r in resumed] == [
        {k: v for k, v in r.items() if k != "entities"} for r in records
    ]
    for r, want in zip(resumed, records):
        if "entities" in want:
            assert [x[:4] for x in ents(r)] == [x[:4] for x in ents(want)]
            assert [x[4] for x in ents(r)] == pytest.approx([x[4] for x in ents(want)], abs=1e-5)


def test_text_lines_and_folders(pipeline_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    main(["annotate", str(pipeline_dir), str(src), str(out), "--no-progress", "--batch-size", "2"])
    same([ents(r) for r in read_out(out)], expected_entities(pipeline_dir, TEXTS))
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(TEXTS):
        (folder / f"doc{i}.txt").write_text(t, encoding="utf8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe broken")
    out2 = tmp_path / "out2.jsonl"
    assert main(["annotate", str(pipeline_dir), str(folder), str(out2), "--no-progress"]) == 3
    records = {r["key"]: r for r in read_out(out2)}
    assert records["bad.txt"]["error"].startswith("[long_ner E038] The record is not UTF-8")
    same([ents(records[f"doc{i}.txt"]) for i in range(len(TEXTS))], expected_entities(pipeline_dir, TEXTS))


class SpanKeyed:
    """A component with a `spans_key` in its cfg, as spaCy's spancat has."""

    def __init__(self):
        self.cfg = {"spans_key": "sc"}

    def __call__(self, doc):
        return doc


@spacy.Language.factory("test_span_keyed")
def make_span_keyed(nlp, name):
    return SpanKeyed()


def test_annotate_reads_long_ner_span_key_not_another_components(checkpoints, tmp_path):
    from spacy_longner.annotate import long_ner_spans_key

    nlp = spacy.blank("en")
    nlp.add_pipe("test_span_keyed")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}, "spans_key": "people"})
    assert long_ner_spans_key(nlp) == "people"
    doc = nlp("Peter Blackburn went to Brussels .")
    assert doc.ents and "sc" not in doc.spans
    nlp.to_disk(tmp_path / "pipeline")
    (tmp_path / "in.txt").write_text(doc.text + "\n", encoding="utf8")
    assert (
        main(
            [
                "annotate",
                str(tmp_path / "pipeline"),
                str(tmp_path / "in.txt"),
                str(tmp_path / "out.jsonl"),
                "--no-progress",
            ]
        )
        == 0
    )
    scores = [e["score"] for e in read_out(tmp_path / "out.jsonl")[0]["entities"]]
    assert scores and all(isinstance(s, float) for s in scores)
