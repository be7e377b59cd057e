"""A ready spaCy pipeline from an already fine-tuned Hugging Face
token-classification checkpoint (local folder or hub id), with no training:

    spacy-longner import-hf PATH_OR_HUB_ID my_pipeline [--label-map PERSON=PER ...] \
        [--runtime onnx] [--package packages]

The folder holds the weights (safetensors), the tokenizer and the labels, and
loads offline with spacy.load(); with --runtime onnx also the ONNX graph of
the weights, which it runs on; with --package, `spacy package` also builds a
wheel of it that `pip install` takes.
"""

import argparse
from pathlib import Path
from typing import Optional

from wasabi import msg

from .errors import Errors


def import_checkpoint(
    checkpoint: str,
    output: Path,
    *,
    lang: str = "en",
    name: str = "long_ner_pipeline",
    version: str = "0.0.1",
    window: Optional[int] = None,
    stride: Optional[int] = None,
    sentencizer: bool = False,
    decoding: str = "conlleval",
    label_map: Optional[dict[str, str]] = None,
    runtime: str = "torch",
    force: bool = False,
):
    """Build the pipeline (blank `lang`, optionally a sentencizer, then
    long_ner on `checkpoint`), save it to `output` and return it. An output
    folder that holds files is an error (E026) unless `force`."""
    import spacy

    output = Path(output)
    if output.exists() and any(output.iterdir()) and not force:
        raise ValueError(Errors.E026.format(path=output))
    nlp = spacy.blank(lang)
    if sentencizer:
        nlp.add_pipe("sentencizer")
    nlp.add_pipe(
        "long_ner",
        config={
            "decoding": decoding,
            "label_map": dict(label_map or {}),
            "model": {"name": checkpoint, "window": window, "stride": stride, "runtime": runtime},
        },
    )
    nlp.initialize()
    nlp.meta["name"] = name
    nlp.meta["version"] = version
    if runtime == "onnx":
        # `spacy package` writes these into the wheel's dependencies.
        nlp.meta["requirements"] = [*nlp.meta.get("requirements", []), "onnxruntime>=1.20"]
    nlp.to_disk(output)
    return nlp


def build_wheel(pipeline: Path, packages: Path) -> Path:
    """`spacy package PIPELINE PACKAGES --build wheel`; RETURNS the wheel."""
    import subprocess
    import sys

    packages.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "spacy", "package", str(pipeline), str(packages), "--build", "wheel", "--force"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"spacy package failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    wheels = sorted(packages.glob("*/dist/*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise RuntimeError(f"spacy package wrote no wheel under {packages}")
    return wheels[-1]


def parse_label_map(items) -> dict[str, str]:
    """FROM=TO pairs, as given on the command line."""
    mapping = {}
    for item in items or ():
        src, sep, dst = item.partition("=")
        if not sep or not src or not dst:
            raise SystemExit(f"--label-map takes FROM=TO pairs (e.g. PERSON=PER), got {item!r}")
        mapping[src] = dst
    return mapping


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        help="fine-tuned token-classification checkpoint: a folder written by save_pretrained, or a hub id",
    )
    parser.add_argument("output", type=Path, help="pipeline folder to write (new or empty)")
    parser.add_argument("--lang", default="en", help="spaCy language of the blank pipeline (its tokenizer)")
    parser.add_argument("--name", default="long_ner_pipeline", help="package name in meta.json")
    parser.add_argument("--version", default="0.0.1", help="package version in meta.json")
    parser.add_argument(
        "--window", type=int, default=None, help="wordpieces per window (default: the most the model takes)"
    )
    parser.add_argument("--stride", type=int, default=None, help="overlap of sliding windows (default: window // 8)")
    parser.add_argument("--sentencizer", action="store_true", help="add a sentencizer before long_ner")
    parser.add_argument(
        "--decoding",
        default="conlleval",
        choices=["conlleval", "viterbi"],
        help="viterbi: the best tag sequence valid under the labels' scheme (IOB2 checkpoints); "
        "keep conlleval for a checkpoint trained on IOB1 tags",
    )
    parser.add_argument(
        "--label-map",
        nargs="*",
        default=[],
        metavar="FROM=TO",
        help="rename entity types, e.g. PERSON=PER LOCATION=LOC",
    )
    parser.add_argument(
        "--runtime",
        default="torch",
        choices=["torch", "onnx"],
        help="onnx: export the ONNX graph into the pipeline and predict with ONNX Runtime (needs the [onnx] extra)",
    )
    parser.add_argument("--force", action="store_true", help="write into OUTPUT even where it holds files")
    parser.add_argument(
        "--package",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="also build a wheel with `spacy package` into FOLDER",
    )


def run(args: argparse.Namespace) -> int:
    nlp = import_checkpoint(
        args.checkpoint,
        args.output,
        lang=args.lang,
        name=args.name,
        version=args.version,
        window=args.window,
        stride=args.stride,
        sentencizer=args.sentencizer,
        decoding=args.decoding,
        label_map=parse_label_map(args.label_map),
        runtime=args.runtime,
        force=args.force,
    )
    pipe = nlp.get_pipe("long_ner")
    msg.good(
        f"Saved {args.output}: labels {pipe.labels}, window {pipe.state.window}, stride {pipe.state.stride}, "
        f"runtime {args.runtime}"
    )
    if args.package is not None:
        wheel = build_wheel(args.output, args.package)
        msg.good(f'Built {wheel}: pip install it, then spacy.load("{nlp.meta["lang"]}_{args.name}")')
    return 0
