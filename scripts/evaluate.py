"""Evaluate a pipeline on CoNLL splits and write the seeds' report:

    metrics/<split>.txt   token-level classification report + conlleval table
    metrics/<split>.json  the same numbers, plus seqeval's scores as a check
    metrics/<split>.html  displaCy: a sample of documents, gold vs predicted,
                          errors marked
    metrics/<split>_confusion.png  entity-type confusion over tokens

    python scripts/evaluate.py training/model-best corpus metrics --splits dev test test_conllpp
"""

import argparse
import json
import time
from pathlib import Path

import spacy
from spacy import displacy
from spacy.tokens import DocBin
from wasabi import msg

from spacy_longner.corpus import bare_copy
from spacy_longner.report import conlleval, doc_iob2, format_conlleval, token_confusion, token_report

ERROR_COLORS = {"MISSED": "#ff9a9a", "WRONG": "#ffc04d"}


def predict(nlp, gold_docs, batch_size: int):
    inputs = [bare_copy(nlp.vocab, d) for d in gold_docs]
    start = time.perf_counter()
    docs = list(nlp.pipe(inputs, batch_size=batch_size))
    return docs, time.perf_counter() - start


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
        pages.append({"text": g.text, "title": f"doc {i}: gold ({len(gold - pred)} missed)",
                      "ents": [{"start": s, "end": e, "label": lab if (s, e, lab) in pred else f"MISSED {lab}"} for s, e, lab in sorted(gold)]})
        pages.append({"text": p.text, "title": f"doc {i}: predicted ({len(pred - gold)} wrong)",
                      "ents": [{"start": s, "end": e, "label": lab if (s, e, lab) in gold else f"WRONG {lab}"} for s, e, lab in sorted(pred)]})
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
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="share of gold row")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="pipeline folder or installed package name")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--splits", nargs="+", default=["dev", "test", "test_conllpp"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sample", type=int, default=5, help="documents in the HTML page")
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args()
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    nlp = spacy.load(args.model)
    args.output.mkdir(parents=True, exist_ok=True)
    for split in args.splits:
        path = args.corpus / f"{split}.spacy"
        if not path.exists():
            msg.warn(f"{path} not found, skipped")
            continue
        gold_docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
        pred_docs, seconds = predict(nlp, gold_docs, args.batch_size)
        gold = [doc_iob2(d) for d in gold_docs]
        pred = [doc_iob2(d) for d in pred_docs]
        scores = conlleval(gold, pred)
        text_report, data_report = token_report(gold, pred)
        check = seqeval_scores(gold, pred)
        agree = all(abs(check[k] - scores[k]) < 1e-9 for k in ("precision", "recall", "f1"))
        n_words = sum(len(d) for d in gold_docs)
        table = format_conlleval(scores)
        (args.output / f"{split}.txt").write_text(
            f"# {split}: {len(gold_docs)} documents, {n_words} tokens, model {args.model}\n\n"
            f"{text_report}\n\n{table}\n", encoding="utf8")
        result = {"split": split, "documents": len(gold_docs), "conlleval": scores,
                  "token_report": data_report, "seqeval": check, "seqeval_agrees": agree,
                  "seconds": seconds, "words_per_second": n_words / seconds if seconds else None}
        (args.output / f"{split}.json").write_text(json.dumps(result, indent=2), encoding="utf8")
        (args.output / f"{split}.html").write_text(render_sample(gold_docs, pred_docs, args.sample), encoding="utf8")
        types, matrix = token_confusion(gold, pred)
        plot_confusion(types, matrix, args.output / f"{split}_confusion.png", f"{split}: token entity types")
        print(f"\n== {split} ({n_words / seconds:.0f} words/s) ==\n{text_report}\n{table}")
        if not agree:
            msg.fail(f"conlleval table and seqeval disagree on {split}: {check}", exits=1)


if __name__ == "__main__":
    main()
