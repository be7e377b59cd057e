"""A corpus reader that keeps the gold sentence boundaries on the predicted
docs, for sentence-level and sentence-with-context training and evaluation
(CoNLL-style evaluation assumes gold sentences).

`unit = "sentence"` turns each document into one example per sentence, with
up to `context_tokens` tokens of its document on each side whose gold is
marked missing: the loss is on the target sentence only (FLERT-style
context), and the batcher can mix sentences of different documents (as a
Hugging Face run_ner batch of 32 random sentences does) instead of
batching whole, topically uniform documents.

`unit = "chunk"` cuts each document into runs of whole consecutive
sentences of up to `chunk_tokens` tokens (a longer sentence is a run of its
own), each an example with its gold on every token: the model learns from
the document context a whole-document window gives it, and the batcher
still mixes runs of different documents."""

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Corpus, Example
from spacy.util import registry

from .errors import Errors

UNITS = ("document", "sentence", "chunk")


@registry.readers("spacy-longner.Corpus.v1")
def create_corpus_reader(
    path: Optional[Union[str, Path]],
    limit: int = 0,
    max_length: int = 0,
    unit: str = "document",
    context_tokens: int = 0,
    retokenize: bool = False,
    chunk_tokens: int = 128,
) -> Callable[[Language], Iterable[Example]]:
    """Read a .spacy file like spacy.Corpus.v1, but give each predicted doc the
    reference's words, spaces and sentence boundaries (nothing else).

    unit (str): "document" (one example per doc), "sentence" (one example
        per gold sentence, with `context_tokens` tokens of context a side) or
        "chunk" (one example per run of whole sentences of up to
        `chunk_tokens` tokens).
    context_tokens (int): context on each side of a sentence example; its
        gold is missing, so it informs the model without being trained on.
    max_length (int): as in spacy.Corpus.v1: a document of this many tokens
        or more is split into its sentences, and sentences still that long
        are left out; 0: no limit.
    retokenize (bool): predicted docs get the pipeline's own tokenization
        of the reference text (spaCy's default, `gold_preproc = false`), with
        the gold sentence boundaries carried over by character offset, so
        that the model learns the tokens it will see on raw text (spaCy
        splits "Bosnian-Serb" where CoNLL keeps one token); the gold is
        aligned to them by spaCy's Example. False: the reference's words.
    chunk_tokens (int): the most tokens of a "chunk" example.
    """
    if path is None:
        raise ValueError("[long_ner] Corpus path can't be None: set it in [paths] or on the command line.")
    if unit not in UNITS:
        raise ValueError(Errors.E010.format(value=unit, setting="[corpora] unit", options=", ".join(UNITS)))
    if context_tokens < 0:
        raise ValueError(
            Errors.E010.format(value=context_tokens, setting="[corpora] context_tokens", options="an integer >= 0")
        )
    if chunk_tokens < 1:
        raise ValueError(
            Errors.E010.format(value=chunk_tokens, setting="[corpora] chunk_tokens", options="an integer >= 1")
        )
    return SentenceCorpus(
        path,
        limit=limit,
        max_length=max_length,
        unit=unit,
        context_tokens=context_tokens,
        retokenize=retokenize,
        chunk_tokens=chunk_tokens,
    )


class SentenceCorpus(Corpus):
    def __init__(
        self,
        path,
        *,
        limit: int = 0,
        max_length: int = 0,
        unit: str = "document",
        context_tokens: int = 0,
        retokenize: bool = False,
        chunk_tokens: int = 128,
    ) -> None:
        super().__init__(path, limit=limit, max_length=max_length)
        self.unit = unit
        self.context_tokens = context_tokens
        self.retokenize = retokenize
        self.chunk_tokens = chunk_tokens

    def make_examples(self, nlp: Language, reference_docs: Iterable[Doc]) -> Iterator[Example]:
        for reference in reference_docs:
            if len(reference) == 0:
                continue
            if self.unit == "sentence":
                yield from sentence_examples(nlp, reference, self.context_tokens, self.max_length, self.retokenize)
                continue
            if self.unit == "chunk":
                for a, b in sentence_runs(reference, self.chunk_tokens):
                    ref = reference[a:b].as_doc()
                    yield Example(self._predicted(nlp, ref), ref)
                continue
            if self.max_length and len(reference) >= self.max_length:
                # As spacy.Corpus.v1: a document too long is split into its
                # sentences, and those still too long are left out.
                if reference.has_annotation("SENT_START"):
                    for sent in reference.sents:
                        if 0 < len(sent) < self.max_length:
                            yield Example(self._predicted(nlp, sent.as_doc()), sent.as_doc())
                continue
            yield Example(self._predicted(nlp, reference), reference)

    def _predicted(self, nlp: Language, reference: Doc) -> Doc:
        return retokenized(nlp, reference) if self.retokenize else bare_copy(nlp.vocab, reference)


def retokenized(nlp: Language, reference: Doc, one_sentence: bool = False) -> Doc:
    """The pipeline's tokenization of `reference.text`, with the reference's
    sentence starts carried over by character offset (or all one sentence)."""
    doc = nlp.make_doc(reference.text)
    if len(doc) == 0:
        return doc
    if one_sentence:
        starts = {0}
    elif reference.has_annotation("SENT_START"):
        starts = {s.start_char for s in reference.sents}
    else:
        return doc
    for token in doc:
        token.is_sent_start = token.idx in starts or token.i == 0
    return doc


def bare_copy(vocab, doc: Doc) -> Doc:
    """A new doc with `doc`'s words, spaces and sentence boundaries, nothing
    else: what a pipeline is given to predict on a gold doc."""
    sent_starts: Optional[list[Union[bool, int, None]]] = (
        [bool(t.is_sent_start) for t in doc] if doc.has_annotation("SENT_START") else None
    )
    return Doc(vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc], sent_starts=sent_starts)


def sentence_runs(doc: Doc, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of runs of whole consecutive sentences of `doc`, each of
    at most `size` tokens unless one sentence alone is longer; together
    they cover the doc once, in order."""
    bounds = [s.start for s in doc.sents] if doc.has_annotation("SENT_START") else [0]
    bounds.append(len(doc))
    a = 0
    for start, end in zip(bounds, bounds[1:]):
        if end - a > size and start > a:
            yield a, start
            a = start
    if a < len(doc):
        yield a, len(doc)


def sentence_examples(
    nlp: Language, reference: Doc, context_tokens: int, max_length: int = 0, retokenize: bool = False
) -> Iterator[Example]:
    """One example per sentence of `reference`: the sentence with up to
    `context_tokens` tokens on each side, all one sentence on the predicted
    side (one window), the context's gold entities missing. Sentences of
    `max_length` tokens or more are left out (0: no limit)."""
    sents = list(reference.sents) if reference.has_annotation("SENT_START") else [reference[:]]
    for sent in sents:
        if max_length and len(sent) >= max_length:
            continue
        a = max(0, sent.start - context_tokens)
        b = min(len(reference), sent.end + context_tokens)
        ref = reference[a:b].as_doc()
        t0, t1 = sent.start - a, sent.end - a
        target_ents = [
            Span(ref, e.start - a, e.end - a, label=e.label)
            for e in reference.ents
            if e.start >= sent.start and e.end <= sent.end
        ]
        missing = [s for s in (ref[:t0], ref[t1:]) if len(s)]
        ref.set_ents(target_ents, missing=missing, default="outside")
        if retokenize:
            predicted = retokenized(nlp, ref, one_sentence=True)
        else:
            predicted = Doc(
                nlp.vocab,
                words=[t.text for t in ref],
                spaces=[bool(t.whitespace_) for t in ref],
                sent_starts=[i == 0 for i in range(len(ref))],
            )
        yield Example(predicted, ref)
