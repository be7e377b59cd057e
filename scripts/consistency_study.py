"""Does making repeated mentions of a name in one document agree help?
Predicts each split once (gold tokens, the pipeline's own settings), then
scores the predictions (conlleval) as they are and after each post-process:

- `majority`: mentions of one document with the same text (case-folded)
  take the type with the largest summed entity score among them (a tie
  keeps each mention's own type);
- `propagate`: every other occurrence of a predicted name's exact words in
  the document, capitalized, outside any entity and not touching one,
  becomes an entity of that name's type (its first mention's);
- `majority_propagate`: `majority`, then `propagate`.

    python scripts/consistency_study.py training/minilm/model-best corpus metrics/minilm/consistency.json
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

from spacy.tokens import DocBin, Span
from wasabi import msg

from spacy_longner.evaluate import predict
from spacy_longner.pipeline_folder import load_pipeline
from spacy_longner.report import conlleval, doc_iob2
from spacy_longner.scoring import entity_scores

VARIANTS = ("none", "majority", "propagate", "majority_propagate")


def majority(doc, scores) -> list[tuple[int, int, str]]:
    votes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for ent, score in zip(doc.ents, scores):
        votes[ent.text.casefold()][ent.label_] += score
    out = []
    for ent in doc.ents:
        tally = votes[ent.text.casefold()]
        best = max(tally.values())
        winners = [label for label, v in tally.items() if v == best]
        out.append((ent.start, ent.end, ent.label_ if len(winners) > 1 else winners[0]))
    return out


def propagate(doc, ents: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    taken = [False] * len(doc)

    def take(s: int, e: int) -> None:  # the span and the token either side of it
        for i in range(max(s - 1, 0), min(e + 1, len(doc))):
            taken[i] = True

    for s, e, _ in ents:
        take(s, e)
    names: dict[tuple[str, ...], str] = {}
    for s, e, label in ents:
        names.setdefault(tuple(t.text for t in doc[s:e]), label)
    added = []
    words = [t.text for t in doc]
    for name, label in sorted(names.items(), key=lambda x: -len(x[0])):
        if not name[0][:1].isupper():
            continue
        n = len(name)
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) == name and not any(taken[i : i + n]):
                added.append((i, i + n, label))
                take(i, i + n)
    return sorted(ents + added)


def as_iob2(doc, ents: list[tuple[int, int, str]]) -> list[str]:
    copy = doc.copy()
    copy.ents = [Span(copy, s, e, label=label) for s, e, label in ents]
    return doc_iob2(copy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--splits", nargs="+", default=["dev", "test"])
    args = parser.parse_args()
    nlp = load_pipeline(args.pipeline)
    key = nlp.get_pipe("long_ner").cfg["spans_key"]
    table: dict[str, dict[str, dict]] = {}
    for split in args.splits:
        gold_docs = list(DocBin().from_disk(args.corpus / f"{split}.spacy").get_docs(nlp.vocab))
        pred_docs, _ = predict(nlp, gold_docs, batch_size=64)
        gold = [doc_iob2(d) for d in gold_docs]
        variants: dict[str, list[list[str]]] = {name: [] for name in VARIANTS}
        for doc in pred_docs:
            # every entity is long_ner's here, so each has a score
            voted = majority(doc, entity_scores(doc, key))
            variants["none"].append(doc_iob2(doc))
            own = [(e.start, e.end, e.label_) for e in doc.ents]
            variants["propagate"].append(as_iob2(doc, propagate(doc, own)))
            variants["majority"].append(as_iob2(doc, voted))
            variants["majority_propagate"].append(as_iob2(doc, propagate(doc, voted)))
        table[split] = {}
        for name, pred in variants.items():
            s = conlleval(gold, pred)
            table[split][name] = {k: s[k] for k in ("precision", "recall", "f1", "found", "correct")}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"pipeline": args.pipeline, "f1": table}, indent=2), encoding="utf8")
    rows = [(name, *(f"{table[s][name]['f1']:.2f}" for s in args.splits)) for name in VARIANTS]
    msg.table(rows, header=("post-process", *args.splits), aligns=("l",) + ("r",) * len(args.splits))


if __name__ == "__main__":
    main()
