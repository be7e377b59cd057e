"""Where long_ner's time goes, stage by stage, on the real code path.

    python benchmarks/profile_stages.py PIPELINE corpus/dev.spacy metrics/profile.json [--inputs sentences documents]

Each stage's function is wrapped with a wall-clock timer (inclusive times;
nested stages are subtracted), then the texts run through `nlp.pipe` as a
user runs them:
- spacy_tokenizer: nlp.make_doc
- hf_tokenizer: the checkpoint's tokenizer on words not yet in the wordpiece
  cache (align.WordpieceCache._add: the call, its word_ids, the cache update)
- encode_other: the rest of encode_docs (token arrays, cache lookups, the
  ragged gather of each word's wordpieces)
- plan_and_batch: window planning (plan_doc) and batching (make_batches)
- forward: host->device, the forward pass, device->host (runtime.run_buffer,
  on CUDA synchronised by the copy back; onnx_backend.run_buffer with
  --runtime onnx). Also counted: buffers, forward calls, and the padded
  against the real wordpieces they ran.
- softmax_aggregate (align.token_probs over the buffer), decode
  (decode.decode_buffer over the buffer), write (set_annotations)
Prefetch is off here (each stage runs where it is timed); pass --prefetch on
to time the overlapped path as a whole.
- other: the rest of nlp.pipe (read-ahead, _plan's bookkeeping, heap trim, ...)
"""

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import spacy
from machine import cpu_model
from spacy.tokens import DocBin

import spacy_longner.align as align_mod
import spacy_longner.batching as batching_mod
import spacy_longner.model as model_mod
import spacy_longner.onnx_backend as onnx_mod
import spacy_longner.prediction as prediction_mod

TIMES = defaultdict(float)
COUNTS = defaultdict(int)
FORWARD = {"torch": (model_mod, "run_buffer"), "onnx": (onnx_mod, "run_buffer")}


# Each timed stage: (module or class whose attribute is called, attribute).
# The attribute is replaced where it is looked up at call time, so a
# function that moves to another module must move here too: a stage never
# called stops the run (see check_stages).
PATCHES = {
    "hf_tokenizer": (align_mod.WordpieceCache, "_add"),
    "encode_docs": (batching_mod, "encode_docs"),
    "plan": (batching_mod, "plan_doc"),
    "batch": (batching_mod, "make_batches"),
    "forward": (model_mod, "run_buffer"),
    "softmax_aggregate": (prediction_mod, "token_probs"),
    "decode": (prediction_mod, "decode_buffer"),
}


CALLED = set()  # stages called at least once in the run, warm-up included


def check_stages(longest_doc: int, window: int) -> None:
    """Fail where a patched stage was never called: its function is no longer
    called through the patched name (moved or renamed), and the profile
    would show it as free. plan_doc runs only for a doc longer than one
    window (a doc has at least as many wordpieces as tokens)."""
    expected = list(PATCHES) + ["spacy_tokenizer", "write"]
    if longest_doc <= window:
        expected.remove("plan")
    silent = sorted(set(expected) - CALLED)
    if silent:
        raise SystemExit(
            f"profile_stages: {', '.join(silent)} never called: the function behind each is no "
            "longer called through the name patched in PATCHES; update PATCHES."
        )


def count_forward(model, state, planned):
    COUNTS["buffers"] += 1
    COUNTS["forward_calls"] += len(planned.batches)
    COUNTS["padded_wordpieces"] += sum(int(b.attention_mask.size) for b in planned.batches)
    COUNTS["real_wordpieces"] += sum(int(b.attention_mask.sum()) for b in planned.batches)


def timed(name, fn):
    def wrapper(*args, **kwargs):
        CALLED.add(name)
        if name == "forward":
            count_forward(*args[:3])
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[name] += time.perf_counter() - start

    return wrapper


def texts_of(corpus: Path, kind: str):
    docs = list(DocBin().from_disk(corpus).get_docs(spacy.blank("en").vocab))
    if kind == "sentences":
        return [s.text for d in docs for s in d.sents]
    return [d.text for d in docs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--inputs", nargs="+", default=["sentences", "documents"])
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--prefetch", default="off", choices=["auto", "on", "off"])
    parser.add_argument("--runtime", default="torch", choices=list(FORWARD))
    args = parser.parse_args()
    PATCHES["forward"] = FORWARD[args.runtime]
    nlp = spacy.load(
        args.pipeline,
        config={
            "components": {
                "long_ner": {"model": {"context": "document", "runtime": args.runtime}, "prefetch": args.prefetch}
            }
        },
    )
    ner = nlp.get_pipe("long_ner")
    tokenizer = ner.state.tokenizer
    nlp.tokenizer = timed("spacy_tokenizer", nlp.tokenizer)
    for stage, (owner, attr) in PATCHES.items():
        setattr(owner, attr, timed(stage, getattr(owner, attr)))
    ner.set_annotations = timed("write", ner.set_annotations)
    import platform

    import torch

    results = {
        "pipeline": args.pipeline,
        "runtime": args.runtime,
        "batch_size": args.batch_size,
        "tokenizer": type(tokenizer).__name__,
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "prefetch": args.prefetch,
        "inputs": {},
    }
    for kind in args.inputs:
        texts = texts_of(args.corpus, kind)
        list(nlp.pipe(texts[:32], batch_size=args.batch_size))
        TIMES.clear()
        COUNTS.clear()
        start = time.perf_counter()
        n_words = sum(len(d) for d in nlp.pipe(texts, batch_size=args.batch_size))
        total = time.perf_counter() - start
        t = dict(TIMES)
        stages = {
            "spacy_tokenizer": t.get("spacy_tokenizer", 0.0),
            "hf_tokenizer": t.get("hf_tokenizer", 0.0),
            "encode_other": t.get("encode_docs", 0.0) - t.get("hf_tokenizer", 0.0),
            "plan_and_batch": t.get("plan", 0.0) + t.get("batch", 0.0),
            "forward": t.get("forward", 0.0),
            "softmax_aggregate": t.get("softmax_aggregate", 0.0),
            "decode": t.get("decode", 0.0),
            "write": t.get("write", 0.0),
        }
        stages["other"] = total - sum(stages.values())
        per_word = {k: 1e6 * v / n_words for k, v in stages.items()}
        results["inputs"][kind] = {
            "words": n_words,
            "seconds": total,
            "words_per_second": n_words / total,
            "seconds_by_stage": stages,
            "us_per_word": per_word,
            "counts": dict(COUNTS),
            "ours_us_per_word": sum(v for k, v in per_word.items() if k not in ("forward", "hf_tokenizer")),
        }
        print(
            f"== {kind}: {n_words} words, {n_words / total:.0f} words/s; {COUNTS['buffers']} buffers, "
            f"{COUNTS['forward_calls']} forward calls, padded/real wordpieces "
            f"{COUNTS['padded_wordpieces'] / max(1, COUNTS['real_wordpieces']):.3f}"
        )
        for k, v in per_word.items():
            print(f"{k:>18}: {v:7.2f} us/word ({100 * stages[k] / total:4.1f}%)")
    longest = max(len(nlp.make_doc(t)) for kind in args.inputs for t in texts_of(args.corpus, kind))
    check_stages(longest, ner.state.window)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
