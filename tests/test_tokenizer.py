"""spacy-longner.Tokenizer.v1: spaCy's rule-based tokenizer, optionally
keeping hyphenated words whole (CoNLL-2003's tokenization of them)."""

import pytest
import spacy
from spacy.lang.en import English

from spacy_longner.tokenizer import make_tokenizer

WHOLE = {"nlp": {"tokenizer": {"@tokenizers": "spacy-longner.Tokenizer.v1", "split_hyphenated_words": False}}}


def words(tokenizer, text):
    return [t.text for t in tokenizer(text)]


def test_default_is_spacys_tokenizer():
    nlp = spacy.blank("en")
    ours = make_tokenizer()(nlp)
    for text in [
        "The Bergamo-based firm (Itar-Tass) said: don't!",
        "U.S.-led talks, 6-3 on 1996-08-30.",
        "e-mail me@x.org",
    ]:
        assert words(ours, text) == words(nlp.tokenizer, text)


def test_hyphenated_words_stay_whole_and_other_rules_do_not_change():
    nlp = spacy.blank("en", config=WHOLE)
    assert words(nlp.tokenizer, "The Bergamo-based firm met Anne-Gaelle Sidot of Itar-Tass.") == [
        "The",
        "Bergamo-based",
        "firm",
        "met",
        "Anne-Gaelle",
        "Sidot",
        "of",
        "Itar-Tass",
        ".",
    ]
    assert words(nlp.tokenizer, "U.S.-led talks (Reuters) don't stop.") == [
        "U.S.-led",
        "talks",
        "(",
        "Reuters",
        ")",
        "do",
        "n't",
        "stop",
        ".",
    ]
    # the other infixes are spaCy's: a comma or a slash between words still splits
    plain = spacy.blank("en")
    for text in ["London,Paris", "peace/war", "It's 3.5km away...", "Mr. O'Neil"]:
        assert words(nlp.tokenizer, text) == words(plain.tokenizer, text)


def test_rules_are_saved_with_the_pipeline(tmp_path):
    nlp = spacy.blank("en", config=WHOLE)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.config["nlp"]["tokenizer"]["split_hyphenated_words"] is False
    assert words(loaded.tokenizer, "an Amman-bound plane") == ["an", "Amman-bound", "plane"]


def test_a_language_whose_defaults_split_hyphens_otherwise_gets_a_clear_error():
    class HyphenDefaults(English.Defaults):
        infixes = [r"-"]

    class HyphenEnglish(English):
        Defaults = HyphenDefaults

    with pytest.raises(ValueError, match="E024.*split_hyphenated_words"):
        make_tokenizer(split_hyphenated_words=False)(HyphenEnglish())
