"""Batch annotation: `spacy-longner annotate PIPELINE INPUT OUTPUT`.

INPUT is a JSONL file (one object a line with a "text" field, optionally "id"),
a plain-text file (one document a line) or a folder of .txt files (one document
a file). OUTPUT is JSONL with one line for every input record, in input order:
its entities (text, label, start_char, end_char, score) or, for a malformed
record, the error. Malformed records are reported with their line number and
skipped. Re-running with the same OUTPUT resumes after the records it already
holds.
"""

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple, Union

from wasabi import msg

from .scoring import entity_dicts


@dataclass
class Record:
    key: Union[int, str]  # line number (1-based) or file name
    text: Optional[str]
    id: Optional[object] = None
    error: Optional[str] = None


def read_records(path: Path, text_key: str = "text") -> Iterator[Record]:
    if path.is_dir():
        for file in sorted(path.glob("*.txt")):
            try:
                yield Record(file.name, file.read_text(encoding="utf8"), id=file.stem)
            except UnicodeDecodeError as e:
                yield Record(file.name, None, error=f"not UTF-8: {e}")
        return
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                yield Record(n, None, error=f"not UTF-8: {e}")
                continue
            if not jsonl:
                yield Record(n, line)
                continue
            if not line.strip():
                yield Record(n, None, error="empty line")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield Record(n, None, error=f"invalid JSON: {e}")
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get(text_key), str):
                yield Record(n, None, error=f"expected an object with a string field {text_key!r}")
                continue
            yield Record(n, obj[text_key], id=obj.get("id"))


def done_keys(output: Path) -> Tuple[Set[Union[int, str]], int]:
    """Keys already in the output, and the byte length of its complete lines
    (a line cut off by a crash is dropped)."""
    keys: Set[Union[int, str]] = set()
    if not output.exists():
        return keys, 0
    good = 0
    with open(output, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                keys.add(json.loads(raw)["key"])
            except (ValueError, KeyError, TypeError):
                break
            good += len(raw)
    return keys, good


def long_ner_spans_key(nlp) -> str:
    """The span group key of the pipeline's long_ner component (its
    confidences), found by the component's class, not by the first
    component whose settings have a `spans_key` (a spancat has one too)."""
    from .pipe import LongNER

    return next((p.cfg["spans_key"] for _, p in nlp.pipeline if isinstance(p, LongNER)), "long_ner")


def annotate(pipeline: str, input_path: Path, output: Path, *, batch_size: int = 64, n_process: int = 1,
             text_key: str = "text", progress: bool = True) -> Dict[str, int]:
    import spacy
    from tqdm import tqdm

    nlp = spacy.load(pipeline)
    spans_key = long_ner_spans_key(nlp)
    keys, good = done_keys(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        with open(output, "r+b") as f:
            f.truncate(good)
    counts = {"done": 0, "skipped_existing": 0, "malformed": 0}
    todo: List[Record] = []
    for rec in read_records(input_path, text_key):
        if rec.key in keys:
            counts["skipped_existing"] += 1
            continue
        todo.append(rec)
    if counts["skipped_existing"]:
        msg.info(f"Resuming: {counts['skipped_existing']} records already in {output}")
    texts = ((r.text, r) for r in todo if r.error is None)
    results = nlp.pipe(texts, as_tuples=True, batch_size=batch_size, n_process=n_process)
    with open(output, "a", encoding="utf8") as out, tqdm(total=len(todo), disable=not progress, unit="doc") as bar:
        for rec in todo:
            if rec.error is not None:
                msg.warn(f"{input_path}: line {rec.key}: {rec.error}; skipped" if isinstance(rec.key, int) else f"{rec.key}: {rec.error}; skipped")
                line = {"key": rec.key, "error": rec.error}
                counts["malformed"] += 1
            else:
                doc, _ = next(results)
                line = {"key": rec.key, "id": rec.id, "entities": entity_dicts(doc, spans_key)}
                counts["done"] += 1
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(1)
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="pipeline folder or installed package name")
    parser.add_argument("input", type=Path, help="JSONL (a \"text\" field a line), text lines, or a folder of .txt files")
    parser.add_argument("output", type=Path, help="JSONL of entities, one line per input record")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-process", type=int, default=1)
    parser.add_argument("--text-key", default="text", help="the JSONL field that holds the text")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    if not args.input.exists():
        msg.fail(f"Input not found: {args.input}", exits=1)
    counts = annotate(args.pipeline, args.input, args.output, batch_size=args.batch_size, n_process=args.n_process,
                      text_key=args.text_key, progress=not args.no_progress)
    msg.good(f"{counts['done']} annotated, {counts['malformed']} malformed (reported, skipped), "
             f"{counts['skipped_existing']} already done -> {args.output}")
    return 0
