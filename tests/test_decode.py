import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_decode import decode_tokens, viterbi
from seqeval.metrics.sequence_labeling import get_entities

from spacy_longner.decode import (
    allowed_transitions,
    chunk_starts_ends,
    decode_buffer,
    detect_scheme,
    parse_tagset,
    viterbi_batch,
)
from spacy_longner.training import tag_labels

TYPES = ["PER", "LOC", "ORG"]


def seqeval_spans(tags):
    """Independent reference: seqeval's conlleval-mode chunking (L/U read as E/S)."""
    mapped = [t.replace("L-", "E-", 1).replace("U-", "S-", 1) if t[:2] in ("L-", "U-") else t for t in tags]
    return sorted((s, e + 1, t) for t, s, e in get_entities(mapped))


def our_spans(tags, scheme):
    tagset = parse_tagset(tag_labels(TYPES, scheme), scheme)
    ids = np.array([tagset.labels.index(t) for t in tags], dtype=np.int64)
    return sorted((s, e, tagset.types[t]) for s, e, t in chunk_starts_ends(tagset.prefix[ids], tagset.type_id[ids]))


def tag_strategy(scheme):
    return st.lists(st.sampled_from(tag_labels(TYPES, scheme)), max_size=40)


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES", "BILOU"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_chunking_matches_seqeval_on_any_sequence(scheme, data):
    tags = data.draw(tag_strategy(scheme))
    assert our_spans(tags, scheme) == seqeval_spans(tags)


def test_conlleval_examples_by_hand():
    # I- after O starts an entity; I- of another type starts another; B- splits.
    tags = ["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG", "O"]
    assert our_spans(tags, "IOB2") == [(0, 2, "PER"), (3, 4, "LOC"), (4, 5, "ORG"), (5, 7, "ORG")]
    assert our_spans(["U-PER", "B-LOC", "L-LOC", "I-LOC"], "BILOU") == [(0, 1, "PER"), (1, 3, "LOC"), (3, 4, "LOC")]


def test_io_scheme_bare_labels():
    tagset = parse_tagset(["O", "PER", "LOC"])
    assert tagset.scheme == "IO"
    ids = np.array([1, 1, 0, 2, 1])
    spans = chunk_starts_ends(tagset.prefix[ids], tagset.type_id[ids])
    assert [(s, e, tagset.types[t]) for s, e, t in spans] == [(0, 2, "PER"), (3, 4, "LOC"), (4, 5, "PER")]


@pytest.mark.parametrize(
    "labels,expected",
    [
        (["O", "B-PER", "I-PER"], "IOB2"),
        (["O", "I-PER"], "IOB2"),
        (["O", "B-PER", "I-PER", "E-PER", "S-PER"], "BIOES"),
        (["O", "B-PER", "I-PER", "L-PER", "U-PER"], "BILOU"),
        (["O", "PER", "LOC"], "IO"),
        (["O", "B-WORK_OF_ART", "I-WORK_OF_ART"], "IOB2"),
    ],
)
def test_detect_scheme(labels, expected):
    assert detect_scheme(labels) == expected
    assert parse_tagset(labels).scheme == expected


def test_bad_labels_give_coded_errors():
    with pytest.raises(ValueError, match=r"\[long_ner E008\].*'O'"):
        parse_tagset(["B-PER", "I-PER"])
    with pytest.raises(ValueError, match=r"\[long_ner E009\].*BILOU"):
        parse_tagset(["O", "B-PER", "L-PER", "U-PER", "I-PER"], "BIOES")
    with pytest.raises(ValueError, match=r"E010.*scheme"):
        parse_tagset(["O"], "BIO")


def is_valid(tags, tagset):
    trans, first, last = allowed_transitions(tagset)
    if len(tags) == 0:
        return True
    return bool(first[tags[0]] and last[tags[-1]] and all(trans[a, b] for a, b in zip(tags[:-1], tags[1:])))


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BIOES", "BILOU"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_viterbi_is_the_best_valid_sequence(scheme, data):
    labels = tag_labels(["PER", "LOC"], scheme)
    tagset = parse_tagset(labels, scheme)
    n = data.draw(st.integers(1, 4))
    logits = np.array(
        data.draw(st.lists(st.floats(-5, 5), min_size=n * len(labels), max_size=n * len(labels)))
    ).reshape(n, -1)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    best = viterbi(log_probs, tagset)
    assert is_valid(best, tagset)
    # Brute force over all valid sequences.
    best_score = max(
        log_probs[np.arange(n), list(seq)].sum()
        for seq in itertools.product(range(len(labels)), repeat=n)
        if is_valid(list(seq), tagset)
    )
    assert log_probs[np.arange(n), best].sum() == pytest.approx(best_score, abs=1e-9)


def test_invalid_argmax_is_repaired_by_viterbi():
    tagset = parse_tagset(tag_labels(["PER"], "BIOES"), "BIOES")  # O B-PER E-PER I-PER S-PER sorted by prefix
    idx = {lab: i for i, lab in enumerate(tagset.labels)}
    probs = np.full((2, len(tagset.labels)), 0.01)
    probs[0, idx["I-PER"]] = 0.5  # argmax would start with I-
    probs[0, idx["B-PER"]] = 0.4
    probs[1, idx["E-PER"]] = 0.9
    probs /= probs.sum(1, keepdims=True)
    visible = np.ones(2, dtype=bool)
    tags, ents = decode_tokens(probs, visible, tagset, decoding="viterbi")
    assert [tagset.labels[t] for t in tags] == ["B-PER", "E-PER"]
    assert [(e.start, e.end, e.label) for e in ents] == [(0, 2, "PER")]
    assert 0.0 <= ents[0].score <= 1.0


def test_invisible_tokens_are_skipped_and_scores_are_mean_tag_probability_over_visible_tokens():
    # "Barack \n Obama": the whitespace token between B-PER and I-PER must not
    # split the entity; it is inside it, and the score ignores it.
    tagset = parse_tagset(["O", "B-PER", "I-PER"])
    probs = np.array([[0.1, 0.8, 0.1], [0.0, 0.0, 0.0], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.0, 0.0, 0.0]])
    visible = np.array([True, False, True, True, False])
    for decoding in ("conlleval", "viterbi"):
        tags, ents = decode_tokens(probs, visible, tagset, decoding=decoding)
        assert tags.tolist() == [1, -1, 2, 0, -1]
        assert [(e.start, e.end, e.label) for e in ents] == [(0, 3, "PER")]
        assert ents[0].score == pytest.approx((0.8 + 0.8) / 2)
    # An entity never starts or ends on an invisible token.
    probs = np.array([[0.0, 0.0, 0.0], [0.1, 0.8, 0.1], [0.0, 0.0, 0.0]])
    _, ents = decode_tokens(probs, np.array([False, True, False]), tagset)
    assert [(e.start, e.end) for e in ents] == [(1, 2)]


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BIOES", "BILOU"])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_viterbi_decoding_skips_the_search_only_when_argmax_is_already_valid(scheme, data):
    # decode_tokens keeps the argmax when it obeys the scheme; the result must
    # score the same as the full search on every input, valid argmax or not.
    labels = tag_labels(["PER", "LOC"], scheme)
    tagset = parse_tagset(labels, scheme)
    n = data.draw(st.integers(1, 30))
    peaked = data.draw(st.floats(0.05, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    probs = rng.dirichlet(np.full(len(labels), peaked), size=n)
    visible = rng.random(n) > 0.1
    tags, _ = decode_tokens(probs, visible, tagset, decoding="viterbi")
    assert (tags[~visible] == -1).all()
    seq = tags[visible]
    assert is_valid(seq, tagset)
    # The visible tokens are one sequence: the full search over them alone.
    log_probs = np.log(np.clip(probs[visible], 1e-30, None))
    full = viterbi(log_probs, tagset)
    score = log_probs[np.arange(len(seq)), seq].sum()
    assert score == pytest.approx(log_probs[np.arange(len(seq)), full].sum(), rel=1e-9, abs=1e-9)


def seqeval_strict_valid(tags, scheme):
    """Independent validity oracle: under seqeval's strict mode every non-O
    tag of a valid sequence belongs to an entity."""
    from seqeval.scheme import BILOU, IOB1, IOB2, IOBES, Entities

    cls = {"IOB1": IOB1, "IOB2": IOB2, "BIOES": IOBES, "BILOU": BILOU}[scheme]
    if not tags:
        return True
    ents = Entities([list(tags)], cls).entities[0]
    return sum(e.end - e.start for e in ents) == sum(t != "O" for t in tags)


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BIOES", "BILOU"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_viterbi_output_is_valid_for_seqeval_strict_mode(scheme, data):
    labels = tag_labels(["PER", "LOC"], scheme)
    tagset = parse_tagset(labels, scheme)
    n = data.draw(st.integers(1, 25))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    probs = rng.dirichlet(np.full(len(labels), data.draw(st.floats(0.05, 3))), size=n)
    visible = rng.random(n) > 0.2
    tags, _ = decode_tokens(probs, visible, tagset, decoding="viterbi")
    assert seqeval_strict_valid([tagset.labels[t] for t in tags[visible]], scheme)
    # The oracle is not vacuous: the plain argmax is often invalid.
    argmax = [tagset.labels[t] for t in probs.argmax(1)]
    assert seqeval_strict_valid(argmax, scheme) == is_valid(probs.argmax(1), tagset)


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BIOES", "BILOU"])
@pytest.mark.parametrize("decoding", ["conlleval", "viterbi"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_buffer_of_docs_decodes_as_each_doc_alone(scheme, decoding, data):
    # Docs decoded together (one call over the concatenated tokens) give the
    # same tags and entities as each doc decoded on its own: no entity or
    # Viterbi path crosses a doc boundary. Docs may be empty or all invisible.
    labels = tag_labels(["PER", "LOC"], scheme)
    tagset = parse_tagset(labels, scheme)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    sizes = data.draw(st.lists(st.integers(0, 12), min_size=1, max_size=8))
    peaked = data.draw(st.floats(0.05, 3))
    docs = [(rng.dirichlet(np.full(len(labels), peaked), size=n), rng.random(n) > 0.2) for n in sizes]
    probs = np.concatenate([p for p, _ in docs]).reshape(-1, len(labels))
    visible = np.concatenate([v for _, v in docs])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    tags, ents = decode_buffer(probs, visible, offsets, tagset, decoding=decoding)
    got = list(
        zip(
            ents.doc.tolist(),
            ents.start.tolist(),
            ents.end.tolist(),
            [tagset.types[t] for t in ents.type_id],
            ents.score.tolist(),
        )
    )
    want = []
    for i, (p, v) in enumerate(docs):
        doc_tags, doc_ents = decode_tokens(p, v, tagset, decoding=decoding)
        np.testing.assert_array_equal(tags[offsets[i] : offsets[i + 1]], doc_tags)
        want += [(i, e.start, e.end, e.label, e.score) for e in doc_ents]
    assert [g[:4] for g in got] == [w[:4] for w in want]
    np.testing.assert_allclose([g[4] for g in got], [w[4] for w in want], rtol=0, atol=1e-9)  # cumsum over the buffer


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BIOES", "BILOU"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_batched_viterbi_equals_viterbi_on_each_sequence(scheme, data):
    labels = tag_labels(["PER", "LOC"], scheme)
    tagset = parse_tagset(labels, scheme)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    sizes = data.draw(st.lists(st.integers(0, 20), min_size=1, max_size=6))
    seqs = [np.log(rng.dirichlet(np.full(len(labels), 0.5), size=n)).reshape(n, len(labels)) for n in sizes]
    for lp, path in zip(seqs, viterbi_batch(seqs, tagset)):
        assert len(path) == len(lp)
        if len(lp):
            single = viterbi(lp, tagset)
            assert lp[np.arange(len(lp)), path].sum() == pytest.approx(
                lp[np.arange(len(lp)), single].sum(), rel=1e-12, abs=1e-12
            )
            assert is_valid(path, tagset)
