"""What a GPU buys users of the seeds' setups: Longformer-large with
4096-wordpiece windows and ALBERT-xlarge with 512, at the seeds' sizes with
random weights (the speed does not depend on the weight values), with
tokenizers of the same families trained offline on CoNLL-2003 train.

    # on any machine: configs and tokenizers (no weights), a few MB
    python benchmarks/seed_speed.py shapes .gpudata/seed_shapes
    # on the GPU: inference (long_ner, the floor, the HF pipeline) per
    # precision, then training steps on full-length windows
    python benchmarks/seed_speed.py run .gpudata/seed_shapes corpus/dev.spacy OUT.json --gpu
    # the same steps on CPU with tiny stand-ins (2 layers, 32 wide), to test
    # the script before device time is spent on it
    python benchmarks/seed_speed.py shapes /tmp/shapes --tiny
    python benchmarks/seed_speed.py run /tmp/shapes corpus/dev.spacy /tmp/seed.json --precisions fp32 bf16

Inference: benchmarks/benchmark.py (its systems, first pass in a fresh process
per system, CoNLL dev as sentences and as documents) on a pipeline made by
benchmarks/random_pipeline.py from each shape. long_ner and the floor use
windows of the model's maximum (4094 and 510 wordpieces plus the special
tokens).

Training: `nlp.update` of the long_ner pipeline with an optimizer, on
full-length windows of `--train-wordpieces` in all a step: consecutive CoNLL
dev sentences joined until they fill the model's window, with their gold
entities. One untimed step, then `--train-steps` timed ones (on CUDA,
synchronized), and the peak memory: torch's peak allocation on CUDA, the
process's peak RSS on CPU. fp16 trains with thinc's grad scaler, bf16
without one (long_ner's own autocast). `--gradient-checkpointing off on`
measures each step also with long_ner's `gradient_checkpointing` (results
keyed PRECISION_checkpointed): Longformer-large's fp32 step on one
4096-wordpiece window needs more than 24 GB without it. A part killed by a
signal (the OOM killer's SIGKILL) is reported as such.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The seeds' architectures, as their Hugging Face configs give them
# (allenai/longformer-large-4096, albert-xlarge-v2); tiny stand-ins keep the
# kind, the tokenizer family and the window, and shrink the rest.
SHAPES = {
    "longformer_large": {
        "kind": "longformer",
        "vocab": 50265,
        "window": 4096,
        "config": dict(
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            attention_window=512,
            max_position_embeddings=4098,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
        ),
        "tiny": dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            attention_window=64,
            max_position_embeddings=4098,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
        ),
    },
    "albert_xlarge": {
        "kind": "albert",
        "vocab": 30000,
        "window": 512,
        "config": dict(
            hidden_size=2048,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=8192,
            embedding_size=128,
            num_hidden_groups=1,
            max_position_embeddings=512,
            hidden_act="gelu_new",
        ),
        "tiny": dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            embedding_size=16,
            num_hidden_groups=1,
            max_position_embeddings=512,
            hidden_act="gelu_new",
        ),
    },
}


def make_shapes(out: Path, tiny: bool, conll_dir: Path, names: list[str]) -> None:
    """config.json and the tokenizer of each model, no weights."""
    from transformers import AlbertConfig, LongformerConfig

    from spacy_longner.testing import read_conll_sentences, train_tokenizer

    train = conll_dir / "train.txt"
    if tiny:
        from spacy_longner.testing import training_text

        lines = training_text(conll_dir)
    elif train.exists():
        lines = [" ".join(w for w, _ in s) for s in read_conll_sentences(train)]
    else:
        sys.exit(f"{train} not found: the seed-sized tokenizers are trained on CoNLL-2003 train (--conll-dir)")
    for name in names:
        spec = SHAPES[name]
        # The trainer stops where the text runs out of merges; the config keeps
        # the seed's vocabulary size, so the embedding matrix is full-sized.
        tokenizer = train_tokenizer(spec["kind"], lines, 600 if tiny else spec["vocab"])
        sizes = dict(
            spec["tiny" if tiny else "config"],
            vocab_size=len(tokenizer) if tiny else spec["vocab"],
            pad_token_id=tokenizer.pad_token_id,
        )
        if spec["kind"] == "longformer":
            tokenizer.model_max_length = spec["window"]
            cfg = LongformerConfig(
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                sep_token_id=tokenizer.sep_token_id,
                **sizes,
            )
        else:
            cfg = AlbertConfig(**sizes)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        cfg.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        print(
            f"{folder}: {spec['kind']}, tokenizer of {len(tokenizer)} pieces, config vocab {cfg.vocab_size}"
            f"{' (tiny stand-in)' if tiny else ''}"
        )


def count_pieces(tok, words: list[str]) -> int:
    return len(tok(words, is_split_into_words=True, add_special_tokens=False, verbose=False)["input_ids"])


def training_windows(nlp, docs, window: int, n: int):
    """`n` Examples, each a run of consecutive sentences (of documents in
    order) joined until its wordpieces (by the pipeline's own tokenizer)
    fill `window` (without the special tokens), so that each is one
    full-length window even where a document is longer than the window;
    gold entities kept."""
    from spacy.tokens import Doc
    from spacy.training import Example

    tok = nlp.get_pipe("long_ner").model.attrs["state"].tokenizer
    out, run, used = [], [], 0
    for sent in (s for doc in docs for s in (doc.sents if doc.has_annotation("SENT_START") else [doc[:]])):
        pieces = count_pieces(tok, [t.text for t in sent])
        if run and used + pieces > window:
            ref = Doc.from_docs(run, ensure_whitespace=True)
            out.append(
                Example(Doc(nlp.vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref]), ref)
            )
            run, used = [], 0
            if len(out) == n:
                break
        run.append(sent.as_doc())
        used += pieces
    if len(out) < n:
        raise ValueError(f"the corpus gives only {len(out)} full windows of {window} wordpieces, not {n}")
    return out


def wordpieces_per_word(shape: Path, corpus: Path) -> float:
    """The shape's tokenizer on the corpus's words: words/s across models
    compare only with this in view."""
    import spacy
    from spacy.tokens import DocBin
    from transformers import AutoTokenizer

    model_type = json.loads((shape / "config.json").read_text(encoding="utf8"))["model_type"]
    # Byte-level BPE takes pre-split words only with a prefix space, as long_ner loads it.
    kwargs = {"add_prefix_space": True} if model_type == "longformer" else {}
    tok = AutoTokenizer.from_pretrained(shape, **kwargs)
    words = [[t.text for t in doc] for doc in DocBin().from_disk(corpus).get_docs(spacy.blank("en").vocab)]
    pieces = tok(words, is_split_into_words=True, add_special_tokens=False, verbose=False)["input_ids"]
    return sum(map(len, pieces)) / sum(map(len, words))


def train_worker(args) -> dict:
    import resource

    import spacy
    import torch
    from spacy.tokens import DocBin

    if args.gpu:
        spacy.require_gpu()
    spec = SHAPES[args.model]
    n_windows = max(1, args.train_wordpieces // spec["window"])
    budget = spec["window"] * n_windows  # every window of a step in one forward batch
    settings = {"precision": args.precision, "wordpiece_budget": budget}
    if args.gradient_checkpointing:
        settings["gradient_checkpointing"] = True
    nlp = spacy.load(args.pipeline, config={"components": {"long_ner": {"model": settings}}})
    list(nlp.pipe(["warm up ."]))  # loads the checkpoint
    window = nlp.get_pipe("long_ner").model.attrs["state"].window  # the model's maximum less its special tokens
    docs = list(DocBin().from_disk(args.corpus).get_docs(nlp.vocab))
    examples = training_windows(nlp, docs, window, n_windows * (args.train_steps + 1))
    optimizer = nlp.resume_training()
    sync = torch.cuda.synchronize if args.gpu else (lambda: None)
    if args.gpu:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for step in range(args.train_steps + 1):
        batch = examples[step * n_windows : (step + 1) * n_windows]
        step_losses: dict[str, float] = {}
        sync()
        start = time.perf_counter()
        nlp.update(batch, sgd=optimizer, losses=step_losses)
        sync()
        if step:  # the first step is a warm-up
            times.append(time.perf_counter() - start)
        losses.append(step_losses.get("long_ner"))
    tok = nlp.get_pipe("long_ner").model.attrs["state"].tokenizer
    timed = examples[n_windows:]  # the steps after the warm-up one
    wordpieces = sum(count_pieces(tok, [t.text for t in eg.reference]) + 2 for eg in timed)
    out = {
        "windows_per_step": n_windows,
        "window": window,
        "gradient_checkpointing": args.gradient_checkpointing,
        "step_seconds": times,
        "mean_step_seconds": sum(times) / len(times),
        "wordpieces_per_second": wordpieces / sum(times),
        "words_per_step": sum(len(eg.reference) for eg in examples[:n_windows]),
        "losses": losses,
    }
    if args.gpu:
        out["peak_cuda_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def run_part(cmd: list[str], timeout: int) -> "tuple[str, str]":
    """stdout and stderr of a measuring process; one that runs past `timeout`
    is stopped and reported, and the next part still runs."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode < 0:  # killed by a signal: SIGKILL is what the OOM killer sends
            why = " (SIGKILL: out of memory?)" if done.returncode == -9 else ""
            return done.stdout, done.stderr + f"\nkilled by signal {-done.returncode}{why}"
        return done.stdout, done.stderr if done.returncode else ""
    except subprocess.TimeoutExpired as err:
        text = lambda b: b.decode("utf8", "replace") if isinstance(b, bytes) else (b or "")  # noqa: E731
        return text(err.stdout), text(err.stderr) + f"\nstopped after {timeout} s (--part-timeout)"


def run_all(args) -> None:
    import platform

    import torch
    from machine import cpu_model

    device = torch.cuda.get_device_name(0) if args.gpu else f"CPU {cpu_model()}"
    results: dict = {"device": device, "platform": platform.platform(), "torch": torch.__version__, "models": {}}
    work = Path(args.work)

    def save() -> None:  # after every part: a run cut short keeps what it measured
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2), encoding="utf8")

    for name in args.models:
        shape = Path(args.shapes) / name
        if not shape.exists():
            sys.exit(f"{shape} not found: run `python benchmarks/seed_speed.py shapes {args.shapes}` first")
        pipeline = work / f"{name}_pipeline"
        if not pipeline.exists():
            subprocess.run(
                [sys.executable, str(ROOT / "benchmarks" / "random_pipeline.py"), str(shape), str(pipeline)], check=True
            )
        config = json.loads((shape / "config.json").read_text(encoding="utf8"))
        entry: dict = {
            "shape": config,
            "tiny_stand_in": config["hidden_size"] != SHAPES[name]["config"]["hidden_size"],
            "wordpieces_per_word": wordpieces_per_word(shape, args.corpus),
            "inference": {},
            "training": {},
        }
        results["models"][name] = entry
        for precision in args.precisions:
            if "inference" in args.parts:
                out = work / f"{name}_{precision}.json"
                cmd = [
                    sys.executable,
                    str(ROOT / "benchmarks" / "benchmark.py"),
                    str(pipeline),
                    str(args.corpus),
                    str(out),
                    "--precision",
                    precision,
                    "--systems",
                    *args.systems,
                    "--inputs",
                    *args.inputs,
                    "--skip-extra",
                    "--wordpiece-budget",
                    str(args.wordpiece_budget),
                    "--batch-size",
                    str(args.batch_size),
                    "--limit",
                    str(args.limit),
                ] + (["--gpu"] if args.gpu else [])
                out.unlink(missing_ok=True)
                stdout, stderr = run_part(cmd, args.part_timeout)
                print(stdout[-1500:], flush=True)
                entry["inference"][precision] = (
                    json.loads(out.read_text(encoding="utf8"))["runs"] if out.exists() else {"error": stderr[-1500:]}
                )
                save()
            for checkpointed in args.gradient_checkpointing if "training" in args.parts else []:
                cmd = (
                    [
                        sys.executable,
                        __file__,
                        "train-worker",
                        str(pipeline),
                        str(args.corpus),
                        "--model",
                        name,
                        "--precision",
                        precision,
                        "--train-wordpieces",
                        str(args.train_wordpieces),
                        "--train-steps",
                        str(args.train_steps),
                    ]
                    + (["--gpu"] if args.gpu else [])
                    + (["--gradient-checkpointing"] if checkpointed == "on" else [])
                )
                stdout, stderr = run_part(cmd, args.part_timeout)
                line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
                r = json.loads(line[len("RESULT ") :]) if line else {"error": stderr[-1500:]}
                key = precision + ("_checkpointed" if checkpointed == "on" else "")
                entry["training"][key] = r
                print(
                    f"{name} {key} training: "
                    + (
                        f"{r['mean_step_seconds']:.3f} s a step of {r['windows_per_step']} x {r['window']} wordpieces"
                        + (
                            f", peak {r['peak_cuda_allocated_gb']:.2f} GB allocated"
                            if "peak_cuda_allocated_gb" in r
                            else f", peak RSS {r.get('peak_rss_gb', 0):.2f} GB"
                        )
                        if "error" not in r
                        else "ERROR " + r["error"][-600:]
                    ),
                    flush=True,
                )
                save()
    print(f"wrote {args.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("shapes", help="configs and tokenizers, no weights")
    p.add_argument("output", type=Path)
    p.add_argument("--tiny", action="store_true", help="tiny stand-ins (2 layers, 32 wide, 600-piece tokenizers)")
    p.add_argument("--conll-dir", type=Path, default=ROOT.parent / "shared" / "data" / "conll2003")
    p.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p = sub.add_parser("run", help="inference and training measurements")
    p.add_argument("shapes", type=Path)
    p.add_argument("corpus", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--precisions", nargs="+", default=["fp16", "bf16"], choices=["fp32", "fp16", "bf16"])
    p.add_argument("--parts", nargs="+", default=["inference", "training"], choices=["inference", "training"])
    p.add_argument("--systems", nargs="+", default=["long_ner", "floor", "hf_pipeline"])
    p.add_argument("--inputs", nargs="+", default=["sentences", "documents"])
    p.add_argument("--wordpiece-budget", type=int, default=65536)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, default=0, help="texts per input (0: all)")
    p.add_argument(
        "--train-wordpieces",
        type=int,
        default=16384,
        help="wordpieces a training step, in full-length windows (16384: 4 Longformer windows, 32 ALBERT ones)",
    )
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps, after one untimed")
    p.add_argument(
        "--gradient-checkpointing",
        nargs="+",
        default=["off"],
        choices=["off", "on"],
        help="train without and/or with long_ner's gradient_checkpointing (results keyed PRECISION_checkpointed)",
    )
    p.add_argument("--part-timeout", type=int, default=300, help="seconds for each benchmark or training process")
    p.add_argument("--work", default="/tmp/seed_speed", help="folder for the random-weight pipelines and per-run JSON")
    p = sub.add_parser("train-worker")
    p.add_argument("pipeline")
    p.add_argument("corpus")
    p.add_argument("--model", required=True, choices=list(SHAPES))
    p.add_argument("--precision", default="fp32")
    p.add_argument("--train-wordpieces", type=int, default=16384)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--gpu", action="store_true")
    args = parser.parse_args()
    if args.command == "shapes":
        make_shapes(args.output, args.tiny, args.conll_dir, args.models)
    elif args.command == "run":
        Path(args.work).mkdir(parents=True, exist_ok=True)
        run_all(args)
    else:
        print("RESULT " + json.dumps(train_worker(args)))


if __name__ == "__main__":
    main()
