"""CoNLL-2003 files (IOB1 or IOB2) to spaCy Docs: one Doc per -DOCSTART-
document, sentence boundaries kept, or one Doc per sentence."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from spacy.tokens import Doc
from spacy.training import biluo_tags_to_spans, iob_to_biluo
from spacy.vocab import Vocab


@dataclass
class ConllDoc:
    sentences: list[list[str]]  # words per sentence
    tags: list[list[str]]  # NER tags (last column) per sentence


def read_conll(path: Union[str, Path]) -> Iterator[ConllDoc]:
    """Documents of a CoNLL-2003 file ('word POS chunk NER' lines, blank lines
    between sentences, -DOCSTART- lines between documents). A file without
    -DOCSTART- lines is one document."""
    doc = ConllDoc([], [])
    words: list[str] = []
    tags: list[str] = []

    def close_sentence():
        nonlocal words, tags
        if words:
            doc.sentences.append(words)
            doc.tags.append(tags)
        words, tags = [], []

    with open(path, encoding="utf8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                close_sentence()
                continue
            parts = line.split()
            if parts[0] == "-DOCSTART-":
                close_sentence()
                if doc.sentences:
                    yield doc
                doc = ConllDoc([], [])
                continue
            words.append(parts[0])
            tags.append(parts[-1])
    close_sentence()
    if doc.sentences:
        yield doc


def to_docs(vocab: Vocab, conll_doc: ConllDoc, *, by_sentence: bool = False) -> list[Doc]:
    """spaCy Docs with gold entities (IOB1 and IOB2 both read right: spaCy's
    iob_to_biluo starts an entity at an I- after O or another type)."""
    units = (
        [([s], [t]) for s, t in zip(conll_doc.sentences, conll_doc.tags)]
        if by_sentence
        else [(conll_doc.sentences, conll_doc.tags)]
    )
    docs = []
    for sents, tags in units:
        words = [w for s in sents for w in s]
        sent_starts: list[Union[bool, int, None]] = [i == 0 for s in sents for i in range(len(s))]
        doc = Doc(vocab, words=words, sent_starts=sent_starts)
        biluo: list[str] = []
        for t in tags:
            biluo.extend(iob_to_biluo(t))
        doc.ents = biluo_tags_to_spans(doc, biluo)
        docs.append(doc)
    return docs
