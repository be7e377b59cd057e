"""Fit calibrated entity confidences on a dev corpus and write the pipeline
with them:

    spacy-longner calibrate training/model-best corpus/dev.spacy training/model-calibrated

Each entity the pipeline predicts on the corpus gets its probability under
the model (the chance that its start, end and type are all in the tag
sequence, by forward-backward under the decoding's rules) and whether it
is exactly right (the conlleval rule). An isotonic map from the one to the
other is fitted over all labels (with --per-type N, also one per label with
at least N predictions), and saved in the long_ner component's folder
(`calibration.json`). The written pipeline's entity scores are then
calibrated probabilities of being right, in doc.spans[spans_key].attrs["scores"],
annotate's and Spark's `score`, on torch and ONNX Runtime alike; its
`threshold` settings read "keep if P(correct) >= t".

Needs the `evaluate` extra (scikit-learn fits the map).
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
from wasabi import msg

from .errors import Errors
from .pipeline_folder import load_pipeline


def long_ner_names(nlp) -> list[str]:
    """The names of the pipeline's long_ner components."""
    return [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == "long_ner"]


def find_long_ner(nlp, pipeline: str, component: Optional[str] = None):
    """The long_ner component named `component` (by default the first), or E048."""
    names = long_ner_names(nlp)
    if component is not None:
        names = [n for n in names if n == component]
    if not names:
        raise ValueError(Errors.E048.format(name=pipeline, components=", ".join(nlp.pipe_names) or "none"))
    return nlp.get_pipe(names[0])


def entity_outcomes(
    pred_docs: Sequence, gold_docs: Sequence, spans_key: str
) -> tuple[np.ndarray, list[str], np.ndarray, int]:
    """Each predicted entity's score and label and whether it is exactly a
    gold entity (start, end, label: the conlleval rule), from the span group
    `spans_key` of the predicted docs and doc.ents of the gold ones.

    RETURNS (Tuple[np.ndarray, List[str], np.ndarray, int]): scores, labels,
        correct, the number of gold entities."""
    scores: list[float] = []
    labels: list[str] = []
    correct: list[bool] = []
    n_gold = 0
    for pred, gold in zip(pred_docs, gold_docs):
        truth = {(e.start, e.end, e.label_) for e in gold.ents}
        n_gold += len(truth)
        group = pred.spans.get(spans_key)
        if group is None:
            continue
        group_scores = group.attrs.get("scores", [])
        for span, score in zip(group, group_scores):
            scores.append(float(score))
            labels.append(span.label_)
            correct.append((span.start, span.end, span.label_) in truth)
    return np.asarray(scores, dtype=np.float64), labels, np.asarray(correct, dtype=bool), n_gold


def read_gold(path: Path, vocab) -> list:
    """The gold docs of a .spacy file (or of `dev.spacy` in a folder), E047
    where there are none or they have no entities."""
    from spacy.tokens import DocBin

    path = Path(path)
    if path.is_dir():
        path = path / "dev.spacy"
    if not path.is_file():
        raise ValueError(Errors.E047.format(path=path, problem="the file does not exist"))
    try:
        docs = list(DocBin().from_disk(path).get_docs(vocab))
    except (OSError, ValueError) as e:
        raise ValueError(Errors.E047.format(path=path, problem=f"it is not a .spacy file ({e})")) from e
    if not any(d.ents for d in docs):
        raise ValueError(Errors.E047.format(path=path, problem=f"its {len(docs)} documents have no gold entities"))
    return docs


def calibrate_pipeline(
    pipeline: str,
    corpus: Path,
    output: Path,
    *,
    per_type_min: Optional[int] = None,
    batch_size: int = 32,
    component: Optional[str] = None,
    force: bool = False,
) -> dict[str, Any]:
    """Fit the confidence map of the pipeline's long_ner on `corpus` and save
    the pipeline, with it, to `output`. RETURNS a summary: counts, and on
    the corpus the ECE and Brier score of the uncalibrated entity
    probability and (in-sample) of the calibrated one."""
    from .calibration import GLOBAL, Calibration, calibration_report, fit_calibration
    from .evaluate import predict, require_extra

    require_extra()
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not force:
        raise ValueError(Errors.E026.format(path=output))
    nlp = load_pipeline(pipeline)
    pipe = find_long_ner(nlp, pipeline, component)
    gold_docs = read_gold(corpus, nlp.vocab)
    saved = (pipe.calibration, pipe.cfg["calibrated"], pipe.cfg["threshold"], pipe.cfg["thresholds"])
    # The identity map: scores are the uncalibrated entity probabilities,
    # and nothing is thresholded away.
    pipe.calibration = Calibration(maps={GLOBAL: ([0.0, 1.0], [0.0, 1.0])})
    pipe.cfg.update(calibrated=True, threshold=0.0, thresholds={})
    try:
        pred_docs, _ = predict(nlp, gold_docs, batch_size)
    finally:
        pipe.calibration, pipe.cfg["calibrated"], pipe.cfg["threshold"], pipe.cfg["thresholds"] = saved
    scores, labels, correct, n_gold = entity_outcomes(pred_docs, gold_docs, pipe.cfg["spans_key"])
    if len(scores) == 0:
        raise ValueError(Errors.E047.format(path=corpus, problem="the pipeline predicts no entities on it"))
    fitted = fit_calibration(scores, labels, correct, per_type_min=per_type_min)
    fitted.info["corpus"] = Path(corpus).name
    types = sorted(set(labels))
    calibrated = fitted.apply_labels(scores, labels)
    before = calibration_report(scores, labels, correct, n_gold)
    after = calibration_report(calibrated, labels, correct, n_gold)
    fitted.info["fit_corpus_uncalibrated"] = {k: before[k] for k in ("ece_width", "ece_mass", "brier")}
    pipe.calibration = fitted
    nlp.to_disk(output)
    rows = [
        ("all", len(scores), f"{correct.mean():.3f}", f"{before['ece_width']:.4f}", f"{after['ece_width']:.4f}", GLOBAL)
    ]
    for label in types:
        chosen = np.array([lab == label for lab in labels])
        own = label in fitted.maps
        rows.append(
            (
                label,
                int(chosen.sum()),
                f"{correct[chosen].mean():.3f}",
                f"{before['per_type'][label]['ece_width']:.4f}" if label in before["per_type"] else "-",
                f"{after['per_type'][label]['ece_width']:.4f}" if label in after["per_type"] else "-",
                label if own else GLOBAL,
            )
        )
    msg.table(
        rows,
        header=("label", "entities", "correct", "ECE before", "ECE in-sample", "map"),
        aligns=("l", "r", "r", "r", "r", "l"),
    )
    msg.good(f"Calibrated pipeline written to {output} (map fitted on {len(scores)} entities of {corpus})")
    return {"entities": len(scores), "gold": n_gold, "before": before, "in_sample": after, "info": fitted.info}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="pipeline folder or installed package name")
    parser.add_argument("corpus", type=Path, help="a .spacy file with gold entities (a folder: its dev.spacy)")
    parser.add_argument("output", type=Path, help="folder for the calibrated pipeline")
    parser.add_argument(
        "--per-type",
        type=int,
        default=None,
        metavar="N",
        help="also fit a map per label with at least N predictions (default: one map for all labels)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--component", default=None, help="the long_ner component's name, if not the first")
    parser.add_argument("--force", action="store_true", help="write into an output folder that holds files")


def run(args: argparse.Namespace) -> int:
    calibrate_pipeline(
        args.model,
        args.corpus,
        args.output,
        per_type_min=args.per_type,
        batch_size=args.batch_size,
        component=args.component,
        force=args.force,
    )
    return 0
