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
from typing import Any, Optional

from wasabi import msg

from .checkpoint import GENERIC_LABEL
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
    folder that holds files is an error (E026) unless `force`.

    label_map: FROM=TO renames. Where the checkpoint's labels are generic
    (LABEL_0, LABEL_1, ... with a trained head), FROM names those labels and
    TO the tag each stands for (O, B-PER, ...; every one of them, E042), and
    the saved checkpoint carries the tags; otherwise FROM is an entity type
    of the checkpoint (E043 where it is none), renamed in doc.ents."""
    import spacy

    output = Path(output)
    if output.exists() and any(output.iterdir()) and not force:
        raise ValueError(Errors.E026.format(path=output))
    mapping = dict(label_map or {})
    tag_map = {k: v for k, v in mapping.items() if GENERIC_LABEL.match(k)}
    type_map = {k: v for k, v in mapping.items() if k not in tag_map}
    nlp = spacy.blank(lang)
    if sentencizer:
        nlp.add_pipe("sentencizer")
    pipe: Any = nlp.add_pipe(
        "long_ner",
        config={
            "decoding": decoding,
            "label_map": type_map,
            "model": {"name": checkpoint, "window": window, "stride": stride, "runtime": runtime},
        },
    )
    if tag_map:
        name_generic_labels(pipe, checkpoint, tag_map)
    nlp.initialize()
    types = pipe.tagset.types
    for key in type_map:
        if key not in types:
            raise ValueError(Errors.E043.format(key=key, types=list(types), labels=pipe.model_labels, example=types[0]))
    nlp.meta["name"] = name
    nlp.meta["version"] = version
    if runtime == "onnx":
        # `spacy package` writes these into the wheel's dependencies.
        nlp.meta["requirements"] = [*nlp.meta.get("requirements", []), "onnxruntime>=1.20"]
    nlp.to_disk(output)
    return nlp


def name_generic_labels(pipe, checkpoint: str, tag_map: dict[str, str]) -> None:
    """Load the checkpoint into `pipe` with its generic labels (LABEL_0,
    ...) replaced by the tags `tag_map` gives them, keeping its trained head."""
    from .checkpoint import load_checkpoint

    state = load_checkpoint(pipe.model, checkpoint, component=pipe.name, allow_no_head=True)
    labels = state.labels
    problem = None
    if not all(GENERIC_LABEL.match(str(label)) for label in labels):
        problem = "its labels are not generic; rename entity types instead (e.g. --label-map PER=PERSON)"
    elif not state.head_weights:
        problem = "it has no trained classification head, so its labels mean nothing yet"
    elif set(tag_map) != set(labels):
        missing, unknown = sorted(set(labels) - set(tag_map)), sorted(set(tag_map) - set(labels))
        parts = [f"no tag for {missing}"] if missing else []
        problem = ", ".join(parts + ([f"no such labels {unknown}"] if unknown else []))
    if problem:
        raise ValueError(Errors.E042.format(given=", ".join(sorted(tag_map)), problem=problem, labels=labels))
    config = state.hf_model.config
    config.id2label = {i: tag_map[label] for i, label in enumerate(labels)}
    config.label2id = {tag: i for i, tag in config.id2label.items()}
    state.has_head = True
    pipe._loaded()


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
        help="rename entity types, e.g. PERSON=PER LOCATION=LOC; for a checkpoint whose labels are generic, "
        "name the tag of each: LABEL_0=O LABEL_1=B-PER LABEL_2=I-PER",
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
