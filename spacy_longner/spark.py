"""Run a saved or installed spaCy pipeline over a Spark DataFrame.

    from spacy_longner.spark import extract_entities
    out = extract_entities(df, "training/minilm/model-best", input_col="text")

Uses `mapInPandas` (Arrow batches); each Python worker loads the pipeline once
and keeps it for the batches that follow (Spark reuses Python workers by
default). Needs the `spark` extra: `pip install "spacy-longner[spark]"`, and
the pipeline folder (or package) reachable from every worker.
"""

from collections.abc import Iterator
from typing import Any, Optional

ENTITY_FIELDS = (("text", "string"), ("label", "string"), ("start", "int"), ("end", "int"), ("score", "double"))
TOKEN_FIELDS = (("token", "string"), ("start", "int"), ("end", "int"), ("tag", "string"))

_PIPELINES: dict[str, object] = {}


def _pipeline(name: str):
    """The pipeline, loaded once per Python process."""
    if name not in _PIPELINES:
        import spacy

        _PIPELINES[name] = spacy.load(name)
    return _PIPELINES[name]


def _struct(fields):
    from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

    kinds = {"string": StringType(), "int": IntegerType(), "double": DoubleType()}
    return StructType([StructField(n, kinds[k], True) for n, k in fields])


def doc_entities(doc, spans_key: str) -> list[dict]:
    """Entities of a doc as dicts (character offsets `start`/`end`, end
    exclusive), the fields of ENTITY_FIELDS."""
    from .scoring import entity_dicts

    return entity_dicts(doc, spans_key, offset_keys=("start", "end"))


def doc_token_tags(doc) -> list[dict]:
    """Per-token IOB tags (B-PER, I-PER, O), like Spark NLP's NerConverter input."""
    return [
        {
            "token": t.text,
            "start": t.idx,
            "end": t.idx + len(t.text),
            "tag": f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O",
        }
        for t in doc
    ]


def extract_entities(
    df,
    pipeline: str,
    input_col: str = "text",
    output_col: str = "entities",
    *,
    token_tags_col: Optional[str] = None,
    batch_size: int = 64,
    spans_key: str = "long_ner",
):
    """Add `output_col`: array<struct<text, label, start, end, score>> with the
    entities of the text in `input_col` (null text gives null).

    pipeline (str): a pipeline folder or installed package name.
    token_tags_col (Optional[str]): also add per-token IOB tags in this column,
        array<struct<token, start, end, tag>>.
    """
    from pyspark.sql.types import ArrayType, StructField, StructType

    if input_col not in df.columns:
        raise ValueError(f"[long_ner] input_col {input_col!r} is not a column of the DataFrame ({df.columns}).")
    fields = list(df.schema.fields) + [StructField(output_col, ArrayType(_struct(ENTITY_FIELDS)), True)]
    if token_tags_col:
        fields.append(StructField(token_tags_col, ArrayType(_struct(TOKEN_FIELDS)), True))
    schema = StructType(fields)

    def run(batches: Iterator[Any]) -> Iterator[Any]:  # pandas DataFrames
        nlp = _pipeline(pipeline)
        for pdf in batches:
            texts = pdf[input_col].tolist()
            present = [i for i, t in enumerate(texts) if isinstance(t, str)]
            ents: list[Optional[list]] = [None] * len(texts)
            tags: list[Optional[list]] = [None] * len(texts)
            for i, doc in zip(present, nlp.pipe((texts[i] for i in present), batch_size=batch_size)):
                ents[i] = doc_entities(doc, spans_key)
                if token_tags_col:
                    tags[i] = doc_token_tags(doc)
            pdf = pdf.copy()
            pdf[output_col] = ents
            if token_tags_col:
                pdf[token_tags_col] = tags
            yield pdf

    return df.mapInPandas(run, schema)


def main() -> None:
    """python -m spacy_longner.spark PIPELINE INPUT.spacy OUTPUT.parquet"""
    import argparse

    import spacy
    from pyspark.sql import SparkSession
    from spacy.tokens import DocBin

    parser = argparse.ArgumentParser(description="Entities of a .spacy corpus's texts with Spark, written as Parquet.")
    parser.add_argument("pipeline")
    parser.add_argument("corpus")
    parser.add_argument("output")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    texts = [d.text for d in DocBin().from_disk(args.corpus).get_docs(spacy.blank("en").vocab)]
    spark = (
        SparkSession.builder.master(args.master)
        .appName("spacy-longner")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, text string").repartition(
        args.partitions
    )
    out = extract_entities(df, args.pipeline, token_tags_col="ner_tags")
    out.write.mode("overwrite").parquet(args.output)
    n = spark.read.parquet(args.output).count()
    print(f"wrote {n} rows to {args.output}")
    spark.stop()


if __name__ == "__main__":
    main()
