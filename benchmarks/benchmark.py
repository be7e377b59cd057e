"""Peer benchmark: long_ner against the Hugging Face pipeline, spacy-huggingface-
pipelines' hf_token_pipe and the raw floor, on the same checkpoint, each system
in its own process, on CoNLL-2003 dev as sentences and as whole documents.

    python benchmarks/benchmark.py training/minilm/model-best corpus/dev.spacy metrics/benchmark.json

Systems (all get the text of each sentence/document, words joined by spaces,
except the floor, which gets the words):
- long_ner: `nlp.pipe` of the pipeline: spaCy's tokenizer, then long_ner
  (document context; window: the model's maximum unless --window, like the
  floor's chunks; its own read-ahead buffer; prefetch per --prefetch). Other
  components (a sentencizer, which document context does not need) are
  excluded.
- long_ner_onnx, long_ner_onnx_int8, long_ner_int8: long_ner with
  runtime = "onnx" (ONNX Runtime, the graph exported at load where the
  pipeline folder has none: before the warm-up, not timed), the same with
  quantize = "int8", and torch's int8 path. Same settings otherwise.
- hf_pipeline: transformers' pipeline("token-classification",
  aggregation_strategy="first"), with stride for texts longer than the model.
- hf_token_pipe: spacy-huggingface-pipelines, aggregation "first". It caps
  transformers below 5, so it runs in its own environment where it can
  install: --peer-python PATH names that environment's interpreter (e.g. the
  [trf] one: `bash scripts/install.sh trf .venv-trf` then
  `.venv-trf/bin/pip install spacy-huggingface-pipelines`). Each result
  records the transformers version it ran with.
- floor: tokenize the pre-split words, cut into max-length chunks (no
  overlap), one forward pass in length-sorted, dynamically padded batches
  (make_batches as long_ner uses it, over the whole input at once, without
  long_ner's per-call overhead joining; for Longformer, widths rounded up to
  its attention window as its forward pass pads them), argmax. No spaCy, no
  alignment, no decoding: the physical floor.
- floor_onnx, floor_onnx_int8: the same floor loop, its forward pass the
  InferenceSession that long_ner_onnx (long_ner_onnx_int8) runs: same graph,
  same session options, batches capped at the same wordpiece budget as on
  that runtime. What ONNX Runtime itself gives over eager PyTorch on this
  machine, with nothing of long_ner around it: the ceiling for
  long_ner_onnx's ratio to the floor.

Also: time of a 10,000-word vs a 100,000-word document (long_ner), and RSS
while streaming many docs through nlp.pipe. Writes the JSON and a bar chart
PNG beside it. Numbers are words per second of the first timed pass after a
warm-up on 16 texts, in a fresh process: spaCy's tokenizer, its vocab and
long_ner's wordpiece cache start empty there. With --passes N, N-1 more passes
run in the same process (warm, as deep in a long stream) and give the
`..._later_passes` ratios beside the first pass's.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

SYSTEMS = ["long_ner", "floor", "hf_pipeline", "hf_token_pipe"]
# long_ner systems: (runtime, quantize).
LONG_NER = {
    "long_ner": ("torch", "none"),
    "long_ner_int8": ("torch", "int8"),
    "long_ner_onnx": ("onnx", "none"),
    "long_ner_onnx_int8": ("onnx", "int8"),
}
# The floor loop with ONNX Runtime's forward pass: (runtime, quantize) of the
# long_ner system whose session it runs.
ONNX_FLOORS = {"floor_onnx": ("onnx", "none"), "floor_onnx_int8": ("onnx", "int8")}
# Each long_ner system with a floor on its own runtime and quantization: that floor.
RUNTIME_FLOOR = {
    system: floor for system, setting in LONG_NER.items() for floor, same in ONNX_FLOORS.items() if same == setting
}
INPUTS = ["sentences", "documents"]


def load_inputs(corpus: Path, kind: str, limit: int = 0) -> list[list[str]]:
    import spacy
    from spacy.tokens import DocBin

    docs = list(DocBin().from_disk(corpus).get_docs(spacy.blank("en").vocab))
    if kind == "sentences":
        out = [[t.text for t in s] for d in docs for s in d.sents]
    else:
        out = [[t.text for t in d] for d in docs]
    return out[:limit] if limit else out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_long_ner(pipeline: str, args, system: str = "long_ner"):
    import spacy

    if args.gpu:
        spacy.require_gpu()
    runtime, quantize = LONG_NER.get(system) or ONNX_FLOORS[system]
    model = {
        "context": "document",
        "precision": args.precision,
        "wordpiece_budget": args.wordpiece_budget,
        "window": args.window or None,
        "stride": None if args.stride < 0 else args.stride,
        **({} if args.cut_at_sentences == "pipeline" else {"cut_at_sentences": args.cut_at_sentences == "true"}),
        "runtime": runtime,
        "quantize": quantize,
    }
    names = spacy.util.load_config(Path(pipeline) / "config.cfg")["nlp"]["pipeline"]
    return spacy.load(
        pipeline,
        exclude=[n for n in names if n != "long_ner"],
        config={"components": {"long_ner": {"model": model, "prefetch": args.prefetch}}},
    )


def dtype_kwargs(args) -> dict[str, str]:
    """from_pretrained/pipeline keyword for the peers' dtype: `dtype` in
    transformers 5, `torch_dtype` before."""
    import transformers

    value = hf_dtype(args)
    if not value:
        return {}
    return {"dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype": value}


def hf_dtype(args):
    """The peers' dtype, to match long_ner's precision: fp16 or bf16 on GPU,
    bf16 on CPU (where long_ner runs bf16 on CPUs with bf16 instructions)."""
    if args.gpu:
        return {"fp16": "float16", "bf16": "bfloat16"}.get(args.precision)
    return "bfloat16" if args.precision == "bf16" else None


def run_worker(system: str, kind: str, args) -> dict[str, float]:
    import torch

    words = load_inputs(args.corpus, kind, args.limit)
    texts = [" ".join(w) for w in words]
    n_words = sum(len(w) for w in words)
    checkpoint = str(Path(args.pipeline) / "long_ner" / "model")
    device = 0 if args.gpu else -1
    warm = texts[:16]
    if system in LONG_NER:
        nlp = load_long_ner(args.pipeline, args, system)
        list(nlp.pipe(warm))

        def run_once():
            return sum(len(d.ents) for d in nlp.pipe(texts, batch_size=args.batch_size))
    elif system == "hf_pipeline":
        from transformers import pipeline

        kwargs = dtype_kwargs(args)
        pipe = pipeline(
            "token-classification", model=checkpoint, aggregation_strategy="first", device=device, stride=64, **kwargs
        )
        pipe(warm)

        def run_once():
            return sum(len(x) for x in pipe(texts))
    elif system == "hf_token_pipe":
        import spacy
        import spacy_huggingface_pipelines  # noqa: F401

        if args.gpu:
            spacy.require_gpu()  # hf_token_pipe takes thinc's current torch device
        nlp = spacy.blank("en")
        kwargs = dtype_kwargs(args)
        nlp.add_pipe(
            "hf_token_pipe",
            config={"model": checkpoint, "aggregation_strategy": "first", "stride": 64, "kwargs": kwargs},
        )
        list(nlp.pipe(warm))

        def run_once():
            return sum(len(d.ents) for d in nlp.pipe(texts, batch_size=args.batch_size))
    elif system == "floor":
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(checkpoint)
        model = AutoModelForTokenClassification.from_pretrained(checkpoint).eval()
        dev = torch.device("cuda" if args.gpu else "cpu")
        model.to(dev)
        floor_pass(tok, model, words[:16], dev, args)

        def run_once():
            return floor_pass(tok, model, words, dev, args)
    elif system in ONNX_FLOORS:
        from transformers import AutoTokenizer

        from spacy_longner import onnx_backend
        from spacy_longner.model import inference_budget

        tok = AutoTokenizer.from_pretrained(checkpoint)
        thinc_model = load_long_ner(args.pipeline, args, system).get_pipe("long_ner").model
        state = thinc_model.attrs["state"]
        sess = onnx_backend.session(state, ONNX_FLOORS[system][1])
        budget = inference_budget(thinc_model)

        def onnx_forward(ids, mask):
            return sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]

        floor_pass(tok, onnx_forward, words[:16], None, args, budget)

        def run_once():
            return floor_pass(tok, onnx_forward, words, None, args, budget)
    else:
        raise ValueError(system)
    start = time.perf_counter()
    n_ents = run_once()
    seconds = time.perf_counter() - start
    # Later passes in the same process: caches warm (spaCy's tokenizer and
    # vocab, long_ner's wordpieces), as in a long stream of text.
    later = []
    for _ in range(max(0, args.passes - 1)):
        start = time.perf_counter()
        run_once()
        later.append(n_words / (time.perf_counter() - start))
    import transformers

    out = {
        "transformers": transformers.__version__,
        "python": sys.executable,
        "words": n_words,
        "docs": len(texts),
        "seconds": seconds,
        "words_per_second": n_words / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "n_entities_or_tags": n_ents,
    }
    if later:
        out["later_passes_words_per_second"] = later
    return out


def floor_pass(tok, model, words: list[list[str]], device, args, budget: int = 0) -> int:
    """Tokenize, cut into max-length chunks, forward all chunks in
    length-sorted batches (the same batching as long_ner: spacy_longner's
    make_batches, here over the whole input at once), argmax. `model` is a
    torch model, or a function (input_ids, attention_mask) -> logits on
    numpy arrays (ONNX Runtime); `budget` replaces --wordpiece-budget."""
    import numpy as np
    import torch

    from spacy_longner.batching import make_batches
    from spacy_longner.checkpoint import pad_multiple_of

    enc = tok(words, is_split_into_words=True, add_special_tokens=False, verbose=False)["input_ids"]
    cls, sep = tok.cls_token_id, tok.sep_token_id
    size = tok.model_max_length - 2 if tok.model_max_length < 100_000 else 510
    chunks = [
        np.asarray(ids[i : i + size], dtype=np.int64) for ids in enc for i in range(0, max(len(ids), 1), size) if ids
    ]
    budget = budget or args.wordpiece_budget
    if isinstance(model, torch.nn.Module):
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.precision)
        on_cpu_bf16 = not args.gpu and dtype is torch.bfloat16
        # Longformer pads every batch to a multiple of its attention window
        # inside its forward pass; rows are counted against the budget at that
        # padded width, as long_ner counts them, so the floor's batches fit it too.
        pad_multiple = pad_multiple_of(model.config)
        context = [
            torch.inference_mode(),
            torch.autocast(
                "cuda" if args.gpu else "cpu", dtype=dtype, enabled=bool(dtype and (args.gpu or on_cpu_bf16))
            ),
        ]

        def count_tags(batch) -> int:
            ids = torch.from_numpy(batch.input_ids).to(device)
            mask = torch.from_numpy(batch.attention_mask).to(device)
            logits = model(input_ids=ids, attention_mask=mask).logits
            return int((logits.argmax(-1) * mask).bool().sum())
    else:
        pad_multiple, context = 1, []

        def count_tags(batch) -> int:
            logits = model(batch.input_ids, batch.attention_mask)
            return int((logits.argmax(-1) * batch.attention_mask).astype(bool).sum())

    n_tags = 0
    with ExitStack() as stack:
        for manager in context:
            stack.enter_context(manager)
        for batch in make_batches(chunks, [cls], [sep], tok.pad_token_id, budget, pad_multiple):
            n_tags += count_tags(batch)
    return n_tags


def run_scaling(args) -> dict[str, float]:
    words = [w for doc in load_inputs(args.corpus, "documents") for w in doc]
    nlp = load_long_ner(args.pipeline, args)
    from spacy.tokens import Doc

    out = {}
    nlp(Doc(nlp.vocab, words=words[:2000]))
    for n in (10_000, 100_000):
        doc_words = (words * (n // len(words) + 1))[:n]
        doc = Doc(nlp.vocab, words=doc_words)
        start = time.perf_counter()
        nlp(doc)
        out[f"seconds_{n}"] = time.perf_counter() - start
    out["ratio_100k_to_10k"] = out["seconds_100000"] / out["seconds_10000"]
    return out


def run_memory(args) -> dict[str, float]:
    sentences = [" ".join(w) for w in load_inputs(args.corpus, "sentences")]
    nlp = load_long_ner(args.pipeline, args)

    def stream():
        for i in range(args.memory_docs):
            yield sentences[i % len(sentences)]

    samples = []
    for i, _doc in enumerate(nlp.pipe(stream(), batch_size=args.batch_size)):
        if i % 1000 == 0:
            samples.append((i, current_rss_mb()))
    samples.append((args.memory_docs, current_rss_mb()))
    warm = next(rss for i, rss in samples if i >= min(5000, args.memory_docs // 10))
    return {
        "docs": args.memory_docs,
        "rss_after_warmup_mb": warm,
        "rss_end_mb": samples[-1][1],
        "growth_mb": samples[-1][1] - warm,
        "samples": samples,
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    systems = [
        s
        for s in list(LONG_NER) + SYSTEMS[1:] + list(ONNX_FLOORS)
        if any(s in results["runs"].get(k, {}) for k in INPUTS)
    ]
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(systems)), 4))
    width = 0.38
    for j, kind in enumerate(INPUTS):
        vals = [results["runs"].get(kind, {}).get(s, {}).get("words_per_second", 0) for s in systems]
        bars = ax.bar(np.arange(len(systems)) + (j - 0.5) * width, vals, width, label=kind)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(range(len(systems)), systems, fontsize=8)
    ax.set_ylabel("words / second")
    ax.set_title(f"CoNLL-2003 dev, {results['device']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument(
        "--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS + list(LONG_NER)[1:] + list(ONNX_FLOORS)
    )
    parser.add_argument("--inputs", nargs="+", default=INPUTS)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        help="nlp.pipe batch_size (spaCy's default); long_ner reads ahead at most this many docs",
    )
    parser.add_argument(
        "--wordpiece-budget", type=int, default=8192, help="padded wordpieces per forward batch (long_ner and floor)"
    )
    parser.add_argument(
        "--window", type=int, default=0, help="long_ner window (0: the model's maximum, as the floor's chunks)"
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=-1,
        help="long_ner stride (-1: its default, window // 8; 0: no overlap, the floor's chunks)",
    )
    parser.add_argument(
        "--cut-at-sentences",
        default="pipeline",
        choices=["pipeline", "true", "false"],
        help="long_ner's cut_at_sentences (false with --stride 0: the floor's chunks exactly)",
    )
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--prefetch", default="auto", choices=["auto", "on", "off"], help="long_ner's prefetch setting")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed passes per system and input, each in a fresh process; the best is reported, all are kept",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=1,
        help="passes over the input in each worker process: the first is the result (cold: spaCy's tokenizer, "
        "its vocab and long_ner's wordpiece cache fill up as they go); later ones are kept as "
        "`later_passes_words_per_second` and give the warm ratios",
    )
    parser.add_argument("--memory-docs", type=int, default=50_000)
    parser.add_argument("--skip-extra", action="store_true", help="no scaling/memory runs")
    parser.add_argument(
        "--peer-python",
        default=None,
        help="Python of the environment that runs hf_token_pipe (it needs transformers < 5)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "INPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        system, kind = args.worker
        result = (
            run_scaling(args)
            if system == "scaling"
            else run_memory(args)
            if system == "memory"
            else run_worker(system, kind, args)
        )
        print("RESULT " + json.dumps(result))
        return
    base = [
        __file__,
        args.pipeline,
        str(args.corpus),
        str(args.output),
        "--precision",
        args.precision,
        "--batch-size",
        str(args.batch_size),
        "--prefetch",
        args.prefetch,
        "--wordpiece-budget",
        str(args.wordpiece_budget),
        "--window",
        str(args.window),
        "--stride",
        str(args.stride),
        "--cut-at-sentences",
        args.cut_at_sentences,
        "--limit",
        str(args.limit),
        "--passes",
        str(args.passes),
        "--memory-docs",
        str(args.memory_docs),
    ] + (["--gpu"] if args.gpu else [])

    def worker(system: str, kind: str) -> dict:
        python = args.peer_python if system == "hf_token_pipe" and args.peer_python else sys.executable
        out = subprocess.run([python] + base + ["--worker", system, kind], capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if out.returncode != 0 or line is None:
            return {"error": out.stderr[-1500:]}
        return json.loads(line[len("RESULT ") :])

    import platform

    import torch
    from machine import cpu_model

    device = (
        torch.cuda.get_device_name(0)
        if args.gpu
        else f"CPU {cpu_model()} ({os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )
    results: dict = {
        "device": device,
        "platform": platform.platform(),
        "pipeline": args.pipeline,
        "precision": args.precision,
        "long_ner_stride": "default (window // 8)" if args.stride < 0 else args.stride,
        "long_ner_cut_at_sentences": args.cut_at_sentences,
        "prefetch": args.prefetch,
        "passes": args.passes,
        "runs": {},
    }
    for kind in args.inputs:
        results["runs"][kind] = {}
        for system in args.systems:
            tries = [worker(system, kind) for _ in range(max(1, args.repeat))]
            good = [t for t in tries if "error" not in t]
            r = max(good, key=lambda t: t["words_per_second"]) if good else tries[0]
            if len(tries) > 1:
                r = dict(r, all_words_per_second=[t.get("words_per_second") for t in tries])
                if args.passes > 1 and good:
                    r["later_passes_words_per_second"] = [
                        w for t in good for w in t.get("later_passes_words_per_second", [])
                    ]
            results["runs"][kind][system] = r
            print(
                f"{kind:>10} {system:>14}: "
                + (
                    f"{r['words_per_second']:8.0f} words/s, peak RSS {r['peak_rss_mb']:.0f} MB"
                    if "error" not in r
                    else "ERROR " + r["error"][-300:]
                ),
                flush=True,
            )
        floor = results["runs"][kind].get("floor", {}).get("words_per_second")
        ours = results["runs"][kind].get("long_ner", {}).get("words_per_second")
        ratios = {}
        for system, r in results["runs"][kind].items():
            if floor and "words_per_second" in r:
                r["ratio_to_floor"] = r["words_per_second"] / floor
            # long_ner against the floor loop on its own runtime: what of
            # that runtime's speed long_ner keeps.
            own = RUNTIME_FLOOR.get(system)
            own_wps = results["runs"][kind].get(own, {}).get("words_per_second")
            if own_wps and "words_per_second" in r:
                r[f"ratio_to_{own}"] = r["words_per_second"] / own_wps
            if ours and "words_per_second" in r and system != "long_ner" and system not in LONG_NER:
                ratios[f"long_ner_vs_{system}"] = ours / r["words_per_second"]
        if args.passes > 1:
            warm = {
                system: max(r["later_passes_words_per_second"])
                for system, r in results["runs"][kind].items()
                if "later_passes_words_per_second" in r
            }
            for system, wps in warm.items():
                if system != "long_ner" and "long_ner" in warm:
                    ratios[f"long_ner_vs_{system}_later_passes"] = warm["long_ner"] / wps
        results["runs"][kind]["ratios"] = ratios
        print(f"{kind:>10} ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()), flush=True)
    if not args.skip_extra:
        results["scaling"] = worker("scaling", "documents")
        print("scaling:", json.dumps(results["scaling"]), flush=True)
        results["memory"] = worker("memory", "sentences")
        print("memory:", json.dumps({k: v for k, v in results["memory"].items() if k != "samples"}), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf8")
    plot(results, args.output.with_suffix(".png"))
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
