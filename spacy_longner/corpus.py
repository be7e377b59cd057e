"""A corpus reader that keeps the gold sentence boundaries on the predicted
docs, for sentence-level and sentence-with-context training and evaluation
(CoNLL-style evaluation assumes gold sentences)."""

from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import registry


@registry.readers("spacy-longner.Corpus.v1")
def create_corpus_reader(path: Optional[Union[str, Path]], limit: int = 0, max_length: int = 0) -> Callable[[Language], Iterable[Example]]:
    """Read a .spacy file like spacy.Corpus.v1, but give each predicted doc the
    reference's words, spaces and sentence boundaries (nothing else)."""
    if path is None:
        raise ValueError("[long_ner] Corpus path can't be None: set it in [paths] or on the command line.")
    return SentenceCorpus(path, limit=limit, max_length=max_length)


class SentenceCorpus(Corpus):
    def make_examples(self, nlp: Language, reference_docs: Iterable[Doc]) -> Iterator[Example]:
        for reference in reference_docs:
            if len(reference) == 0:
                continue
            if self.max_length and len(reference) >= self.max_length:
                continue
            sent_starts = [bool(t.is_sent_start) for t in reference] if reference.has_annotation("SENT_START") else None
            predicted = Doc(
                nlp.vocab,
                words=[t.text for t in reference],
                spaces=[bool(t.whitespace_) for t in reference],
                sent_starts=sent_starts,
            )
            yield Example(predicted, reference)
