"""fp32 vs quantize="int8" vs "int8_all" vs precision="bf16" (where the CPU
has bf16 instructions; every other variant runs in fp32, whatever precision
the pipeline was trained in), on torch and on runtime="onnx" (fp32, int8,
int8_all; where onnxruntime is installed), for a trained pipeline on CoNLL dev
(gold sentences): conlleval F1 and words/s, in the pipeline's own mode (as
trained) and with document windows (context="document", window = the model's
maximum, like the benchmark), against the fp32 floor (benchmarks/benchmark.py's
floor_pass: tokenize + forward + argmax on the same documents), one process,
one run.

    python benchmarks/int8_check.py PIPELINE corpus/dev.spacy metrics/int8.json [--variants none int8 onnx onnx_int8]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import spacy
import torch
from spacy.tokens import DocBin

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import floor_pass  # noqa: E402

from spacy_longner.corpus import bare_copy  # noqa: E402
from spacy_longner.device import cpu_has_bf16  # noqa: E402
from spacy_longner.report import conlleval, doc_iob2  # noqa: E402

# Model settings of each variant.
VARIANTS = {
    "none": {},
    "int8": {"quantize": "int8"},
    "int8_all": {"quantize": "int8_all"},
    "bf16": {"precision": "bf16"},
    "onnx": {"runtime": "onnx"},
    "onnx_int8": {"runtime": "onnx", "quantize": "int8"},
    "onnx_int8_all": {"runtime": "onnx", "quantize": "int8_all"},
}


def default_variants():
    import importlib.util

    out = ["none", "int8", "int8_all"] + (["bf16"] if cpu_has_bf16() else [])
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        out += ["onnx", "onnx_int8", "onnx_int8_all"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument(
        "--variants", nargs="+", default=None, choices=list(VARIANTS), help="default: all that run here"
    )
    args = parser.parse_args()
    gold = list(DocBin().from_disk(args.corpus).get_docs(spacy.blank("en").vocab))
    n_words = sum(len(d) for d in gold)
    out = {"pipeline": args.pipeline, "torch_threads": torch.get_num_threads(), "runs": {}}
    for mode in ("trained", "document"):
        for q in args.variants or default_variants():
            # fp32 unless the variant says otherwise, whatever the pipeline was trained in
            model = {"precision": "fp32", **VARIANTS[q]}
            if mode == "document":
                model.update(context="document", window=None)
            nlp = spacy.load(args.pipeline, config={"components": {"long_ner": {"model": model}}})
            inputs = [bare_copy(nlp.vocab, d) for d in gold]
            list(nlp.pipe(inputs[:3]))  # onnx: the export and int8 copy happen here, untimed
            start = time.perf_counter()
            docs = list(nlp.pipe(inputs))
            seconds = time.perf_counter() - start
            f1 = conlleval([doc_iob2(d) for d in gold], [doc_iob2(d) for d in docs])["f1"]
            out["runs"][f"{mode}/{q}"] = {"words_per_second": n_words / seconds, "dev_f1": f1}
            print(f"{mode:>8} {q:>9}: {n_words / seconds:7.0f} words/s, dev F1 {f1:.2f}", flush=True)
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    checkpoint = str(Path(args.pipeline) / "long_ner" / "model")
    tok = AutoTokenizer.from_pretrained(checkpoint)
    hf = AutoModelForTokenClassification.from_pretrained(checkpoint).eval()
    words = [[t.text for t in d] for d in gold]
    fargs = argparse.Namespace(precision="fp32", gpu=False, wordpiece_budget=8192)
    floor_pass(tok, hf, words[:3], "cpu", fargs)
    start = time.perf_counter()
    floor_pass(tok, hf, words, "cpu", fargs)
    floor = n_words / (time.perf_counter() - start)
    out["floor_fp32_words_per_second"] = floor
    print(f"fp32 floor (documents): {floor:.0f} words/s", flush=True)
    for key, r in out["runs"].items():
        r["ratio_to_fp32_floor"] = r["words_per_second"] / floor
        base = out["runs"][key.split("/")[0] + "/none"]
        r["f1_change"] = r["dev_f1"] - base["dev_f1"]
        print(f"{key:>18}: {r['ratio_to_fp32_floor']:.2f}x fp32 floor, F1 {r['f1_change']:+.2f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
