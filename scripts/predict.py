"""Print the entities a pipeline finds in some text (or in sample sentences).

python scripts/predict.py training/minilm/model-best "Peter Blackburn went to Brussels."
"""

import argparse

import spacy

from spacy_longner.scoring import entity_scores

SAMPLE = (
    "EU rejects German call to boycott British lamb. Peter Blackburn reports from Brussels. "
    "The European Commission said on Thursday it disagreed with German advice to consumers "
    "to shun British lamb until scientists determine whether mad cow disease can be transmitted to sheep."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="pipeline folder or installed package name")
    parser.add_argument("text", nargs="*", help="texts (default: a sample)")
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    for doc in nlp.pipe(args.text or [SAMPLE]):
        scores = entity_scores(doc, nlp.get_pipe("long_ner").cfg["spans_key"])
        print(doc.text)
        for ent, score in zip(doc.ents, scores):
            print(f"  {ent.label_:<6} {score if score is not None else float('nan'):.3f}  {ent.text}")


if __name__ == "__main__":
    main()
