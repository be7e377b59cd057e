"""Raw text as users pass it: whitespace of any kind between words, no
sentence boundaries, forked processes; and the spaCy conventions around the
component."""

import numpy as np
import pytest
import spacy
from conftest import make_nlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc

from spacy_longner.testing import synthetic_conll_sentences

SEPARATORS = [" ", "\n", "\t", "  ", "\u00a0", "\r\n", " \n ", "\n\n", " \t "]
WORDS = [w for s in synthetic_conll_sentences(60, seed=3) for w, _ in s]


def non_space_ents(doc):
    """Entities as (first, last + 1, label) in the numbering of the doc's
    non-whitespace tokens, and a check that none starts or ends on whitespace."""
    index = np.cumsum([not t.is_space for t in doc]) - 1
    out = []
    for e in doc.ents:
        assert not doc[e.start].is_space and not doc[e.end - 1].is_space, e
        out.append((int(index[e.start]), int(index[e.end - 1]) + 1, e.label_))
    return out


@pytest.fixture(scope="module")
def pipelines(checkpoints):
    return {
        (kind, decoding): make_nlp(checkpoints(kind), decoding=decoding)
        for kind in ("bert", "albert", "longformer")
        for decoding in ("conlleval", "viterbi")
    }


@pytest.mark.parametrize("kind", ["bert", "albert", "longformer"])
@pytest.mark.parametrize("decoding", ["conlleval", "viterbi"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_whitespace_between_words_never_changes_the_entities(pipelines, kind, decoding, data):
    nlp = pipelines[(kind, decoding)]
    start = data.draw(st.integers(0, len(WORDS) - 40))
    words = WORDS[start : start + data.draw(st.integers(1, 40))]
    seps = data.draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words) - 1, max_size=len(words) - 1))
    plain = nlp(" ".join(words))
    messy = nlp("".join(w + s for w, s in zip(words, seps + [""])))
    assert [t.text for t in messy if not t.is_space] == [t.text for t in plain]
    assert non_space_ents(messy) == non_space_ents(plain)
    # Confidences are over the visible tokens, so they do not move either.
    np.testing.assert_allclose(
        messy.spans["long_ner"].attrs["scores"], plain.spans["long_ner"].attrs["scores"], rtol=1e-5
    )


def test_a_line_break_inside_a_name_keeps_one_entity(checkpoints):
    # Find a two-word entity on single spaces, then break the line inside it.
    nlp = make_nlp(checkpoints("bert"), decoding="viterbi")
    for sent in synthetic_conll_sentences(200, seed=4):
        words = [w for w, _ in sent]
        doc = nlp(" ".join(words))
        multi = [e for e in doc.ents if len(e) >= 2]
        if multi:
            break
    else:
        pytest.fail("the random model predicts no multi-word entity")
    e = multi[0]
    text = doc.text[: doc[e.start].idx + len(doc[e.start])] + "\n" + doc.text[doc[e.start + 1].idx :]
    broken = nlp(text)
    ents = [x for x in broken.ents if x.start_char == e.start_char]
    assert len(text) == len(doc.text)  # the space became a line break
    assert len(ents) == 1 and ents[0].label_ == e.label_ and ents[0].end_char == e.end_char
    assert any(t.is_space for t in ents[0])


def test_whitespace_tokens_get_no_training_target(checkpoints):
    from spacy.training import Example

    from spacy_longner.training import gold_label_ids

    nlp = make_nlp(checkpoints("bert", labels=("O", "I-PER", "B-PER")), scheme="IOB1")
    pipe = nlp.get_pipe("long_ner")
    words = ["Barack", "\n", "Obama", "Peter"]
    ref = Doc(nlp.vocab, words=words, spaces=[False] * 4, ents=["B-PER", "O", "B-PER", "B-PER"])
    ids = gold_label_ids(Example(Doc(nlp.vocab, words=words, spaces=[False] * 4), ref), pipe.tagset, {})
    labels = [pipe.tagset.labels[i] if i >= 0 else None for i in ids]
    # As if the line break were not there: "Barack Obama Peter", three PER
    # entities in a row, which IOB1 writes I-PER B-PER B-PER.
    assert labels == ["I-PER", None, "B-PER", "B-PER"]


def test_sentence_mode_without_sentences_warns_once_with_what_to_add(checkpoints):
    nlp = make_nlp(checkpoints("bert"), context="sentence_context", context_size=8)
    with pytest.warns(UserWarning, match=r"W003.*sentencizer") as record:
        nlp("Peter Blackburn went to Brussels. He met the European Commission.")
        nlp("Maria Müller flew to Zürich.")
    assert len([w for w in record if "W003" in str(w.message)]) == 1
    # With a sentencizer first, no warning, and the sentences are used.
    nlp.add_pipe("sentencizer", before="long_ner", config={"overwrite": False})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nlp("Peter Blackburn went to Brussels. He met the European Commission.")


FORK_SCRIPT = """
import os, sys, warnings
import torch
import spacy
import spacy_longner  # noqa: F401

torch.set_num_threads(2)
nlp = None
if sys.argv[2] != "load-in-child":
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": sys.argv[1]}})
    nlp.initialize()
if sys.argv[2] == "run-before-fork":
    nlp("Peter Blackburn went to Brussels .")
pid = os.fork()
if pid == 0:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if nlp is None:
            nlp = spacy.blank("en")
            nlp.add_pipe("long_ner", config={"model": {"name": sys.argv[1]}})
        nlp("Maria Müller flew to Zürich .")
        codes = sorted({str(w.message)[10:14] for w in caught if "long_ner W" in str(w.message)})
    print("child", torch.get_num_threads(), ",".join(codes) or "-", flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent", torch.get_num_threads(), flush=True)
"""


@pytest.mark.parametrize(
    "when,warning", [("load-in-child", "-"), ("load-before-fork", "-"), ("run-before-fork", "W004")]
)
def test_a_forked_worker_keeps_its_torch_threads(checkpoints, tmp_path, when, warning):
    # A web server's prefork workers (os.fork, not spaCy's n_process), run
    # in a fresh interpreter: this test process has used torch's threads.
    import subprocess
    import sys

    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(checkpoints("bert")), when], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith(("child", "parent"))]
    # The child keeps 2 threads (after the call; during it, where the parent
    # ran the model, it predicted on one thread and said so with W004).
    assert lines == [f"child 2 {warning}", "parent 2"]


def test_read_ahead_buffers_hold_at_most_batch_size_docs():
    from spacy_longner.stream import read_ahead

    docs = list(range(10))

    class D(int):
        def __len__(self):
            return 5

    stream = [D(i) for i in docs]
    assert [len(b) for b in read_ahead(stream, 1000, 4)] == [4, 4, 2]
    assert [len(b) for b in read_ahead(stream, 12, 4)] == [3, 3, 3, 1]
    assert [len(b) for b in read_ahead(stream, 0, 3)] == [3, 3, 3, 1]


def test_trim_heap_is_a_setting(checkpoints):
    for trim, expected in ((False, 0), (True, 2)):
        calls = []
        nlp = spacy.blank("en")
        ner = nlp.add_pipe(
            "long_ner", config={"model": {"name": str(checkpoints("bert"))}, "trim_heap": trim, "buffer_words": 5}
        )
        ner._trim_heap = lambda calls=calls: calls.append(1)
        list(nlp.pipe(["Peter Blackburn went to Brussels .", "Maria flew to Zürich ."]))
        assert len(calls) == expected


@pytest.mark.parametrize("prefetch", ["off", "on"])
def test_where_warnings_are_errors_w003_is_raised_with_or_without_prefetch(checkpoints, prefetch):
    import warnings

    nlp = make_nlp(checkpoints("bert"), context="sentence_context", context_size=8, prefetch=prefetch)
    texts = ["Peter Blackburn went to Brussels. He met the European Commission.", "Maria Müller flew to Zürich."] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="W003"):
            list(nlp.pipe(texts))
    # Under the default filters it is a warning, once, and every doc comes out.
    with pytest.warns(UserWarning, match="W003"):
        docs = list(nlp.pipe(texts))
    assert [d.text for d in docs] == texts
