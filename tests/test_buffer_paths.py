"""The buffer-wide paths of long_ner's inference: entities written through
spaCy's array API, one decoding over a whole buffer, and the prefetching
thread. Each is checked against the plain per-doc way (spaCy's own
`Doc.set_ents`, `nlp.pipe` without prefetch)."""

import threading

import numpy as np
import pytest
import spacy
from conftest import ents_of, fail_on, make_nlp
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import ignore_error

from spacy_longner.stream import prefetch, read_ahead
from spacy_longner.write import write_ents

RAW_TEXTS = [
    "Peter Blackburn went to Brussels with the European Commission on Thursday .",
    "",
    "   \n\t ",
    "Germany 's representative\nWerner  Zwingmann said on Wednesday consumers should buy sheepmeat from Britain .",
    "Tokyo , Paris and New York ; Maria Müller met José in São Paulo . " * 30,
    "EU rejects German call to boycott British lamb .\r\n\r\nBRUSSELS 1996-08-22",
    "\u00a0Anne-Gaelle Sidot (France) beat Lindsay Davenport\u2009(U.S.) 6-0 6-3 .",
] * 5


def random_spans(rng, n):
    """Non-overlapping (start, end) token spans in a doc of n tokens."""
    cuts = sorted(set(rng.integers(0, n + 1, size=rng.integers(0, 2 * n + 1)).tolist()) | {0, n})
    spans = [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if rng.random() < 0.5]
    return spans


@pytest.mark.parametrize("existing", ["overwrite", "keep", "fill"])
@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 15), with_existing=st.booleans())
def test_write_ents_equals_spacys_set_ents(existing, seed, n, with_existing):
    nlp = spacy.blank("en")
    rng = np.random.default_rng(seed)
    labels = ["PER", "LOC", "ORG"]
    words = [f"w{i}" for i in range(n)]
    old = random_spans(rng, n) if with_existing else []
    new = random_spans(rng, n)
    new_labels = [labels[i] for i in rng.integers(0, 3, size=len(new))]

    def fresh():
        doc = Doc(nlp.vocab, words=words)
        if old:
            doc.set_ents(
                [Span(doc, a, b, label="RULE") for a, b in old], default="missing" if rng.random() < 0.5 else "outside"
            )
        return doc

    ours = fresh()
    theirs = Doc(nlp.vocab).from_bytes(ours.to_bytes())
    starts = np.array([a for a, _ in new], dtype=np.int64)
    ends = np.array([b for _, b in new], dtype=np.int64)
    hashes = np.array([nlp.vocab.strings.add(lab) for lab in new_labels], dtype=np.uint64)
    written = write_ents(ours, starts, ends, hashes, existing)
    # The reference: what long_ner did before, with spaCy's own API.
    spans = [Span(theirs, a, b, label=lab) for (a, b), lab in zip(new, new_labels)]
    if existing == "overwrite" or not theirs.ents:
        theirs.set_ents(spans, default="outside")
        expected_written = [True] * len(spans)
    elif existing == "keep":
        expected_written = [False] * len(spans)
    else:
        taken = np.zeros(n, dtype=bool)
        for e in theirs.ents:
            taken[e.start : e.end] = True
        expected_written = [not taken[s.start : s.end].any() for s in spans]
        theirs.set_ents([s for s, w in zip(spans, expected_written) if w], default="unmodified")
    assert written.tolist() == expected_written
    assert ents_of(ours) == ents_of(theirs)
    assert [t.ent_iob_ for t in ours] == [t.ent_iob_ for t in theirs]


def test_read_ahead_and_prefetch_give_the_same_buffers_in_order():
    stream = [list(range(i)) for i in range(50)]
    plain = list(read_ahead(iter(stream), 40, 7))
    fetched = list(prefetch(read_ahead(iter(stream), 40, 7), plan=len))
    assert [docs for docs, _ in fetched] == plain
    assert [planned for _, planned in fetched] == [len(b) for b in plain]


def test_prefetch_raises_an_upstream_error_where_it_happened_and_stops_its_thread():
    def upstream():
        yield [1]
        yield [2]
        raise RuntimeError("upstream broke")

    got = []
    with pytest.raises(RuntimeError, match="upstream broke"):
        for docs, _ in prefetch(upstream(), plan=lambda d: None):
            got.append(docs)
    assert got == [[1], [2]]

    def endless():
        i = 0
        while True:
            i += 1
            yield [i]

    gen = prefetch(endless(), plan=lambda d: d)
    assert next(gen)[0] == [1]
    gen.close()
    for t in threading.enumerate():
        if t.name == "long_ner-prefetch":
            t.join(timeout=5)
            assert not t.is_alive()


def test_a_failed_plan_is_planned_again_by_the_consumer():
    def plan(docs):
        if docs == [3]:
            raise ValueError("bad doc")
        return "ok"

    assert list(prefetch(iter([[1], [3], [5]]), plan)) == [([1], "ok"), ([3], None), ([5], "ok")]


@pytest.mark.parametrize("kind", ["bert", "longformer"])
@pytest.mark.parametrize("decoding", ["conlleval", "viterbi"])
def test_prefetch_gives_the_same_docs_and_entities_as_the_plain_path(checkpoints, kind, decoding):
    path = checkpoints(kind)
    plain = make_nlp(path, prefetch="off", decoding=decoding, buffer_words=200)
    fetched = make_nlp(path, prefetch="on", decoding=decoding, buffer_words=200)
    a = list(plain.pipe(RAW_TEXTS, batch_size=3))
    b = list(fetched.pipe(RAW_TEXTS, batch_size=3))
    assert [d.text for d in b] == RAW_TEXTS
    assert [ents_of(d) for d in b] == [ents_of(d) for d in a]
    assert sum(len(d.ents) for d in a) > 20
    assert [d.spans["long_ner"].attrs["scores"] for d in b] == [d.spans["long_ner"].attrs["scores"] for d in a]
    # and the same as each doc alone (one doc a buffer: no buffer-wide decoding)
    assert [ents_of(plain(t)) for t in RAW_TEXTS[:7]] == [ents_of(d) for d in b[:7]]


@Language.component("boom_before_long_ner")
def boom_before_long_ner(doc):
    if "BOOM" in doc.text:
        raise RuntimeError("BOOM upstream")
    return doc


def test_prefetch_keeps_error_handling_per_doc(checkpoints):
    path = checkpoints("bert")
    texts = RAW_TEXTS[:7] + ["this one BOOMs"] + RAW_TEXTS[:7]
    expected = [ents_of(d) for d in make_nlp(path).pipe(RAW_TEXTS[:7] * 2)]
    nlp = make_nlp(path, prefetch="on")
    nlp.add_pipe("boom_before_long_ner", first=True)
    with pytest.raises(RuntimeError, match="BOOM upstream"):
        list(nlp.pipe(texts, batch_size=4))
    nlp.set_error_handler(ignore_error)
    out = list(nlp.pipe(texts, batch_size=4))
    assert [ents_of(d) for d in out] == expected
    # a doc that fails in long_ner itself reaches the handler alone
    nlp.remove_pipe("boom_before_long_ner")
    pipe = nlp.get_pipe("long_ner")
    fail_on(pipe, "BOOM")
    out = list(nlp.pipe(texts, batch_size=4))
    assert [d.text for d in out] == RAW_TEXTS[:7] * 2
    assert [ents_of(d) for d in out] == expected


def doc_entities(preds, i):
    """Doc i's entities of a BufferPrediction, as (start, end, label)."""
    a, b = preds.doc_bounds()[i : i + 2]
    e = preds.entities
    return [(int(s), int(t), preds.labels[c]) for s, t, c in zip(e.start[a:b], e.end[a:b], e.type_id[a:b])]


def test_predict_on_a_buffer_equals_predict_doc_by_doc(checkpoints):
    nlp = make_nlp(checkpoints("bert"), token_probs=True, label_map={"PER": "PERSON"}, ignore_labels=["MISC"])
    pipe = nlp.get_pipe("long_ner")
    docs = [nlp.make_doc(t) for t in RAW_TEXTS[:7]]
    preds = pipe.predict(docs)
    assert len(preds) == len(docs)
    assert preds.token_offsets.tolist() == np.cumsum([0] + [len(d) for d in docs]).tolist()
    found = 0
    for i, doc in enumerate(docs):
        alone = pipe.predict([doc])
        assert doc_entities(preds, i) == doc_entities(alone, 0)
        assert all(label not in ("MISC", "PER") for _, _, label in doc_entities(preds, i))
        found += len(doc_entities(alone, 0))
        np.testing.assert_allclose(preds.token_probs[i], alone.token_probs[0], rtol=1e-5, atol=1e-6)
        assert preds.token_probs[i].shape[0] == len(doc)
    assert found > 0


def test_the_loaded_state_copies_with_a_fresh_tokenizer_lock(checkpoints):
    import copy
    import pickle

    nlp = make_nlp(checkpoints("bert"))
    state = nlp.get_pipe("long_ner").state
    for clone in (copy.deepcopy(state), pickle.loads(pickle.dumps(state))):
        assert clone.tokenizer_lock is not state.tokenizer_lock
        assert clone.tokenizer_lock.acquire(blocking=False)
        clone.tokenizer_lock.release()
        assert clone.labels == state.labels


def test_loading_a_checkpoint_ends_with_a_full_garbage_collection(checkpoints):
    import gc

    full = []

    def seen(phase, info):
        if phase == "stop" and info["generation"] == 2:
            full.append(info)

    gc.callbacks.append(seen)
    try:
        nlp = make_nlp(checkpoints("bert"))
        _ = nlp.get_pipe("long_ner").state  # loads the checkpoint
        after_load = len(full)
        nlp("Peter Blackburn went to Brussels .")
    finally:
        gc.callbacks.remove(seen)
    assert after_load >= 1
    assert len(full) == after_load  # none left for the first doc
