"""long_ner as an upstream that spacy-transformers listeners read (the [trf]
extra). Runs where spacy-transformers is installed: CI's second
environment (`bash scripts/install.sh trf .venv-trf`)."""

import numpy as np
import pytest
import spacy
from conftest import ents_of
from spacy.tokens import Doc
from spacy.training import Example

from spacy_longner.testing import synthetic_conll_sentences

spacy_transformers = pytest.importorskip("spacy_transformers")

TAGGER = {
    "model": {
        "@architectures": "spacy.Tagger.v2",
        "nO": None,
        "normalize": False,
        "tok2vec": {
            "@architectures": "spacy-transformers.TransformerListener.v1",
            "grad_factor": 1.0,
            "upstream": "long_ner",
            "pooling": {"@layers": "reduce_mean.v1"},
        },
    }
}


def pos(word: str) -> str:
    """A deterministic stand-in for POS tags, from the word's form."""
    if not any(c.isalnum() for c in word):
        return "PUNCT"
    if any(c.isdigit() for c in word):
        return "NUM"
    if word[0].isupper():
        return "PROPN"
    return "DET" if word in ("the", "The", "a", "and") else "X"


def tagged_examples(vocab, n=20):
    sents = synthetic_conll_sentences(n, seed=5)
    egs = []
    for s in sents:
        words = [w for w, _ in s]
        egs.append(Example(Doc(vocab, words=words), Doc(vocab, words=words, tags=[pos(w) for w in words])))
    return egs


def count_forward_calls(nlp):
    calls = []
    nlp.get_pipe("long_ner").state.hf_model.register_forward_hook(lambda *a: calls.append(1))
    return calls


def test_a_tagger_listening_to_long_ner_learns_and_costs_no_second_forward_pass(checkpoints, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}, "store_trf_data": True})
    nlp.add_pipe("tagger", config=TAGGER)
    assert nlp.get_pipe("long_ner").listening_components == ["tagger"]
    egs = tagged_examples(nlp.vocab)
    opt = nlp.initialize(lambda: egs)
    opt.learn_rate = 0.05
    for _ in range(100):
        nlp.update(egs, sgd=opt, exclude=["long_ner"], annotates=["long_ner"])
    words = [[t.text for t in eg.reference] for eg in egs]
    docs = list(nlp.pipe(Doc(nlp.vocab, words=w) for w in words))
    gold = [pos(w) for ws in words for w in ws]
    got = [t.tag_ for d in docs for t in d]
    accuracy = np.mean([a == b for a, b in zip(got, gold)])
    majority = max(gold.count(t) for t in set(gold)) / len(gold)
    # A 2-layer, 32-wide random encoder: the tagger learns from its states
    # far beyond the majority tag, not to 1.0 (0.87 after 150 steps).
    print(f"tagger accuracy {accuracy:.3f}, majority tag {majority:.3f}")
    assert accuracy >= 0.8 and accuracy >= majority + 0.25, (accuracy, majority)
    # The trf data: one hidden row per wordpiece, every word aligned.
    data = docs[0]._.trf_data
    assert isinstance(data, spacy_transformers.data_classes.TransformerData)
    assert data.model_output.last_hidden_state.shape[-1] == 32 and len(data.align.lengths) == len(docs[0])
    # long_ner's entities are those of long_ner alone, and its model runs the
    # same number of forward passes with the tagger as without it.
    alone = spacy.blank("en")
    alone.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}})
    texts = [" ".join(w) for w in words]
    calls = count_forward_calls(nlp)
    with_tagger = [ents_of(d) for d in nlp.pipe(texts)]
    n_with = len(calls)
    calls.clear()
    with nlp.select_pipes(disable=["tagger"]):
        list(nlp.pipe(texts))
    assert n_with == len(calls) > 0
    assert with_tagger == [ents_of(d) for d in alone.pipe(texts)]
    # Saved and loaded: the same tags and entities.
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    again = list(loaded.pipe(texts))
    assert [[t.tag_ for t in d] for d in again] == [[t.tag_ for t in d] for d in nlp.pipe(texts)]
    assert [ents_of(d) for d in again] == with_tagger
    assert loaded.get_pipe("long_ner").listening_components == ["tagger"]


def test_whitespace_tokens_and_empty_docs_have_trf_data(checkpoints):
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}, "store_trf_data": True})
    for text in ["", "  \n ", "Peter \n\n Blackburn"]:
        data = nlp(text)._.trf_data
        assert len(data.align.lengths) == len(nlp.make_doc(text))
        assert data.model_output.last_hidden_state.shape[-1] == 32
    doc = nlp("Peter \n\n Blackburn")
    assert list(doc._.trf_data.align.lengths)[1] == 0  # the line breaks have no wordpiece


def test_a_listener_on_long_ner_without_store_trf_data_is_a_coded_error(checkpoints):
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}})
    with pytest.raises(ValueError, match=r"E023.*store_trf_data = true"):
        nlp.add_pipe("tagger", config=TAGGER)
