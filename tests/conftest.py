"""Tiny, random, offline checkpoints (BERT, ALBERT, Longformer) with
tokenizers trained on the fly, saved as a user's fine-tuned checkpoint would be."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from spacy_longner.testing import (  # noqa: F401
    BILOU_LABELS,
    CONLL_DIR,
    IOB2_LABELS,
    build_checkpoint,
    read_conll_sentences,
    synthetic_conll_sentences,
    write_synthetic_conll,
)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """Lazily built checkpoints, one per (kind, labels, context_free, head)."""
    cache = {}
    root = tmp_path_factory.mktemp("checkpoints")

    def get(kind: str, labels=tuple(IOB2_LABELS), context_free: bool = False, head: bool = True) -> Path:
        key = (kind, tuple(labels) if labels is not None else None, context_free, head)
        if key not in cache:
            path = root / f"{kind}-{len(cache)}"
            cache[key] = build_checkpoint(
                path, kind, list(labels) if labels is not None else None, context_free=context_free, head=head
            )
        return cache[key]

    return get


@pytest.fixture(scope="session")
def family_checkpoint(tmp_path_factory):
    """Lazily built tiny checkpoints of each model family (families.py)."""
    from families import build_family_checkpoint

    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = build_family_checkpoint(tmp_path_factory.mktemp(family.replace("-", "_")), family)
        return cache[family]

    return get


@pytest.fixture
def conll_dev_sentences():
    """200 synthetic CoNLL-style (word, tag) sentences: the tests run without
    the real data (tests marked slow read it, see real_conll_sentences)."""
    return synthetic_conll_sentences(200, seed=1)


def real_conll_sentences(split="dev.txt", limit=200):
    """Sentences of the real CoNLL-2003 files, for tests marked slow."""
    path = CONLL_DIR / split
    if not path.exists():
        pytest.fail(f"CoNLL-2003 data not found at {path}: the slow tests need it (set it up beside the project)")
    return read_conll_sentences(path, limit=limit)


@pytest.fixture(scope="session")
def synthetic_conll_dir(tmp_path_factory):
    """A folder of CoNLL-2003-shaped files of synthetic sentences."""
    return write_synthetic_conll(tmp_path_factory.mktemp("conll"))


def make_nlp(path, **model_cfg):
    """A blank pipeline with long_ner on `path`; component settings and model
    settings may be mixed in the keywords."""
    import spacy

    nlp = spacy.blank("en")
    cfg = {
        k: v
        for k, v in model_cfg.items()
        if k
        in (
            "aggregation",
            "decoding",
            "label_map",
            "ignore_labels",
            "output",
            "spans_key",
            "existing_ents",
            "token_probs",
            "scheme",
            "buffer_words",
            "max_grad_norm",
            "prefetch",
            "trim_heap",
            "calibrated",
            "threshold",
            "thresholds",
        )
    }
    model = {k: v for k, v in model_cfg.items() if k not in cfg}
    nlp.add_pipe("long_ner", config={"model": {"name": str(path), **model}, **cfg})
    return nlp


def ents_of(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def person_place_docs(vocab, n_docs=20, seed=1):
    """Small training docs with gold entities: "Peter Blackburn" (PER),
    "Brussels" (LOC) and filler words, in random order."""
    import numpy as np
    from spacy.tokens import Doc

    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        words, ents = [], []
        for _ in range(8):
            kind = rng.integers(0, 3)
            if kind == 0:
                words, ents = words + ["Peter", "Blackburn"], ents + ["B-PER", "I-PER"]
            elif kind == 1:
                words, ents = words + ["Brussels"], ents + ["B-LOC"]
            else:
                words, ents = words + [str(rng.choice(["said", "on", "the", "went", "to"]))], ents + ["O"]
        docs.append(Doc(vocab, words=words, ents=ents))
    return docs


def fail_on(pipe, marker):
    """Make the component's predict() raise for any batch holding a doc
    whose text contains `marker`."""
    real_predict = pipe.predict

    def predict(docs, **kwargs):
        if any(marker in d.text for d in docs):
            raise RuntimeError(marker)
        return real_predict(docs, **kwargs)

    pipe.predict = predict
