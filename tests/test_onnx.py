"""runtime = "onnx": the same entities as the torch forward pass for every
family that exports, a coded refusal for those that don't (with the proof
that their graphs are wrong), the graph saved in the pipeline folder and
tied to its weights, re-exported after training, int8 on ONNX Runtime,
threads and worker processes."""

import subprocess
import sys
import threading

import numpy as np
import pytest
import spacy
import srsly
from conftest import ents_of, make_nlp, person_place_docs
from families import FAMILIES
from spacy.tokens import Doc
from spacy.training import Example

from spacy_longner.onnx_backend import GRAPH_FILE, REFUSED_FAMILIES
from spacy_longner.testing import IOB2_LABELS, synthetic_conll_sentences, write_synthetic_conll

pytest.importorskip("onnxruntime")

SENTENCES = [[w for w, _ in s] for s in synthetic_conll_sentences(24, seed=7)]
WINDOW = 96  # wordpieces: more than any sentence, far less than all of them
EXPORTING = [f for f in FAMILIES if f not in REFUSED_FAMILIES]


def tags_and_ents(doc):
    return [IOB2_LABELS[i] for i in doc._.long_ner_probs.argmax(axis=1)], ents_of(doc)


def predictions(path, runtime, **model):
    """Per family: tags and entities of the sentences batched together
    (rows of many lengths), and of one document longer than the window in
    overlapping sliding windows."""
    words = [w for s in SENTENCES for w in s]
    starts = [i == 0 for s in SENTENCES for i, _ in enumerate(s)]
    out = []
    for settings, docs in (({}, SENTENCES), ({"window": WINDOW, "cut_at_sentences": False}, None)):
        nlp = spacy.blank("en")
        nlp.add_pipe(
            "long_ner",
            config={"model": {"name": str(path), "runtime": runtime, **settings, **model}, "token_probs": True},
        )
        inputs = [Doc(nlp.vocab, words=w) for w in docs] if docs else [Doc(nlp.vocab, words=words, sent_starts=starts)]
        if not docs:
            assert nlp.get_pipe("long_ner").state.window < len(inputs[0])
        out.append([tags_and_ents(d) for d in nlp.pipe(inputs)])
    return out


@pytest.mark.parametrize("family", EXPORTING)
def test_onnx_gives_the_torch_entities_batched_and_long(family, family_checkpoint):
    path = family_checkpoint(family)
    torch_out = predictions(path, "torch")
    onnx_out = predictions(path, "onnx")
    assert onnx_out == torch_out
    assert sum(len(ents) for run in onnx_out for _, ents in run) > 0


@pytest.mark.parametrize("family", sorted(REFUSED_FAMILIES))
def test_refused_families_say_so_and_their_graphs_are_wrong(family, family_checkpoint):
    import copy

    from transformers import AutoModelForTokenClassification

    from spacy_longner.onnx_backend import export_checked

    path = family_checkpoint(family)
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(path), "runtime": "onnx"}})
    with pytest.raises(ValueError, match=rf"E030\] The '{family}' checkpoint family .*runtime = \"torch\""):
        nlp("Peter Blackburn went to Brussels .")
    # The refusal is earned: exported anyway, the graph fails or differs at
    # shapes other than the traced one.
    model = AutoModelForTokenClassification.from_pretrained(str(path)).eval()
    with pytest.raises(ValueError, match=rf"E031\] The '{family}' checkpoint does not export"):
        export_checked(copy.deepcopy(model))


@pytest.mark.parametrize("data", ["synthetic", pytest.param("conll", marks=pytest.mark.slow)])
def test_saved_pipeline_loads_its_graph_in_a_new_process(checkpoints, tmp_path, data):
    """A tiny pipeline with runtime onnx, saved, loaded by spacy.load in a
    new process, gives the torch path's entities on CoNLL dev documents
    (synthetic ones here; the real ones with -m slow), without exporting
    again."""
    from spacy.tokens import DocBin

    from spacy_longner.conll import read_conll, to_docs
    from spacy_longner.testing import CONLL_DIR

    if data == "conll":
        if not (CONLL_DIR / "dev.txt").exists():
            pytest.fail(f"CoNLL-2003 data not found at {CONLL_DIR}: the slow tests need it")
        conll = CONLL_DIR
    else:
        conll = write_synthetic_conll(tmp_path / "conll", docs=(2, 6, 2, 2))
    nlp = make_nlp(checkpoints("bert"), runtime="onnx", window=64)
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    folder = tmp_path / "p" / "long_ner"
    assert (folder / GRAPH_FILE).exists()
    assert set(srsly.read_json(folder / "cfg")["onnx"]) >= {"graph_sha256", "weights_sha256"}
    docs = [d for c in read_conll(conll / "dev.txt") for d in to_docs(nlp.vocab, c)]
    DocBin(docs=docs).to_disk(tmp_path / "dev.spacy")
    torch_nlp = spacy.load(tmp_path / "p", config={"components": {"long_ner": {"model": {"runtime": "torch"}}}})
    plain = [Doc(torch_nlp.vocab, words=[t.text for t in d], sent_starts=[t.is_sent_start for t in d]) for d in docs]
    want = [ents_of(d) for d in torch_nlp.pipe(plain)]
    assert sum(map(len, want)) > 0 and max(len(d) for d in docs) > 64
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "p"), str(tmp_path / "dev.spacy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == repr(want)


LOAD_SCRIPT = """
import sys
import spacy
import torch
from spacy.tokens import Doc, DocBin

def no_export(*args, **kwargs):
    raise AssertionError("exported again")

torch.onnx.export = no_export
nlp = spacy.load(sys.argv[1])
assert nlp.get_pipe("long_ner").model.attrs["runtime"] == "onnx"
docs = list(DocBin().from_disk(sys.argv[2]).get_docs(nlp.vocab))
plain = [Doc(nlp.vocab, words=[t.text for t in d], sent_starts=[t.is_sent_start for t in d]) for d in docs]
print([[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(plain)])
"""


def test_a_graph_that_does_not_match_its_folder_is_a_coded_error(checkpoints, tmp_path):
    import shutil

    import srsly

    nlp = make_nlp(checkpoints("bert"), runtime="onnx")
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    other = make_nlp(checkpoints("albert"), runtime="onnx")
    other.initialize()
    other.to_disk(tmp_path / "other")
    folder = tmp_path / "p" / "long_ner"
    # Other weights beside the graph (same architecture, changed values).
    changed = tmp_path / "changed"
    shutil.copytree(tmp_path / "p", changed)
    weights_nlp = spacy.load(tmp_path / "p", config={"components": {"long_ner": {"model": {"runtime": "torch"}}}})
    state = weights_nlp.get_pipe("long_ner").state
    import torch

    with torch.no_grad():
        next(state.hf_model.parameters()).add_(0.01)
    weights_nlp.get_pipe("long_ner").to_disk(tmp_path / "torch_saved")
    shutil.rmtree(changed / "long_ner" / "model")
    shutil.copytree(tmp_path / "torch_saved" / "model", changed / "long_ner" / "model")
    with pytest.raises(ValueError, match=r"E032\] .*exported from other weights"):
        spacy.load(changed)
    # Another pipeline's graph in its place.
    swapped = tmp_path / "swapped"
    shutil.copytree(tmp_path / "p", swapped)
    shutil.copy(tmp_path / "other" / "long_ner" / GRAPH_FILE, swapped / "long_ner" / GRAPH_FILE)
    with pytest.raises(ValueError, match=r"E032\] .*not the graph the cfg names"):
        spacy.load(swapped)
    # A graph the cfg says nothing of.
    cfg = srsly.read_json(folder / "cfg")
    del cfg["onnx"]
    srsly.write_json(folder / "cfg", cfg)
    with pytest.raises(ValueError, match=r"E032\] .*no checksums"):
        spacy.load(tmp_path / "p")
    # Without the graph the folder loads and exports on first use.
    (folder / GRAPH_FILE).unlink()
    loaded = spacy.load(tmp_path / "p")
    assert ents_of(loaded("Peter Blackburn went to Brussels .")) == ents_of(nlp("Peter Blackburn went to Brussels ."))


def test_training_re_exports_the_graph(checkpoints):
    """After update() the graph is exported from the new weights: onnx
    predictions follow training, equal to torch's of the same weights."""
    from spacy_longner.onnx_backend import weights_sha256

    nlp = make_nlp(checkpoints("bert"), runtime="onnx")
    docs = person_place_docs(nlp.vocab, 12)
    examples = [Example(Doc(nlp.vocab, words=[t.text for t in d]), d) for d in docs]
    opt = nlp.initialize(lambda: examples)
    texts = ["Peter Blackburn went to Brussels .", "said Brussels on the Peter Blackburn"]
    pipe = nlp.get_pipe("long_ner")
    before = [ents_of(d) for d in nlp.pipe(texts)]
    graph_before = pipe.state.derived["onnx_graph"]
    sha_before = weights_sha256(pipe.state.hf_model)
    opt.learn_rate = 0.003
    for _ in range(40):
        nlp.update(examples, sgd=opt)
    assert "onnx_graph" not in pipe.state.derived
    after = [ents_of(d) for d in nlp.pipe(texts)]
    assert pipe.state.derived["onnx_graph"] != graph_before and weights_sha256(pipe.state.hf_model) != sha_before
    pipe.model.attrs["runtime"] = "torch"
    assert [ents_of(d) for d in nlp.pipe(texts)] == after
    assert after != before
    assert after[0] == [(0, 2, "PER"), (4, 5, "LOC")]


def test_missing_onnxruntime_names_the_extra(checkpoints, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"E029\] .*pip install \"spacy-longner\[onnx\]\""):
        make_nlp(checkpoints("bert"), runtime="onnx")


def test_runtime_settings_are_checked():
    from spacy_longner.model import build_token_classifier

    with pytest.raises(ValueError, match=r"E034\]"):
        build_token_classifier(runtime="tensorrt")
    with pytest.raises(ValueError, match=r"E033\] .*precision = \"fp32\""):
        build_token_classifier(runtime="onnx", precision="bf16")


def test_hidden_states_from_the_graph_equal_torch(checkpoints):
    """Listeners get the last hidden states from the graph as from torch."""
    from spacy_longner import onnx_backend
    from spacy_longner.batching import plan_buffer
    from spacy_longner.runtime import run_buffer

    nlp = make_nlp(checkpoints("bert"), runtime="onnx")
    model = nlp.get_pipe("long_ner").model
    state = nlp.get_pipe("long_ner").state
    model.attrs["hidden_states"] = True
    docs = [nlp.make_doc(" ".join(s)) for s in SENTENCES[:6]]
    planned = plan_buffer(model, docs, overhead=0)
    torch_logits, torch_hidden = run_buffer(model, state, planned)
    onnx_logits, onnx_hidden = onnx_backend.run_buffer(model, state, planned)
    assert (
        onnx_hidden.shape
        == torch_hidden.shape
        == (sum(e.n_wp for e in planned.encs), state.hf_model.config.hidden_size)
    )
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    np.testing.assert_allclose(onnx_hidden, torch_hidden, atol=1e-4)


def test_int8_on_onnx_keeps_the_torch_int8_layers_fp32(checkpoints):
    """quantize = "int8" quantizes the graph's MatMuls except the
    feed-forward output projections and the head, as the torch int8 path
    does; "int8_all" all of them. Both run and find entities."""
    import logging

    import onnx

    from spacy_longner import onnx_backend

    path = checkpoints("bert")
    counts = {}
    handlers = list(logging.getLogger().handlers)
    for how in ("int8", "int8_all"):
        nlp = make_nlp(path, runtime="onnx", quantize=how)
        doc = nlp("Peter Blackburn went to Brussels and met the European Commission .")
        assert all(e.label_ in {"PER", "LOC", "ORG", "MISC"} for e in doc.ents)
        state = nlp.get_pipe("long_ner").state
        graph = onnx.load_from_string(onnx_backend.int8_graph(state, how))
        counts[how] = sum(n.op_type == "MatMulInteger" for n in graph.graph.node)
    # 2 layers of q, k, v, attention output, intermediate, output; the head.
    assert counts == {"int8": 2 * 5, "int8_all": 2 * 6 + 1}
    # The quantizer's advice neither printed nor left a handler behind.
    assert logging.getLogger().handlers == handlers


def test_concurrent_pipe_calls_share_one_session(checkpoints):
    nlp = make_nlp(checkpoints("bert"), runtime="onnx")
    texts = [" ".join(s) for s in SENTENCES]
    serial = [ents_of(d) for d in nlp.pipe(texts)]
    results = {}

    def work(i):
        results[i] = [ents_of(d) for _ in range(3) for d in nlp.pipe(texts, batch_size=4)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == serial * 3 for i in range(4))
    sessions = [k for k in nlp.get_pipe("long_ner").state.derived if k.startswith("onnx_session")]
    assert len(sessions) == 1


def test_n_process_2_on_onnx(checkpoints, tmp_path):
    nlp = make_nlp(checkpoints("bert"), runtime="onnx")
    nlp.initialize()
    texts = [" ".join(s) for s in SENTENCES[:8]]
    single = [ents_of(d) for d in nlp.pipe(texts)]  # the parent ran its session before forking
    assert [ents_of(d) for d in nlp.pipe(texts, n_process=2, batch_size=2)] == single


def test_import_hf_writes_the_graph(checkpoints, tmp_path):
    from spacy_longner.importer import import_checkpoint

    import_checkpoint(str(checkpoints("bert")), tmp_path / "imported", runtime="onnx")
    assert (tmp_path / "imported" / "long_ner" / GRAPH_FILE).exists()
    assert "onnxruntime>=1.20" in srsly.read_json(tmp_path / "imported" / "meta.json")["requirements"]
    loaded = spacy.load(tmp_path / "imported")
    torch_nlp = make_nlp(checkpoints("bert"))
    text = "Peter Blackburn went to Brussels and met the European Commission ."
    assert ents_of(loaded(text)) == ents_of(torch_nlp(text))
