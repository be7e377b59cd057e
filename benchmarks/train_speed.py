"""Training speed of a config in fp32 and bf16 (or other precisions), on the
same batches, each precision in a fresh process:

    python benchmarks/train_speed.py configs/minilm_conll03_cpu.cfg corpus/train.spacy corpus/dev.spacy \
        metrics/train_speed.json [--set components.long_ner.model.name=assets/all-mpnet-base-v2]

Each run initializes the pipeline as `spacy train` does (init_nlp), takes the
first (warmup + steps) batches of the config's training corpus and batcher,
runs `warmup` updates untimed and then times `steps` updates (forward,
backward, optimizer). Words are the tokens of the training docs (with their
document context, where the reader adds it). Prints words/s per precision and
the ratio to fp32, with the CPU model.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def config_value(text: str):
    """An override's value as spacy train's command line reads it: JSON
    where it parses (32, 1e-4, true, "a"), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run(args) -> dict:
    import torch
    from spacy import util
    from spacy.schemas import ConfigSchemaTraining
    from spacy.training.initialize import init_nlp
    from thinc.api import fix_random_seed

    overrides = {
        "paths.train": str(args.train),
        "paths.dev": str(args.dev),
        "components.long_ner.model.precision": args.worker,
        **{key: config_value(value) for key, _, value in (item.partition("=") for item in args.set)},
    }
    config = util.load_config(args.config, overrides=overrides, interpolate=False)
    nlp = init_nlp(config)
    fix_random_seed(0)
    resolved = config.interpolate()
    T = util.registry.resolve(resolved["training"], schema=ConfigSchemaTraining)
    (corpus,) = util.resolve_dot_names(resolved, [T["train_corpus"]])
    batches = []
    for batch in T["batcher"](corpus(nlp)):
        batches.append(batch)
        if len(batches) == args.warmup + args.steps:
            break
    optimizer = T["optimizer"]
    if len(batches) < args.warmup + args.steps:
        raise ValueError(f"the corpus gave {len(batches)} batches, fewer than warmup + steps")
    for batch in batches[: args.warmup]:
        nlp.update(batch, sgd=optimizer, drop=T["dropout"])
    words = 0
    start = time.perf_counter()
    losses = {}
    for batch in batches[args.warmup :]:
        nlp.update(batch, sgd=optimizer, drop=T["dropout"], losses=losses)
        words += sum(len(eg.reference) for eg in batch)
    seconds = time.perf_counter() - start
    return {
        "precision": args.worker,
        "steps": args.steps,
        "words": words,
        "seconds": seconds,
        "words_per_second": words / seconds,
        "loss": losses.get("long_ner"),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("train", type=Path)
    parser.add_argument("dev", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config overrides, as spacy train's --section.key value: JSON where it parses, else a string",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(run(args)))
        return
    import torch
    from machine import cpu_model

    from spacy_longner.device import cpu_has_bf16

    results = {
        "cpu": cpu_model(),
        "cpu_has_bf16": cpu_has_bf16(),
        "torch": torch.__version__,
        "config": str(args.config),
        "overrides": args.set,
        "runs": {},
    }
    for precision in args.precisions:
        cmd = [
            sys.executable,
            __file__,
            str(args.config),
            str(args.train),
            str(args.dev),
            str(args.output),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--worker",
            precision,
        ] + (["--set", *args.set] if args.set else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if out.returncode != 0 or line is None:
            results["runs"][precision] = {"error": out.stderr[-1500:]}
            print(f"{precision}: ERROR {out.stderr[-500:]}")
            continue
        r = json.loads(line[len("RESULT ") :])
        results["runs"][precision] = r
        print(
            f"{precision}: {r['words_per_second']:.0f} words/s ({r['steps']} steps, {r['seconds']:.1f} s)", flush=True
        )
    base = results["runs"].get("fp32", {}).get("words_per_second")
    for precision, r in results["runs"].items():
        if base and "words_per_second" in r:
            r["ratio_to_fp32"] = r["words_per_second"] / base
            print(f"{precision} / fp32: {r['ratio_to_fp32']:.2f}x ({results['cpu']})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
