"""Batch annotation: `spacy-longner annotate PIPELINE INPUT OUTPUT`.

INPUT is a JSONL file (one object a line with a "text" field, optionally "id"),
a plain-text file (one document a line) or a folder of .txt files (one document
a file). OUTPUT is JSONL with one line for every input record, in input order:
its entities (text, label, start_char, end_char, score) or, for a record that
cannot be annotated (malformed, not UTF-8, longer than the pipeline takes, a
component failing on it), its coded error. Such records are reported with
their line number or file name and id, and skipped; the run goes on, and
exits with status 3 to say that records were skipped (0: all annotated).
Re-running with the same OUTPUT resumes after the records it already holds.
"""

import argparse
import contextlib
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from wasabi import msg

from .errors import Errors, reason
from .length import too_long
from .pipeline_folder import load_pipeline
from .scoring import iter_entity_dicts


@dataclass
class Record:
    key: Union[int, str]  # line number (1-based) or file name
    text: Optional[str]
    id: Optional[object] = None
    error: Optional[str] = None
    sent: bool = False  # given to the pipeline


def read_records(path: Path, text_key: str = "text") -> Iterator[Record]:
    if path.is_dir():
        for file in sorted(path.glob("*.txt")):
            try:
                yield Record(file.name, file.read_text(encoding="utf8"), id=file.stem)
            except UnicodeDecodeError as e:
                yield Record(file.name, None, id=file.stem, error=Errors.E038.format(reason=reason(e)))
        return
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                yield Record(n, None, error=Errors.E038.format(reason=reason(e)))
                continue
            if not jsonl:
                yield Record(n, line)
                continue
            if not line.strip():
                yield Record(n, None, error=Errors.E039.format(line=n, text_key=text_key, problem="an empty line"))
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield Record(
                    n, None, error=Errors.E039.format(line=n, text_key=text_key, problem=f"invalid JSON: {reason(e)}")
                )
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get(text_key), str):
                problem = (
                    "another JSON value"
                    if not isinstance(obj, dict)
                    else "no such field"
                    if text_key not in obj
                    else "its value is not a string"
                )
                yield Record(
                    n,
                    None,
                    id=obj.get("id") if isinstance(obj, dict) else None,
                    error=Errors.E039.format(line=n, text_key=text_key, problem=problem),
                )
                continue
            yield Record(n, obj[text_key], id=obj.get("id"))


def done_keys(output: Path) -> tuple[set[Union[int, str]], int]:
    """Keys already in the output, and the byte length of its complete lines
    (a line cut off by a crash is dropped)."""
    keys: set[Union[int, str]] = set()
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


def write_entities(out, head: dict[str, object], entities: Iterator[dict[str, object]]) -> None:
    """One output line, `{**head, "entities": [...]}` as json.dumps writes
    it, the entities written one at a time (a book has hundreds of
    thousands)."""
    out.write(json.dumps({**head, "entities": []}, ensure_ascii=False)[:-2])
    for i, entity in enumerate(entities):
        out.write((", " if i else "") + json.dumps(entity, ensure_ascii=False))
    out.write("]}\n")


class SkipRecord:
    """The error handler annotate sets on the pipeline: a component failing
    on a doc marks its record (the doc's context) and drops the doc, so the
    stream goes on."""

    def __call__(self, proc_name: str, proc, docs, e: Exception) -> None:
        for doc in docs:
            record = getattr(doc, "_context", None)
            if isinstance(record, Record):
                record.error = Errors.E037.format(component=repr(proc_name), reason=reason(e))


def set_error_handler(nlp, handler: Callable) -> None:
    """nlp.set_error_handler, where each component takes it: spaCy's
    parser and NER cannot (their error handler attribute is missing), and
    keep raising."""
    nlp.default_error_handler = handler
    for _, proc in nlp.pipeline:
        with contextlib.suppress(AttributeError):
            proc.set_error_handler(handler)


def annotate(
    pipeline: str,
    input_path: Path,
    output: Path,
    *,
    batch_size: int = 64,
    n_process: int = 1,
    text_key: str = "text",
    progress: bool = True,
) -> dict[str, int]:
    """Annotate every record of `input_path` into `output` (JSONL, input
    order), resuming after the records it already holds. A record that
    cannot be annotated (malformed, not UTF-8, too long for the pipeline, a
    component failing on it) is reported, written as an error line and
    skipped; the others are annotated. RETURNS the counts: done,
    skipped_existing, skipped (records with an error line this run)."""
    from tqdm import tqdm

    nlp = load_pipeline(pipeline)
    set_error_handler(nlp, SkipRecord())
    spans_key = long_ner_spans_key(nlp)
    keys, good = done_keys(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        with open(output, "r+b") as f:
            f.truncate(good)
    counts = {"done": 0, "skipped_existing": 0, "skipped": 0, "read": 0}
    # Records flow lazily (a folder of books is never all in memory): each
    # goes into `pending` as the pipeline reads it, and leaves it in order.
    pending: deque[Record] = deque()

    records = iter(read_records(input_path, text_key))

    def texts() -> Iterator[tuple[str, Record]]:
        for rec in records:
            if rec.key in keys:
                counts["skipped_existing"] += 1
                continue
            if rec.error is None:
                rec.error = too_long(nlp, rec.text or "")
            pending.append(rec)
            counts["read"] += 1
            if rec.error is None:
                rec.sent = True
                yield rec.text or "", rec

    def alone(rec: Record):
        """A record that the pipeline gave no doc for, run again on its own:
        one doc failing can take its whole batch with it. RETURNS its doc,
        or None with `rec.error` saying why."""
        rec.error = None
        try:
            for doc, _ in nlp.pipe([(rec.text or "", rec)], as_tuples=True):
                return doc
        except Exception as e:  # a component that raises past the error handler
            rec.error = Errors.E037.format(component="unknown", reason=reason(e))
            return None
        if rec.error is None:
            rec.error = Errors.E037.format(component="unknown", reason="the pipeline gave no doc for it")
        return None

    with open(output, "a", encoding="utf8") as out, tqdm(disable=not progress, unit="doc") as bar:

        def write(rec: Record, doc) -> None:
            if doc is not None:
                write_entities(out, {"key": rec.key, "id": rec.id}, iter_entity_dicts(doc, spans_key))
                counts["done"] += 1
            else:
                where = f"{input_path}: line {rec.key}" if isinstance(rec.key, int) else str(rec.key)
                msg.warn(f"{where} (id {rec.id!r}): {rec.error} Skipped.")
                out.write(json.dumps({"key": rec.key, "id": rec.id, "error": rec.error}, ensure_ascii=False) + "\n")
                counts["skipped"] += 1
            out.flush()
            bar.update(1)

        def write_pending(until=None) -> None:
            """Write the records before `until` (all, where None): each
            malformed, too long, or given no doc by the pipeline."""
            while pending and (until is None or pending[0].key != until.key):
                rec = pending.popleft()
                write(rec, alone(rec) if rec.sent else None)

        finished = False
        while not finished:
            read_before = counts["read"]
            results = nlp.pipe(texts(), as_tuples=True, batch_size=batch_size, n_process=n_process)
            while True:
                try:
                    doc, done = next(results)
                except StopIteration:
                    finished = True
                    break
                except Exception:
                    # A component raised through nlp.pipe (one whose own
                    # `pipe` does not take the error handler): the records
                    # it had read are each run alone below, and a new stream
                    # takes the rest.
                    if counts["read"] == read_before:
                        raise
                    break
                write_pending(until=done)
                write(pending.popleft(), doc)
            write_pending()
    if counts["skipped_existing"]:
        msg.info(f"Resumed: {counts['skipped_existing']} records were already in {output}")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="pipeline folder or installed package name")
    parser.add_argument("input", type=Path, help='JSONL (a "text" field a line), text lines, or a folder of .txt files')
    parser.add_argument("output", type=Path, help="JSONL of entities, one line per input record")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-process", type=int, default=1)
    parser.add_argument("--text-key", default="text", help="the JSONL field that holds the text")
    parser.add_argument("--no-progress", action="store_true")


# Exit status of a run that wrote every record it could and skipped others.
EXIT_SKIPPED = 3


def run(args: argparse.Namespace) -> int:
    if not args.input.exists():
        raise ValueError(Errors.E041.format(path=args.input))
    counts = annotate(
        args.pipeline,
        args.input,
        args.output,
        batch_size=args.batch_size,
        n_process=args.n_process,
        text_key=args.text_key,
        progress=not args.no_progress,
    )
    summary = (
        f"{counts['done']} annotated, {counts['skipped']} skipped (reported above, error lines in the output), "
        f"{counts['skipped_existing']} already done -> {args.output}"
    )
    if counts["skipped"]:
        msg.warn(summary)
        return EXIT_SKIPPED
    msg.good(summary)
    return 0
