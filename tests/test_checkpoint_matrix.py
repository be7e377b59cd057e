"""Every model family users bring, as a tiny random checkpoint: long_ner's
per-token labels and entities equal the checkpoint's own first-wordpiece
argmax on the same pre-split words (each sequence run alone, unpadded, as
the reference), whether docs are batched together or a document is longer
than the window; and a saved pipeline predicts the same after loading.
Also the tokenizer layouts older checkpoints ship (vocab.txt; vocab.json and
merges.txt)."""

import pytest
import spacy
from families import FAMILIES
from seqeval.metrics.sequence_labeling import get_entities
from spacy.tokens import Doc

from spacy_longner.testing import IOB2_LABELS, synthetic_conll_sentences

SENTENCES = [[w for w, _ in s] for s in synthetic_conll_sentences(24, seed=7)]
WINDOW = 96  # wordpieces: more than any sentence, far less than all of them


def reference_tags(path, sentences):
    """The checkpoint's own tags: each sentence alone through its tokenizer
    and model, argmax at each word's first wordpiece. Also asserts that every
    sentence fits WINDOW wordpieces, so that reading it alone is what
    long_ner's sentence windows do."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if getattr(tokenizer, "add_prefix_space", None) is False:
        tokenizer = AutoTokenizer.from_pretrained(str(path), add_prefix_space=True)
    model = AutoModelForTokenClassification.from_pretrained(str(path)).eval()
    labels = model.config.id2label
    out = []
    for words in sentences:
        enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        assert sum(w is not None for w in enc.word_ids()) <= WINDOW
        with torch.no_grad():
            logits = model(**enc).logits[0].numpy()
        first = {}
        for i, w in enumerate(enc.word_ids()):
            if w is not None and w not in first:
                first[w] = i
        out.append([labels[int(logits[first[j]].argmax())] for j in range(len(words))])
    return out


def entities_of_tags(tags):
    return sorted((start, end + 1, label) for label, start, end in get_entities(list(tags)))


def predicted(doc):
    probs = doc._.long_ner_probs
    return [IOB2_LABELS[i] for i in probs.argmax(axis=1)], sorted((e.start, e.end, e.label_) for e in doc.ents)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_gives_the_reference_entities_batched_long_and_saved(family, family_checkpoint, tmp_path):
    path = family_checkpoint(family)
    reference = reference_tags(path, SENTENCES)
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(path)}, "token_probs": True})
    # Many sentences in one buffer: padded batches of windows of other lengths.
    docs = list(nlp.pipe([Doc(nlp.vocab, words=w) for w in SENTENCES]))
    found = 0
    for doc, ref in zip(docs, reference):
        tags, ents = predicted(doc)
        assert tags == ref
        assert ents == entities_of_tags(ref)
        found += len(ents)
    assert found > 0
    # One document longer than the window, read sentence by sentence.
    words = [w for s in SENTENCES for w in s]
    starts = [i == 0 for s in SENTENCES for i, _ in enumerate(s)]
    long_nlp = spacy.blank("en")
    long_nlp.add_pipe(
        "long_ner", config={"model": {"name": str(path), "context": "sentence", "window": WINDOW}, "token_probs": True}
    )
    doc = long_nlp(Doc(long_nlp.vocab, words=words, sent_starts=starts))
    assert long_nlp.get_pipe("long_ner").state.window < len(doc)
    tags, ents = predicted(doc)
    assert tags == [t for ref in reference for t in ref]
    # Document windows cut at sentences; the same after saving and loading.
    doc_nlp = spacy.blank("en")
    doc_nlp.add_pipe("long_ner", config={"model": {"name": str(path), "window": WINDOW}})
    long_doc = Doc(doc_nlp.vocab, words=words, sent_starts=starts)
    before = [(e.start, e.end, e.label_) for e in doc_nlp(long_doc).ents]
    doc_nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert [
        (e.start, e.end, e.label_) for e in loaded(Doc(loaded.vocab, words=words, sent_starts=starts)).ents
    ] == before
    assert before


def legacy_layout(path, tmp_path):
    """The checkpoint with its tokenizer as older checkpoints ship it: the
    model's own vocabulary files (vocab.txt, or vocab.json and merges.txt)
    and no tokenizer.json."""
    import shutil

    from tokenizers import Tokenizer

    out = tmp_path / "legacy"
    shutil.copytree(path, out)
    Tokenizer.from_file(str(out / "tokenizer.json")).model.save(str(out))
    (out / "tokenizer.json").unlink()
    return out


@pytest.mark.parametrize("family,files", [("bert", {"vocab.txt"}), ("roberta", {"vocab.json", "merges.txt"})])
def test_legacy_tokenizer_files_give_the_same_entities(family, files, family_checkpoint, tmp_path):
    path = family_checkpoint(family)
    legacy = legacy_layout(path, tmp_path)
    assert files <= {p.name for p in legacy.iterdir()} and not (legacy / "tokenizer.json").exists()
    results = []
    for folder in (path, legacy):
        nlp = spacy.blank("en")
        nlp.add_pipe("long_ner", config={"model": {"name": str(folder)}, "token_probs": True})
        results.append([predicted(d) for d in nlp.pipe([Doc(nlp.vocab, words=w) for w in SENTENCES])])
    assert results[0] == results[1]
    assert [tags for tags, _ in results[1]] == reference_tags(legacy, SENTENCES)
