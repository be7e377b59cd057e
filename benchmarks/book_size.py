"""One book-length text through long_ner: peak memory and words/s at 1M, 3M
and 10M characters, beside spaCy's own Doc of the same text.

    python benchmarks/book_size.py metrics/book_size.json \
        --pipeline tiny=PIPELINE_A --pipeline minilm=PIPELINE_B \
        [--sizes 1000000 3000000 10000000] [--systems pipe annotate] \
        [--conll ../shared/data/conll2003/dev.txt] [--repeat 3]

The text is CoNLL-2003 dev's documents as running text (sentences joined by
spaces, documents by blank lines), repeated to each size. Each measurement
runs in a fresh process, so that its peak resident memory (ru_maxrss) is its
own:

- `doc`: the memory baseline, spaCy's blank English pipeline making the Doc
  of the text (nlp.max_length lifted), nothing else loaded;
- `pipe`: `nlp.pipe([text])` of the pipeline;
- `call`: `nlp(text)`;
- `annotate`: `spacy-longner annotate` (in-process) over a folder holding the
  text as one .txt file.

Reported per system and size: peak RSS, its excess over the `doc` baseline
of the same size (what long_ner, its model and its buffers add; the goal is
that this does not grow with the text), words/s of the whole call, and the
number of entities. The summary gives, per pipeline and system, the excess's
growth from the smallest size to the largest and the words/s ratio between
them.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model  # noqa: E402

DEFAULT_CONLL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conll2003" / "dev.txt"


def conll_text(path: Path) -> str:
    """CoNLL-2003 documents as running text: a sentence's tokens joined by
    spaces, sentences by a space, documents by a blank line."""
    docs: list[list[str]] = []
    sentence: list[str] = []
    for line in path.read_text(encoding="utf8").splitlines():
        if line.startswith("-DOCSTART-"):
            docs.append([])
            continue
        if not line.strip():
            if sentence and docs:
                docs[-1].append(" ".join(sentence))
            sentence = []
            continue
        sentence.append(line.split()[0])
    return "\n\n".join(" ".join(d) for d in docs if d)


def book(path: Path, n_chars: int) -> str:
    base = conll_text(path) + "\n\n"
    return (base * (n_chars // len(base) + 1))[:n_chars]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(system: str, pipeline: str, conll: Path, n_chars: int) -> dict[str, object]:
    """One measurement, in this process."""
    import spacy

    text = book(conll, n_chars)
    if system == "doc":
        nlp = spacy.blank("en")
        nlp.max_length = len(text) + 1
    else:
        nlp = spacy.load(pipeline)
        nlp("Peter Blackburn went to Brussels .")  # load and warm up before the clock
    if system != "annotate":
        loaded_mb = peak_rss_mb()
        start = time.perf_counter()
        if system == "doc":
            words, n_ents = len(nlp.make_doc(text)), 0
        else:
            doc = next(iter(nlp.pipe([text]))) if system == "pipe" else nlp(text)
            words, n_ents = len(doc), len(doc.ents)
        seconds, peak = time.perf_counter() - start, peak_rss_mb()
    else:
        from spacy_longner.annotate import annotate

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "in").mkdir()
            source = Path(tmp) / "in" / "book.txt"
            source.write_text(text, encoding="utf8")
            del text  # annotate reads the file: one copy of the text, as in the other systems
            loaded_mb = peak_rss_mb()
            start = time.perf_counter()
            counts = annotate(pipeline, source.parent, Path(tmp) / "out.jsonl", progress=False)
            seconds, peak = time.perf_counter() - start, peak_rss_mb()
            assert counts["done"] == 1, counts
            with open(Path(tmp) / "out.jsonl", encoding="utf8") as f:
                n_ents = len(json.loads(f.readline())["entities"])
            text = source.read_text(encoding="utf8")
        # Counted after the peak is read: this Doc is the benchmark's, not annotate's.
        words = len(nlp.make_doc(text))
    return {
        "system": system,
        "chars": n_chars,
        "words": words,
        "entities": n_ents,
        "seconds": seconds,
        "words_per_second": words / seconds,
        "rss_loaded_mb": loaded_mb,
        "peak_rss_mb": peak,
    }


def run(system: str, pipeline: str, conll: Path, n_chars: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", system, pipeline, str(conll), str(n_chars)],
        capture_output=True,
        text=True,
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{system} {pipeline} {n_chars}: no result\n{out.stderr[-3000:]}")


def best_of(repeat: int, system: str, pipeline: str, conll: Path, n_chars: int) -> dict[str, object]:
    """`repeat` measurements, each in a fresh process: the fastest one's
    words/s, and the median of their peak memory (the heap's release points
    move the peak by tens of MB from run to run); each run kept in `runs`."""
    runs = [run(system, pipeline, conll, n_chars) for _ in range(repeat)]
    out = dict(max(runs, key=lambda r: r["words_per_second"]))  # type: ignore[arg-type, return-value]
    out["peak_rss_mb"] = sorted(r["peak_rss_mb"] for r in runs)[len(runs) // 2]  # type: ignore[type-var]
    out["runs"] = runs
    return out


def save(output, results) -> None:
    """The results so far (written after each measurement)."""
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1), encoding="utf8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, nargs="?")
    parser.add_argument("--pipeline", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--systems", nargs="+", default=["pipe", "annotate"], choices=["pipe", "call", "annotate"])
    parser.add_argument("--conll", type=Path, default=DEFAULT_CONLL)
    parser.add_argument("--repeat", type=int, default=1, help="processes per measurement (best words/s, median peak)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        system, pipeline, conll, n_chars = args.worker
        print("RESULT " + json.dumps(measure(system, pipeline, Path(conll), int(n_chars))), flush=True)
        return
    if not args.conll.exists():
        sys.exit(f"CoNLL-2003 dev not found at {args.conll}: give --conll PATH")
    pipelines = dict(p.split("=", 1) for p in args.pipeline)
    results: dict[str, object] = {
        "cpu": cpu_model(),
        "sizes": args.sizes,
        "repeat": args.repeat,
        "baseline": {},
        "pipelines": {},
    }
    for n in args.sizes:
        r = best_of(args.repeat, "doc", "", args.conll, n)
        results["baseline"][str(n)] = r  # type: ignore[index]
        print(
            f"{'doc':>8} {'baseline':>10} {n:>11,} chars: peak {r['peak_rss_mb']:7.0f} MB, {r['words']:,} words",
            flush=True,
        )
    for name, path in pipelines.items():
        rows = results["pipelines"].setdefault(name, {"path": path})  # type: ignore[union-attr]
        for system in args.systems:
            for n in args.sizes:
                r = best_of(args.repeat, system, path, args.conll, n)
                r["excess_mb"] = r["peak_rss_mb"] - results["baseline"][str(n)]["peak_rss_mb"]  # type: ignore[index]
                rows.setdefault(system, {})[str(n)] = r
                save(args.output, results)
                print(
                    f"{system:>8} {name:>10} {n:>11,} chars: peak {r['peak_rss_mb']:7.0f} MB "
                    f"(+{r['excess_mb']:.0f} over the Doc), {r['words_per_second']:8.0f} words/s, "
                    f"{r['entities']:,} entities",
                    flush=True,
                )
            first, last = rows[system][str(args.sizes[0])], rows[system][str(args.sizes[-1])]
            rows[system]["summary"] = {
                "excess_growth_mb": last["excess_mb"] - first["excess_mb"],
                "words_per_second_ratio": last["words_per_second"] / first["words_per_second"],
            }
            print(
                f"{system:>8} {name:>10}: excess grows {rows[system]['summary']['excess_growth_mb']:+.0f} MB, "
                f"words/s x{rows[system]['summary']['words_per_second_ratio']:.3f} "
                f"from {args.sizes[0]:,} to {args.sizes[-1]:,} chars",
                flush=True,
            )
    save(args.output, results)


if __name__ == "__main__":
    main()
