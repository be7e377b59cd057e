import pytest
import spacy

from spacy_longner.conll import read_conll, to_docs

pyspark = pytest.importorskip("pyspark")
# py4j leaves loopback sockets to the JVM open until the session ends.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("spacy-longner-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_extract_entities_equals_nlp_pipe_on_conll_test_documents(spark, checkpoints, tmp_path, synthetic_conll_dir):
    from spacy_longner.spark import doc_entities, doc_token_tags, extract_entities

    path = synthetic_conll_dir / "test.txt"
    vocab = spacy.blank("en").vocab
    texts = []
    for d in read_conll(path):
        texts.extend(doc.text for doc in to_docs(vocab, d))
        if len(texts) >= 24:
            break
    texts += ["", "   ", None]
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}})
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")
    local = spacy.load(tmp_path / "pipeline")
    expected = [
        doc_entities(doc, "long_ner") if t is not None else None
        for t, doc in zip(texts, local.pipe(t or "" for t in texts))
    ]
    expected_tags = [
        doc_token_tags(doc) if t is not None else None for t, doc in zip(texts, local.pipe(t or "" for t in texts))
    ]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, text string").repartition(3)
    out = extract_entities(df, str(tmp_path / "pipeline"), token_tags_col="ner_tags")
    assert (
        out.schema["entities"].dataType.simpleString()
        == "array<struct<text:string,label:string,start:int,end:int,score:double>>"
    )
    rows = {r["id"]: r for r in out.collect()}
    assert len(rows) == len(texts)
    assert sum(len(e or []) for e in expected) > 100
    for i, want in enumerate(expected):
        got = rows[i]["entities"]
        if want is None:
            assert got is None
            continue
        assert [(e["text"], e["label"], e["start"], e["end"]) for e in got] == [
            (e["text"], e["label"], e["start"], e["end"]) for e in want
        ]
        assert [e["score"] for e in got] == pytest.approx([e["score"] for e in want], abs=1e-5)
        assert [(t["token"], t["tag"]) for t in rows[i]["ner_tags"]] == [
            (t["token"], t["tag"]) for t in expected_tags[i]
        ]
    out.write.parquet(str(tmp_path / "out.parquet"))
    assert spark.read.parquet(str(tmp_path / "out.parquet")).count() == len(texts)


def test_unknown_input_column_is_a_clear_error(spark):
    from spacy_longner.spark import extract_entities

    df = spark.createDataFrame([(1, "x")], "id long, body string")
    with pytest.raises(ValueError, match="input_col 'text'"):
        extract_entities(df, "unused")
