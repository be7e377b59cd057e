"""Evaluate a pipeline on CoNLL splits and write the seeds' report:

    metrics/<split>.txt   token-level classification report + conlleval table
    metrics/<split>.json  the same numbers, plus seqeval's scores as a check
    metrics/<split>.html  displaCy: a sample of documents, gold vs predicted,
                          errors marked
    metrics/<split>_confusion.png  entity-type confusion over tokens
    metrics/<split>_reliability.png  the entity scores' reliability diagram
                          (calibration measures in <split>.json "confidence":
                          ECE, Brier, per type, precision/recall against a
                          threshold)
    metrics/<split>_raw.json  raw-text F1: the documents given to the pipeline
                          as plain strings (one line per document, one line
                          per sentence, hard-wrapped at 70 columns), scored by
                          exact character spans; and what spaCy's own reader
                          gives (`python -m spacy evaluate`)

    spacy-longner evaluate training/model-best corpus metrics --splits dev test test_conllpp

CORPUS is a folder of .spacy files named after the splits (as the project's
`convert` step writes them). Needs the `evaluate` extra (seqeval,
scikit-learn, matplotlib).
"""

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from wasabi import msg

from .errors import Errors, reason
from .pipeline_folder import load_pipeline

ERROR_COLORS = {"MISSED": "#ff9a9a", "WRONG": "#ffc04d"}


def require_extra() -> None:
    """The `evaluate` extra's packages, or a coded error naming the install line."""
    try:
        import matplotlib  # noqa: F401
        import seqeval  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ImportError(
            Errors.E025.format(command="spacy-longner evaluate", extra="evaluate", reason=reason(e))
        ) from e


def predict(nlp, gold_docs, batch_size: int):
    from .corpus import bare_copy

    inputs = [bare_copy(nlp.vocab, d) for d in gold_docs]
    start = time.perf_counter()
    docs = list(nlp.pipe(inputs, batch_size=batch_size))
    return docs, time.perf_counter() - start


RAW_LAYOUTS = ("line_per_document", "line_per_sentence", "wrapped_70")


def raw_text(gold_doc, layout: str, width: int = 70):
    """The gold doc as a user's plain string, and its gold entities as
    (start_char, end_char, label) in that string. Words are joined by one
    space; sentences by a space, a line break, or (wrapped_70) the whole
    document is hard-wrapped at `width` columns, a line break replacing the
    space wherever a word would pass the column."""
    sent_start = {s.start for s in gold_doc.sents} if gold_doc.has_annotation("SENT_START") else {0}
    parts, offsets, line_len, pos = [], [], 0, 0
    for i, tok in enumerate(gold_doc):
        if i:
            if (
                layout == "line_per_sentence"
                and i in sent_start
                or layout == "wrapped_70"
                and line_len + 1 + len(tok.text) > width
            ):
                sep = "\n"
            else:
                sep = " "
            parts.append(sep)
            pos += 1
            line_len = 0 if sep == "\n" else line_len + 1
        offsets.append(pos)
        parts.append(tok.text)
        pos += len(tok.text)
        line_len += len(tok.text)
    ents = {(offsets[e.start], offsets[e.end - 1] + len(gold_doc[e.end - 1].text), e.label_) for e in gold_doc.ents}
    return "".join(parts), ents


def prf(gold_sets, pred_sets):
    tp = sum(len(g & p) for g, p in zip(gold_sets, pred_sets))
    n_gold = sum(len(g) for g in gold_sets)
    n_pred = sum(len(p) for p in pred_sets)
    precision = 100 * tp / n_pred if n_pred else 0.0
    recall = 100 * tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def raw_text_scores(nlp, gold_docs, batch_size: int):
    """Raw-text F1 per layout: plain strings through nlp.pipe, exact character spans."""
    out = {}
    for layout in RAW_LAYOUTS:
        texts, gold = zip(*(raw_text(d, layout) for d in gold_docs))
        pred = [
            {(e.start_char, e.end_char, e.label_) for e in doc.ents} for doc in nlp.pipe(texts, batch_size=batch_size)
        ]
        out[layout] = prf(gold, pred)
    return out


def spacy_reader_scores(nlp, path: Path):
    """What `python -m spacy evaluate PIPELINE path` reports: spaCy's Corpus
    re-tokenizes each document's text and gives no sentence boundaries."""
    from spacy.training import Corpus

    scores = nlp.evaluate(list(Corpus(path)(nlp)))
    return {k: 100 * scores[k] for k in ("ents_p", "ents_r", "ents_f")}


def seqeval_scores(gold, pred):
    from seqeval.metrics import f1_score, precision_score, recall_score

    return {
        "precision": 100 * precision_score(gold, pred),
        "recall": 100 * recall_score(gold, pred),
        "f1": 100 * f1_score(gold, pred),
    }


def render_sample(gold_docs, pred_docs, n: int) -> str:
    """Per doc: the gold entities with the missed ones marked, then the
    predicted ones with the wrong ones marked."""
    pages = []
    for i, (g, p) in enumerate(zip(gold_docs[:n], pred_docs[:n])):
        gold = {(e.start_char, e.end_char, e.label_) for e in g.ents}
        pred = {(e.start_char, e.end_char, e.label_) for e in p.ents}
        pages.append(
            {
                "text": g.text,
                "title": f"doc {i}: gold ({len(gold - pred)} missed)",
                "ents": [
                    {"start": s, "end": e, "label": lab if (s, e, lab) in pred else f"MISSED {lab}"}
                    for s, e, lab in sorted(gold)
                ],
            }
        )
        pages.append(
            {
                "text": p.text,
                "title": f"doc {i}: predicted ({len(pred - gold)} wrong)",
                "ents": [
                    {"start": s, "end": e, "label": lab if (s, e, lab) in gold else f"WRONG {lab}"}
                    for s, e, lab in sorted(pred)
                ],
            }
        )
    from spacy import displacy

    colors = {f"{kind} {t}": c for kind, c in ERROR_COLORS.items() for t in ("PER", "LOC", "ORG", "MISC")}
    return displacy.render(pages, style="ent", manual=True, page=True, options={"colors": colors})


def plot_confusion(types, matrix, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(types)), types)
    ax.set_yticks(range(len(types)), types)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    for i in range(len(types)):
        for j in range(len(types)):
            ax.text(
                j,
                i,
                f"{matrix[i, j]}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    fig.colorbar(im, ax=ax, label="share of gold row")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(report: dict, path: Path, title: str) -> None:
    """Rate of exactly right entities against their mean score, per
    equal-width bin, over the diagonal, with the bins' counts below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [b for b in report["bins_width"] if b["count"]]
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    ax.bar(
        [(b["low"] + b["high"]) / 2 for b in bins],
        [b["accuracy"] for b in bins],
        width=0.09,
        color="#4c72b0",
        alpha=0.8,
        label="rate correct",
    )
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color="#dd8452", label="per bin")
    ax.set_ylabel("exactly right (span and type)")
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}\nECE {report['ece_width']:.4f}, Brier {report['brier']:.4f}")
    ax.legend(loc="upper left", fontsize=8)
    ax_n.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["count"] for b in bins], width=0.09, color="#999999")
    ax_n.set_yscale("log")
    ax_n.set_xlabel("entity score")
    ax_n.set_ylabel("entities")
    ax_n.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_confidence(report: dict, calibrated: bool) -> str:
    """The calibration measures as text: overall, per type, and the threshold table."""
    kind = "calibrated P(correct)" if calibrated else "uncalibrated (mean tag probability)"
    lines = [
        f"# entity scores: {kind}",
        f"entities {report['predicted']}, exactly right {report['correct']}, "
        f"mean score {report['mean_confidence']:.4f}",
        f"ECE (10 equal-width bins) {report['ece_width']:.4f}, ECE (10 equal-mass bins) "
        f"{report['ece_mass']:.4f}, Brier {report['brier']:.4f}",
    ]
    for label, m in report["per_type"].items():
        lines.append(
            f"  {label:<6} entities {m['predicted']:>6}  ECE {m['ece_width']:.4f} / {m['ece_mass']:.4f}  "
            f"Brier {m['brier']:.4f}"
        )
    lines.append("threshold   kept  precision  recall     F1")
    for row in report["thresholds"]:
        t, kept, p, r, f = (row[k] for k in ("threshold", "kept", "precision", "recall", "f1"))
        lines.append(f"{t:>9.2f} {kept:>6} {p:>10.2f} {r:>7.2f} {f:>6.2f}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="pipeline folder or installed package name")
    parser.add_argument("corpus", type=Path, help="folder of <split>.spacy files")
    parser.add_argument("output", type=Path, help="folder for the reports")
    parser.add_argument("--splits", nargs="+", default=["dev", "test", "test_conllpp"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sample", type=int, default=5, help="documents in the HTML page")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--no-raw", action="store_true", help="skip the raw-text and spaCy-reader scores")
    parser.add_argument(
        "--setting",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override long_ner's component settings, e.g. decoding=conlleval (values as JSON, else strings)",
    )
    parser.add_argument(
        "--model-setting",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override long_ner's model settings, e.g. context=document cut_at_sentences=false "
        "(values as JSON, else strings)",
    )


def parse_settings(items) -> dict[str, object]:
    """KEY=VALUE pairs, values read as JSON where they parse, else strings."""
    out: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    evaluate_splits(
        args.model,
        args.corpus,
        args.output,
        splits=args.splits,
        batch_size=args.batch_size,
        sample=args.sample,
        gpu_id=args.gpu_id,
        raw=not args.no_raw,
        settings=parse_settings(args.setting),
        model_settings=parse_settings(args.model_setting),
    )
    return 0


def evaluate_splits(
    model: str,
    corpus: Path,
    output: Path,
    *,
    splits: Sequence[str] = ("dev", "test", "test_conllpp"),
    batch_size: int = 32,
    sample: int = 5,
    gpu_id: int = -1,
    raw: bool = True,
    settings: Optional[dict[str, object]] = None,
    model_settings: Optional[dict[str, object]] = None,
) -> dict[str, dict]:
    """Write the seeds' reports for each split found in `corpus` to `output`;
    RETURNS the conlleval scores by split. `settings` and `model_settings`
    override long_ner's component and model settings for this run. A split
    whose file is missing is skipped with a warning."""
    require_extra()
    import spacy
    from spacy.tokens import DocBin

    from .calibrate import entity_outcomes, find_long_ner
    from .calibration import calibration_report
    from .report import conlleval, doc_iob2, format_conlleval, token_confusion, token_report

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    overrides = dict(settings or {})
    if model_settings:
        overrides["model"] = dict(model_settings)
    found = [split for split in splits if (corpus / f"{split}.spacy").exists()]
    if not found:
        raise ValueError(Errors.E044.format(path=corpus, splits=", ".join(f"{s}.spacy" for s in splits)))
    nlp = load_pipeline(model, {"components": {"long_ner": overrides}} if overrides else None)
    pipe = find_long_ner(nlp, model)
    calibrated = pipe.calibration is not None and pipe.cfg["calibrated"]
    output.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for split in splits:
        path = corpus / f"{split}.spacy"
        if not path.exists():
            msg.warn(f"{path} not found, skipped")
            continue
        gold_docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
        pred_docs, seconds = predict(nlp, gold_docs, batch_size)
        gold = [doc_iob2(d) for d in gold_docs]
        pred = [doc_iob2(d) for d in pred_docs]
        scores = conlleval(gold, pred)
        results[split] = scores
        text_report, data_report = token_report(gold, pred)
        check = seqeval_scores(gold, pred)
        agree = all(abs(check[k] - scores[k]) < 1e-9 for k in ("precision", "recall", "f1"))
        n_words = sum(len(d) for d in gold_docs)
        table = format_conlleval(scores)
        ent_scores, ent_labels, ent_correct, n_gold = entity_outcomes(pred_docs, gold_docs, pipe.cfg["spans_key"])
        confidence = {"calibrated": calibrated, **calibration_report(ent_scores, ent_labels, ent_correct, n_gold)}
        confidence_text = format_confidence(confidence, calibrated)
        (output / f"{split}.txt").write_text(
            f"# {split}: {len(gold_docs)} documents, {n_words} tokens, model {model}"
            + (f", settings {json.dumps(overrides, sort_keys=True)}" if overrides else "")
            + f"\n\n{text_report}\n\n{table}\n\n{confidence_text}\n",
            encoding="utf8",
        )
        result = {
            "split": split,
            "settings": overrides,
            "documents": len(gold_docs),
            "conlleval": scores,
            "token_report": data_report,
            "seqeval": check,
            "seqeval_agrees": agree,
            "confidence": confidence,
            "seconds": seconds,
            "words_per_second": n_words / seconds if seconds else None,
        }
        (output / f"{split}.json").write_text(json.dumps(result, indent=2), encoding="utf8")
        (output / f"{split}.html").write_text(render_sample(gold_docs, pred_docs, sample), encoding="utf8")
        types, matrix = token_confusion(gold, pred)
        plot_confusion(types, matrix, output / f"{split}_confusion.png", f"{split}: token entity types")
        if len(ent_scores):
            kind = "calibrated" if calibrated else "uncalibrated"
            plot_reliability(confidence, output / f"{split}_reliability.png", f"{split}: entity scores, {kind}")
        print(f"\n== {split} ({n_words / seconds:.0f} words/s) ==\n{text_report}\n{table}\n{confidence_text}")
        if raw:
            raw_scores = {
                "gold_tokens_f1": scores["f1"],
                "raw_text": raw_text_scores(nlp, gold_docs, batch_size),
                "spacy_evaluate": spacy_reader_scores(nlp, path),
            }
            (output / f"{split}_raw.json").write_text(json.dumps(raw_scores, indent=2), encoding="utf8")
            lines = [f"gold tokens and sentences: F1 {scores['f1']:.2f}"]
            lines += [
                f"raw text, {layout}: F1 {v['f1']:.2f} (P {v['precision']:.2f}, R {v['recall']:.2f})"
                for layout, v in raw_scores["raw_text"].items()
            ]
            lines.append(
                f"python -m spacy evaluate (spaCy's reader): ents_f {raw_scores['spacy_evaluate']['ents_f']:.2f}"
            )
            with (output / f"{split}.txt").open("a", encoding="utf8") as f:
                f.write("\n# plain strings, exact character spans\n" + "\n".join(lines) + "\n")
            print("\n".join(lines))
        if not agree:
            msg.fail(f"conlleval table and seqeval disagree on {split}: {check}", exits=1)
    return results
