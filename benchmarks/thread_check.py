"""Concurrent nlp.pipe calls on one pipeline: words/s of one caller against
N threads sharing the pipeline (each its own share of the texts), per
runtime, and whether the threads' entities equal the single caller's. The
pipeline's model (torch) or ONNX Runtime session (onnx) is shared by all
threads, each call using the torch thread count as its intra-op threads.

    python benchmarks/thread_check.py PIPELINE corpus/dev.spacy metrics/threads.json \
        [--threads 2] [--runtimes torch onnx]
"""

import argparse
import json
import threading
import time
from pathlib import Path

import spacy
import torch
from machine import cpu_model
from spacy.tokens import DocBin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnx"])
    args = parser.parse_args()
    docs = list(DocBin().from_disk(args.corpus).get_docs(spacy.blank("en").vocab))
    texts = [" ".join(t.text for t in s) for d in docs for s in d.sents]
    n_words = sum(len(t.split()) for t in texts)
    out = {"cpu": cpu_model(), "torch_threads": torch.get_num_threads(), "threads": args.threads, "runs": {}}
    for runtime in args.runtimes:
        names = spacy.util.load_config(Path(args.pipeline) / "config.cfg")["nlp"]["pipeline"]
        nlp = spacy.load(
            args.pipeline,
            exclude=[n for n in names if n != "long_ner"],
            config={"components": {"long_ner": {"model": {"runtime": runtime, "context": "document"}}}},
        )
        list(nlp.pipe(texts[:16]))
        start = time.perf_counter()
        single = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
        single_wps = n_words / (time.perf_counter() - start)
        shares = [list(range(i, len(texts), args.threads)) for i in range(args.threads)]
        found = {}

        def work(i, nlp=nlp, shares=shares, found=found):
            found[i] = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe([texts[j] for j in shares[i]])]

        workers = [threading.Thread(target=work, args=(i,)) for i in range(args.threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        threaded_wps = n_words / (time.perf_counter() - start)
        same = all(found[i] == [single[j] for j in shares[i]] for i in range(args.threads))
        out["runs"][runtime] = {
            "single_words_per_second": single_wps,
            "threaded_words_per_second": threaded_wps,
            "threaded_over_single": threaded_wps / single_wps,
            "same_entities": same,
        }
        print(
            f"{runtime:>6}: one caller {single_wps:7.0f} words/s, {args.threads} threads {threaded_wps:7.0f} words/s "
            f"({threaded_wps / single_wps:.2f}x), same entities: {same}",
            flush=True,
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
