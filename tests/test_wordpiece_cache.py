"""The cache of each distinct word's wordpieces (align.WordpieceCache) gives
exactly what the checkpoint's tokenizer gives for whole docs of pre-split
words: the same ids, aligned to the same spaCy tokens, for the WordPiece
(BERT), SentencePiece (ALBERT) and byte-level BPE (Longformer) families,
cold or warm, across a cleared cache and across vocabs."""

import copy
import pickle

import numpy as np
import pytest
import spacy
from conftest import make_nlp
from spacy.tokens import Doc

from spacy_longner.batching import encode_docs

# Words a user's strings bring: accents, CJK, emoji and joiners, combining
# marks, zero-width and control characters, the tokenizers' own markers and
# special tokens, numbers, a very long word, and words that repeat.
WORDS = [
    "Peter",
    "Blackburn",
    "went",
    "to",
    "Brussels",
    "Müller",
    "José",
    "São",
    "Paulo",
    "ﬁnance",
    "東京",
    "北京市",
    "😀",
    "👩\u200d💻",
    "e\u0301",
    "Å",
    "\u200b",
    "\u00ad",
    "\x07",
    "\ufeff",
    "[CLS]",
    "[SEP]",
    "[UNK]",
    "<s>",
    "</s>",
    "<mask>",
    "##ing",
    "Ġthe",
    "▁the",
    "the",
    "1996-08-22",
    "6-0",
    "U.S.",
    "Anne-Gaelle",
    "'s",
    ".",
    ",",
    "(",
    ")",
    "$",
    "a" * 300,
    "İstanbul",
    "ǅemal",
    "ΑΘΗΝΑ",
    "Ölüdeniz",
    "\U0001d518",
    "x\u0300\u0301\u0302",
]


def reference(tokenizer, doc):
    """The tokenizer on the doc's non-whitespace words in one call, aligned
    through its own word_ids()."""
    index = [t.i for t in doc if not t.is_space]
    if not index:
        return [], []
    enc = tokenizer(
        [[doc[i].text for i in index]],
        is_split_into_words=True,
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return list(enc["input_ids"][0]), [index[w] for w in enc.word_ids(0)]


def random_docs(vocab, rng, n_docs=30):
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(0, 40))
        words = [WORDS[i] for i in rng.integers(0, len(WORDS), size=n)]
        # Whitespace tokens, as spaCy's tokenizer makes them for runs of spaces and line breaks.
        for pos in sorted(rng.integers(0, n + 1, size=int(rng.integers(0, 3))).tolist(), reverse=True):
            words.insert(pos, "\n")
        docs.append(Doc(vocab, words=words))
    return docs


def assert_exact(state, docs):
    encs = encode_docs(state, docs)
    assert len(encs) == len(docs)
    for doc, enc in zip(docs, encs):
        ids, tokens = reference(state.tokenizer, doc)
        assert enc.input_ids.tolist() == ids, doc.text
        assert enc.wp_token.tolist() == tokens, doc.text
        assert enc.n_tokens == len(doc)


@pytest.mark.parametrize("kind", ["bert", "albert", "longformer"])
def test_cached_wordpieces_equal_the_tokenizer_on_whole_docs(checkpoints, kind):
    nlp = make_nlp(checkpoints(kind))
    state = nlp.get_pipe("long_ner").state
    rng = np.random.default_rng(0)
    docs = random_docs(nlp.vocab, rng)
    assert_exact(state, docs)  # cold: every word is new
    n_cached = len(state.wordpieces)
    assert 0 < n_cached <= len(set(WORDS)) + 1  # and "\n", cached as a word without wordpieces
    assert_exact(state, docs[::-1])  # warm: nothing new is tokenized
    assert len(state.wordpieces) == n_cached
    # Through the component: entities as with the cache emptied before each doc.
    expected = []
    for doc in nlp.pipe(d.text for d in docs):
        expected.append([(e.start_char, e.end_char, e.label_) for e in doc.ents])
    for text, ents in zip((d.text for d in docs), expected):
        state.wordpieces.clear()
        doc = nlp(text)
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == ents


def test_the_cache_empties_at_its_cap_and_stays_exact(checkpoints):
    nlp = make_nlp(checkpoints("bert"))
    state = nlp.get_pipe("long_ner").state
    state.wordpieces.max_words = 12
    rng = np.random.default_rng(1)
    sizes = []
    for _ in range(8):
        # Buffers of at most 5 distinct words: the cache never holds more than 12.
        chosen = [WORDS[i] for i in rng.choice(len(WORDS), size=5, replace=False)]
        docs = [Doc(nlp.vocab, words=[chosen[i] for i in rng.integers(0, 5, size=7)]) for _ in range(3)]
        assert_exact(state, docs)
        sizes.append(len(state.wordpieces))
    assert max(sizes) <= 12
    assert any(b < a for a, b in zip(sizes, sizes[1:]))  # it was emptied


def test_docs_from_two_vocabs_in_one_buffer(checkpoints):
    nlp = make_nlp(checkpoints("bert"))
    state = nlp.get_pipe("long_ner").state
    other = spacy.blank("en")
    docs = [
        Doc(nlp.vocab, words=["Peter", "went", "to", "Brussels"]),
        Doc(other.vocab, words=["Zwingmann", "only", "here"]),
        Doc(nlp.vocab, words=["Brussels"]),
    ]
    assert "Zwingmann" not in nlp.vocab.strings
    assert_exact(state, docs)


def test_copies_of_the_state_start_with_an_empty_cache(checkpoints):
    nlp = make_nlp(checkpoints("bert"))
    state = nlp.get_pipe("long_ner").state
    docs = random_docs(nlp.vocab, np.random.default_rng(2), n_docs=5)
    assert_exact(state, docs)
    assert len(state.wordpieces) > 0
    for clone in (copy.deepcopy(state), pickle.loads(pickle.dumps(state))):
        assert len(clone.wordpieces) == 0
        assert_exact(clone, docs)
    # A new tokenizer gets a new cache.
    old = state.wordpieces
    state.tokenizer = copy.deepcopy(state.tokenizer)
    assert state.wordpieces is not old and len(state.wordpieces) == 0
