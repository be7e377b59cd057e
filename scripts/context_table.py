"""Does document context pay? Dev F1 (conlleval, gold tokens, Viterbi) of
trained pipelines predicting with each amount of context: a sentence alone,
a sentence with 16 or 64 wordpieces of its document a side, and
whole-document windows of 254 or 510 wordpieces cut where sentences start.
Nothing is retrained; each row is `spacy-longner evaluate` with the model
settings named.

    python scripts/context_table.py metrics/context_table.json sentences=training/minilm_sentences/model-best \\
        chunks=training/minilm_chunks/model-best --corpus corpus --splits dev
"""

import argparse
import json
from pathlib import Path

from wasabi import msg

from spacy_longner.evaluate import evaluate_splits

SETTINGS = {
    "sentence": {"context": "sentence", "pack": 0},
    "context_16": {"context": "sentence_context", "context_size": 16, "pack": 0},
    "context_64": {"context": "sentence_context", "context_size": 64, "pack": 0},
    "document_254": {"context": "document", "window": 254, "cut_at_sentences": True},
    "document_510": {"context": "document", "window": None, "cut_at_sentences": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="JSON file for the table")
    parser.add_argument("pipelines", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--splits", nargs="+", default=["dev"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    table: dict[str, dict] = {"splits": args.splits, "settings": {k: SETTINGS[k] for k in args.settings}, "f1": {}}
    reports = args.output.with_suffix("")
    for item in args.pipelines:
        name, _, path = item.partition("=")
        table["f1"][name] = {"path": path}
        for setting in args.settings:
            scores = evaluate_splits(
                path,
                args.corpus,
                reports / name / setting,
                splits=args.splits,
                raw=False,
                settings={"decoding": "viterbi"},
                model_settings=SETTINGS[setting],
            )
            table["f1"][name][setting] = {split: scores[split]["f1"] for split in scores}
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(table, indent=2), encoding="utf8")
    for split in args.splits:
        rows = [(name, *(f"{row[s][split]:.2f}" for s in args.settings)) for name, row in table["f1"].items()]
        msg.table(rows, header=(f"{split} F1", *args.settings), aligns=("l",) + ("r",) * len(args.settings))


if __name__ == "__main__":
    main()
