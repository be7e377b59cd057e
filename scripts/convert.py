"""Convert CoNLL-2003 files (IOB1, or the IOB2 CoNLL++ test) to .spacy, one Doc
per -DOCSTART- document with sentence boundaries kept.

    python scripts/convert.py ../shared/data/conll2003 corpus
"""

import argparse
from pathlib import Path

import spacy
from spacy.tokens import DocBin
from wasabi import msg

from spacy_longner.conll import read_conll, to_docs

SPLITS = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt", "test_conllpp": "test_conllpp.txt"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conll_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="documents per split (0: all)")
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    vocab = spacy.blank("en").vocab
    for split, filename in SPLITS.items():
        source = args.conll_dir / filename
        if not source.exists():
            msg.warn(f"{source} not found, skipped")
            continue
        db = DocBin(store_user_data=False)
        n_docs = n_sents = n_words = n_ents = 0
        for conll_doc in read_conll(source):
            for doc in to_docs(vocab, conll_doc):
                db.add(doc)
                n_docs += 1
                n_sents += len(conll_doc.sentences)
                n_words += len(doc)
                n_ents += len(doc.ents)
            if args.limit and n_docs >= args.limit:
                break
        db.to_disk(args.output_dir / f"{split}.spacy")
        msg.good(f"{split}: {n_docs} docs, {n_sents} sentences, {n_words} tokens, {n_ents} entities")


if __name__ == "__main__":
    main()
