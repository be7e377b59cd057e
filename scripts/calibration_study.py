"""Which calibration map? Each entity's uncalibrated scores (the mean tag
probability, and the entity probability by forward-backward) on dev, test
and CoNLL++, then maps from the entity probability to P(correct): isotonic
or Platt (logistic on the logit), per label or one for all. Each map is
judged on dev by 5-fold cross-validation over documents (fit on four
fifths, measured on the fifth), and, fitted on the whole of dev, measured on
the test splits. The choice is made on dev; the test columns show what it
gives.

    python scripts/calibration_study.py training/minilm/model-best corpus metrics/minilm/calibration_study.json
"""

import argparse
import json
from pathlib import Path

import numpy as np
import spacy
from spacy.tokens import DocBin

from spacy_longner.calibrate import entity_outcomes, find_long_ner
from spacy_longner.calibration import (
    GLOBAL,
    Calibration,
    brier_score,
    expected_calibration_error,
    fit_calibration,
)
from spacy_longner.evaluate import predict

METHODS = ("isotonic_per_type", "isotonic_global", "platt_per_type", "platt_global")


def outcomes(nlp, pipe, docs, mode: str):
    """Per entity: score, label, correct, document index."""
    pipe.calibration = Calibration(maps={GLOBAL: ([0.0, 1.0], [0.0, 1.0])}) if mode == "marginal" else None
    pred, _ = predict(nlp, docs, 32)
    rows = []
    for i, (p, g) in enumerate(zip(pred, docs)):
        s, lab, c, _ = entity_outcomes([p], [g], pipe.cfg["spans_key"])
        rows += [(float(a), b, bool(d), i) for a, b, d in zip(s, lab, c)]
    return rows


def fit(method: str, scores, labels, correct):
    """A function from (scores, labels) to calibrated probabilities."""
    if method.startswith("isotonic"):
        fitted = fit_calibration(scores, labels, correct, per_type_min=100 if method.endswith("per_type") else None)
        return fitted.apply_labels
    from sklearn.linear_model import LogisticRegression

    def logit(s):
        s = np.clip(np.asarray(s, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(s / (1 - s))[:, None]

    def platt(s, c):
        model = LogisticRegression(C=1e6).fit(logit(s), c)
        return lambda x: model.predict_proba(logit(x))[:, 1]

    overall = platt(scores, correct)
    own = {}
    if method.endswith("per_type"):
        for label in set(labels):
            chosen = np.asarray([lab == label for lab in labels])
            if chosen.sum() >= 100 and 0 < correct[chosen].sum() < chosen.sum():
                own[label] = platt(scores[chosen], correct[chosen])

    def apply(s, lab):
        out = overall(s)
        for label, f in own.items():
            chosen = np.asarray([x == label for x in lab])
            if chosen.any():
                out[chosen] = f(s[chosen])
        return out

    return apply


def measures(p, c, labels):
    out = {"ece_width": expected_calibration_error(p, c), "ece_mass": expected_calibration_error(p, c, mass=True)}
    out["brier"] = brier_score(p, c)
    for label in sorted(set(labels)):
        chosen = np.asarray([lab == label for lab in labels])
        if chosen.sum() >= 100:
            out[f"ece_{label}"] = expected_calibration_error(p[chosen], c[chosen])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    nlp = spacy.load(args.pipeline)
    pipe = find_long_ner(nlp, args.pipeline)
    data = {}
    for split in ("dev", "test", "test_conllpp"):
        docs = list(DocBin().from_disk(args.corpus / f"{split}.spacy").get_docs(nlp.vocab))
        marginal = outcomes(nlp, pipe, docs, "marginal")
        mean = outcomes(nlp, pipe, docs, "mean")
        assert [(r[1], r[2], r[3]) for r in marginal] == [(r[1], r[2], r[3]) for r in mean]
        data[split] = {
            "marginal": np.array([r[0] for r in marginal]),
            "mean": np.array([r[0] for r in mean]),
            "labels": [r[1] for r in marginal],
            "correct": np.array([r[2] for r in marginal]),
            "doc": np.array([r[3] for r in marginal]),
        }
    result: dict = {"pipeline": args.pipeline, "folds": args.folds, "uncalibrated": {}, "dev_cv": {}, "fit_on_dev": {}}
    for split, d in data.items():
        result["uncalibrated"][split] = {
            kind: measures(d[kind], d["correct"], d["labels"]) for kind in ("mean", "marginal")
        }
    dev = data["dev"]
    rng = np.random.default_rng(0)
    fold_of_doc = rng.permutation(int(dev["doc"].max()) + 1) % args.folds
    fold = fold_of_doc[dev["doc"]]
    for method in METHODS:
        p = np.zeros(len(dev["correct"]))
        for k in range(args.folds):
            train, held = fold != k, fold == k
            f = fit(
                method, dev["marginal"][train], [dev["labels"][i] for i in np.flatnonzero(train)], dev["correct"][train]
            )
            p[held] = f(dev["marginal"][held], [dev["labels"][i] for i in np.flatnonzero(held)])
        result["dev_cv"][method] = measures(p, dev["correct"], dev["labels"])
        f = fit(method, dev["marginal"], dev["labels"], dev["correct"])
        result["fit_on_dev"][method] = {
            split: measures(f(d["marginal"], d["labels"]), d["correct"], d["labels"]) for split, d in data.items()
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf8")
    print(
        "uncalibrated ECE (width): "
        + ", ".join(
            f"{split} mean {v['mean']['ece_width']:.4f} marginal {v['marginal']['ece_width']:.4f}"
            for split, v in result["uncalibrated"].items()
        )
    )
    for method in METHODS:
        cv = result["dev_cv"][method]
        test = result["fit_on_dev"][method]["test"]
        print(
            f"{method:<18} dev CV ECE {cv['ece_width']:.4f} Brier {cv['brier']:.4f} | "
            f"test ECE {test['ece_width']:.4f} Brier {test['brier']:.4f}"
        )


if __name__ == "__main__":
    main()
