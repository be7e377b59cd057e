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
            cache[key] = build_checkpoint(path, kind, list(labels) if labels is not None else None,
                                          context_free=context_free, head=head)
        return cache[key]

    return get


@pytest.fixture
def conll_dev_sentences():
    path = CONLL_DIR / "dev.txt"
    if not path.exists():
        pytest.skip(f"CoNLL-2003 data not found at {path}")
    return read_conll_sentences(path, limit=200)


def make_nlp(path, **model_cfg):
    """A blank pipeline with long_ner on `path`; component settings and model
    settings may be mixed in the keywords."""
    import spacy

    nlp = spacy.blank("en")
    cfg = {k: v for k, v in model_cfg.items() if k in ("aggregation", "decoding", "label_map", "ignore_labels", "output", "spans_key", "existing_ents", "token_probs", "scheme", "buffer_words", "max_grad_norm")}
    model = {k: v for k, v in model_cfg.items() if k not in cfg}
    nlp.add_pipe("long_ner", config={"model": {"name": str(path), **model}, **cfg})
    return nlp


def ents_of(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]
