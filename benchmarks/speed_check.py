"""`python -m spacy benchmark speed` against nlp.pipe on the same data: the
pipeline's words per second measured both ways, and their ratio.

    python benchmarks/speed_check.py training/minilm/model-best corpus/dev.spacy \
        metrics/minilm/speed_check.json [--batches 30]

nlp.pipe gets the docs that spaCy's benchmark reads (spacy.Corpus: each
document's text re-tokenized, no sentences), with nlp.batch_size, timed as
one pass after a warm-up. long_ner reads ahead at most batch_size docs, so
each slice that spaCy's benchmark times holds the work for its own docs.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import spacy
from spacy.training import Corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--batches", type=int, default=30, help="spacy benchmark speed --batches (at least 30)")
    parser.add_argument(
        "--batch-size", type=int, default=0, help="docs per batch, both ways (0: the pipeline's [nlp] batch_size)"
    )
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    if args.batch_size:
        nlp.batch_size = args.batch_size
    docs = [eg.predicted for eg in Corpus(args.corpus)(nlp)]
    list(nlp.pipe([d.copy() for d in docs[: nlp.batch_size]], batch_size=nlp.batch_size))
    start = time.perf_counter()
    n_words = sum(len(d) for d in nlp.pipe([d.copy() for d in docs], batch_size=nlp.batch_size))
    pipe_wps = n_words / (time.perf_counter() - start)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "benchmark",
            "speed",
            args.model,
            str(args.corpus),
            "--batches",
            str(args.batches),
            "--warmup",
            "1",
            "--batch-size",
            str(nlp.batch_size),
        ],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Mean: ([\d.]+) words/s", out.stdout)
    if out.returncode != 0 or not match:
        sys.exit(f"spacy benchmark speed failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    bench_wps = float(match.group(1))
    result = {
        "model": args.model,
        "corpus": str(args.corpus),
        "batch_size": nlp.batch_size,
        "docs": len(docs),
        "nlp_pipe_words_per_second": pipe_wps,
        "spacy_benchmark_speed_mean_words_per_second": bench_wps,
        "ratio": bench_wps / pipe_wps,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf8")
    print(
        f"nlp.pipe: {pipe_wps:.0f} words/s; spacy benchmark speed: {bench_wps:.0f} words/s; "
        f"ratio {bench_wps / pipe_wps:.3f}"
    )


if __name__ == "__main__":
    main()
