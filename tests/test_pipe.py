import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import spacy
import torch
from conftest import BILOU_LABELS, IOB2_LABELS, ents_of, fail_on, make_nlp, real_conll_sentences
from seqeval.metrics.sequence_labeling import get_entities
from spacy.tokens import Doc, Span
from transformers import AutoModelForTokenClassification, AutoTokenizer


def reference_spans(path, words_list):
    """Independent reference: the HF model run directly on the pre-split words,
    first-wordpiece argmax, conlleval chunking by seqeval (L/U read as E/S)."""
    tok = (
        AutoTokenizer.from_pretrained(str(path), add_prefix_space=True)
        if "longformer" in str(path)
        else AutoTokenizer.from_pretrained(str(path))
    )
    model = AutoModelForTokenClassification.from_pretrained(str(path)).eval()
    out = []
    for words in words_list:
        enc = tok(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0]
        word_ids = enc.word_ids(0)
        tags = ["O"] * len(words)
        seen = set()
        for i, w in enumerate(word_ids):
            if w is not None and w not in seen:
                seen.add(w)
                tags[w] = model.config.id2label[int(logits[i].argmax())]
        mapped = [t.replace("L-", "E-", 1).replace("U-", "S-", 1) if t[:2] in ("L-", "U-") else t for t in tags]
        out.append(sorted((s, e + 1, t) for t, s, e in get_entities(mapped)))
    return out


@pytest.mark.parametrize(
    "kind,labels", [("bert", IOB2_LABELS), ("albert", IOB2_LABELS), ("longformer", IOB2_LABELS), ("bert", BILOU_LABELS)]
)
def test_ents_equal_conlleval_chunks_of_first_wordpiece_argmax(checkpoints, conll_dev_sentences, kind, labels):
    check_against_reference(checkpoints(kind, tuple(labels)), conll_dev_sentences)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bert", "albert", "longformer"])
def test_ents_equal_reference_on_real_conll_dev(checkpoints, kind):
    check_against_reference(checkpoints(kind), real_conll_sentences("dev.txt", limit=1000))


def check_against_reference(path, sentences):
    words_list = [[w for w, _ in s] for s in sentences]
    nlp = make_nlp(path)
    docs = list(nlp.pipe(Doc(nlp.vocab, words=words) for words in words_list))
    expected = reference_spans(path, words_list)
    got = [sorted(ents_of(d)) for d in docs]
    assert sum(len(e) for e in expected) > 50  # the random model predicts entities
    assert got == expected


@pytest.mark.parametrize("kind", ["bert", "albert", "longformer"])
def test_windowed_prediction_equals_whole_document_prediction(checkpoints, kind):
    path = checkpoints(kind, tuple(IOB2_LABELS), context_free=True)
    rng = np.random.default_rng(0)
    vocab = [
        "Peter",
        "Blackburn",
        "said",
        "on",
        "Thursday",
        "that",
        "the",
        "European",
        "Commission",
        "in",
        "Brussels",
        ",",
        "Germany",
        "and",
        "Tokyo",
        "met",
        "Müller",
        "'",
        "s",
        "team",
        ".",
    ]
    words = [vocab[i] for i in rng.integers(0, len(vocab), 20_000)]
    # Reference: one forward pass over the whole document (position ids fixed,
    # which a context-free checkpoint ignores), first-wordpiece argmax.
    tok = (
        AutoTokenizer.from_pretrained(str(path), add_prefix_space=True)
        if kind == "longformer"
        else AutoTokenizer.from_pretrained(str(path))
    )
    model = AutoModelForTokenClassification.from_pretrained(str(path)).eval()
    enc = tok(words, is_split_into_words=True, return_tensors="pt", verbose=False)
    pos = torch.full_like(enc["input_ids"], model.config.pad_token_id + 1 if kind == "longformer" else 0)
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], position_ids=pos, token_type_ids=torch.zeros_like(pos)).logits[0]
    assert enc["input_ids"].shape[1] > 4 * 4096  # far longer than any window
    word_ids = np.array([-1 if w is None else w for w in enc.word_ids(0)])
    first = np.flatnonzero((word_ids >= 0) & np.r_[True, word_ids[1:] != word_ids[:-1]])
    tags = [model.config.id2label[int(i)] for i in logits[first].argmax(-1)]
    expected = sorted((s, e + 1, t) for t, s, e in get_entities(tags))
    # Windows cut where sentences start (after each "."), and sliding windows.
    for window, cut in ((64, True), (64, False), (None, True)):
        nlp = make_nlp(path, window=window, cut_at_sentences=cut)
        doc = nlp(Doc(nlp.vocab, words=words))
        assert sorted(ents_of(doc)) == expected, f"window={window} cut_at_sentences={cut}"
    assert len(expected) > 1000


EDGE_TEXTS = [
    "",
    " ",
    "   \n\t  ",
    "\t\t\t\n\n\n\r\n  \t",
    "Peter\x00Blackburn \x01\x02\x03 went to Brussels\x7f.",
    "Family 👨‍👩‍👧‍👦 in Paris 🇫🇷 with Zoë 😀😀😀",
    "مرحبا بكم في القاهرة mit Peter שלום ירושלים",
    "東京で会議 北京 서울에서 Tokyo 会議",
    "Ångström, e\u0301e\u0301\u0301, Zu\u0308rich, a\u0300\u0301\u0302\u0303\u0304",
    "\u200b\u200d\ufeff\u2028\u2029 zero width \u200b Peter",
    "x" * 100_000,
    "Peter " + "é" * 50_000 + " went to Brussels",
]


def check_doc(doc, text):
    assert doc.text == text
    prev_end = 0
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)
        assert ent.start >= prev_end
        prev_end = ent.end
        assert not doc[ent.start].is_space and not doc[ent.end - 1].is_space
    group = doc.spans["long_ner"]
    assert len(group.attrs["scores"]) == len(group)
    assert all(0.0 <= s <= 1.0 for s in group.attrs["scores"])


@pytest.mark.parametrize("kind", ["bert", "longformer", "albert"])
def test_bad_input_never_crashes_and_loses_nothing(checkpoints, kind):
    nlp = make_nlp(checkpoints(kind), window=48)
    texts = EDGE_TEXTS + ["Peter Blackburn " * 3000]
    docs = list(nlp.pipe(texts, batch_size=4))
    assert len(docs) == len(texts)
    for doc, text in zip(docs, texts):
        check_doc(doc, text)
    assert list(nlp.pipe([])) == []


def test_a_million_characters(checkpoints):
    nlp = make_nlp(checkpoints("bert"))
    unit = "Peter Blackburn went to Brussels .\n"
    text = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    doc = nlp(text)
    check_doc(doc, text)
    assert len(doc.ents) > 1000


def test_token_without_wordpiece_never_starts_or_ends_an_entity(checkpoints):
    nlp = make_nlp(checkpoints("bert"), token_probs=True)
    words = ["Peter", "\x00", "Blackburn", "\x01\x02"] * 30
    doc = nlp(Doc(nlp.vocab, words=words))
    probs = doc._.long_ner_probs
    assert probs.shape == (len(doc), len(IOB2_LABELS))
    assert doc._.long_ner_labels == IOB2_LABELS
    # Like whitespace, a token the model never saw may sit inside an entity
    # (the words around it are decoded as neighbours), never at its edge.
    invisible = {i for i, w in enumerate(words) if w.startswith(("\x00", "\x01"))}
    assert doc.ents and all(e.start not in invisible and e.end - 1 not in invisible for e in doc.ents)
    for i, _w in enumerate(words):
        if i in invisible:
            assert probs[i].sum() == 0
        else:
            assert probs[i].sum() == pytest.approx(1.0, abs=1e-5)


def test_options_label_map_ignore_spans_output(checkpoints, conll_dev_sentences):
    path = checkpoints("bert")
    words_list = [[w for w, _ in s] for s in conll_dev_sentences[:60]]
    base = make_nlp(path)
    docs = [base(Doc(base.vocab, words=w)) for w in words_list]
    mapped = make_nlp(path, label_map={"PER": "PERSON"}, ignore_labels=["MISC"])
    spans_nlp = make_nlp(path, output="spans", spans_key="hf")
    for words, doc in zip(words_list, docs):
        m = mapped(Doc(mapped.vocab, words=words))
        want = [(s, e, "PERSON" if lab == "PER" else lab) for s, e, lab in ents_of(doc) if lab != "MISC"]
        assert ents_of(m) == want
        sp = spans_nlp(Doc(spans_nlp.vocab, words=words))
        assert sp.ents == ()
        assert [(s.start, s.end, s.label_) for s in sp.spans["hf"]] == ents_of(doc)
        assert sp.spans["hf"].attrs["scores"] == pytest.approx(doc.spans["long_ner"].attrs["scores"])
    assert set(mapped.get_pipe("long_ner").labels) == {"PERSON", "LOC", "ORG"}


def test_existing_entities_overwrite_keep_fill(checkpoints):
    path = checkpoints("bert")
    words = ["Peter", "Blackburn", "went", "to", "Brussels", "with", "the", "European", "Commission", "on", "Thursday"]
    pred = ents_of(make_nlp(path)(Doc(spacy.blank("en").vocab, words=words)))
    assert pred
    s0, e0, _ = pred[0]
    results = {}
    for mode in ("overwrite", "keep", "fill"):
        nlp = make_nlp(path, existing_ents=mode)
        doc = Doc(nlp.vocab, words=words)
        doc.ents = [Span(doc, s0, e0, label="RULE")]
        results[mode] = ents_of(nlp(doc))
    assert results["overwrite"] == pred
    assert results["keep"] == [(s0, e0, "RULE")]
    assert (s0, e0, "RULE") in results["fill"]
    assert set(results["fill"]) == {(s0, e0, "RULE")} | {p for p in pred if p[1] <= s0 or p[0] >= e0}


@pytest.mark.parametrize("aggregation", ["average", "max"])
def test_aggregation_settings_run(checkpoints, aggregation):
    nlp = make_nlp(checkpoints("albert"), aggregation=aggregation, decoding="viterbi")
    doc = nlp("Peter Blackburn went to Brussels with the European Commission on Thursday .")
    check_doc(doc, doc.text)


def test_missing_checkpoint_folder_is_an_error_at_add_pipe(tmp_path):
    missing = tmp_path / "no" / "such-checkpoint"
    with pytest.raises(ValueError, match=r"E002.*" + str(missing).replace("/", ".")):
        make_nlp(missing)


def test_a_saved_pipeline_loads_where_its_original_checkpoint_folder_is_gone(checkpoints, tmp_path):
    import shutil

    source = tmp_path / "checkpoint"
    shutil.copytree(checkpoints("bert"), source)
    nlp = make_nlp(source)
    text = "Peter Blackburn went to Brussels ."
    expected = ents_of(nlp(text))
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(source)
    assert ents_of(spacy.load(tmp_path / "pipeline")(text)) == expected


def test_errors_end_in_one_full_stop(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ValueError) as info:
        make_nlp(tmp_path / "broken")("Peter went to Brussels")
    message = str(info.value)
    assert "E003" in message and ".." not in message and message.endswith(".")


def test_bad_configs_give_coded_errors(checkpoints):
    with pytest.raises(ValueError, match=r"E006.*stride = 64.*window = 64"):
        make_nlp(checkpoints("bert"), window=64, stride=64)
    with pytest.raises(ValueError, match=r"E005.*window = 600.*at most 510"):
        make_nlp(checkpoints("bert"), window=600)("Peter")
    with pytest.raises(ValueError, match=r"E004"):
        make_nlp(checkpoints("bert", labels=None, head=False))("Peter")
    with pytest.raises(ValueError, match=r"E001"):
        make_nlp("")("Peter")
    with pytest.raises(Exception, match="aggregation"):
        make_nlp(checkpoints("bert"), aggregation="mean")
    with pytest.raises(Exception, match="precision"):
        make_nlp(checkpoints("bert"), precision="fp8")
    with pytest.raises(ValueError, match=r"E010.*buffer_words"):
        make_nlp(checkpoints("bert"), buffer_words=-1)
    with pytest.raises(ValueError, match=r"E010.*max_grad_norm"):
        make_nlp(checkpoints("bert"), max_grad_norm=-1.0)
    with pytest.raises(ValueError, match=r"E017.*pack = -1"):
        make_nlp(checkpoints("bert"), context="sentence_context", pack=-1)


def test_initialize_keeps_a_fine_tuned_head(checkpoints):
    path = checkpoints("bert")
    nlp = make_nlp(path)
    text = "Peter Blackburn went to Brussels with the European Commission on Thursday ."
    before = ents_of(nlp(text))
    nlp.initialize()
    assert ents_of(nlp(text)) == before


RUN_SAVED = """
import json, sys, spacy
nlp = spacy.load(sys.argv[1])
texts = json.loads(sys.argv[2])
print(json.dumps([[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]))
"""

SAMPLE_TEXTS = [
    "Peter Blackburn went to Brussels with the European Commission on Thursday .",
    "Germany 's representative Werner Zwingmann said on Wednesday consumers should buy sheepmeat from Britain .",
    "",
    "Tokyo , Paris and New York ; Maria Müller met José in São Paulo . " * 40,
]


def run_fresh(target: str, texts, env_extra=None):
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env_extra or {})}
    out = subprocess.run(
        [sys.executable, "-c", RUN_SAVED, target, json.dumps(texts)], capture_output=True, text=True, env=env, cwd="/"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [[tuple(e) for e in d] for d in json.loads(out.stdout.strip().splitlines()[-1])]


@pytest.mark.parametrize("kind", ["bert", "longformer", "albert"])
def test_to_disk_then_load_without_the_checkpoint(checkpoints, tmp_path, kind):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoints(kind), ckpt)
    nlp = make_nlp(ckpt, window=32, global_attention="first" if kind == "longformer" else "auto")
    expected = [ents_of(d) for d in nlp.pipe(SAMPLE_TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(ckpt)
    saved = tmp_path / "pipeline" / "long_ner" / "model"
    assert (saved / "model.safetensors").exists() and (saved / "config.json").exists()
    assert run_fresh(str(tmp_path / "pipeline"), SAMPLE_TEXTS) == expected
    # to_bytes / from_bytes, as spaCy's docs rebuild a pipeline: from its
    # config (whose checkpoint folder is gone), then the bytes
    nlp2 = spacy.util.get_lang_class("en").from_config(nlp.config)
    nlp2.from_bytes(nlp.to_bytes())
    assert [ents_of(d) for d in nlp2.pipe(SAMPLE_TEXTS)] == expected


def test_damaged_or_unsafe_pipeline_folders_give_coded_errors(checkpoints, tmp_path):
    nlp = make_nlp(checkpoints("bert"))
    nlp.initialize()
    nlp.to_disk(tmp_path / "good")

    def damaged(name, change):
        folder = tmp_path / name
        shutil.copytree(tmp_path / "good", folder)
        change(folder / "long_ner")
        return folder

    def edit_cfg(key, value):
        def change(d):
            cfg = json.loads((d / "cfg").read_text())
            cfg[key] = value
            (d / "cfg").write_text(json.dumps(cfg))

        return change

    cases = [
        (edit_cfg("model_labels", ["O", "B-X", "I-X"]), r"E019.*model_labels"),
        (lambda d: (d / "cfg").write_text("{not json"), r"E019.*cannot be read"),
        (lambda d: (d / "cfg").unlink(), r"E019.*cannot be read"),
        # A pickle beside or instead of the safetensors file: refused, not loaded.
        (
            lambda d: torch.save({"x": torch.zeros(1)}, d / "model" / "pytorch_model.bin"),
            r"E020.*pytorch_model.bin.*safetensors only",
        ),
        (
            lambda d: (
                torch.save({"x": torch.zeros(1)}, d / "model" / "pytorch_model.bin"),
                (d / "model" / "model.safetensors").unlink(),
            ),
            r"E020",
        ),
        # Cut off in a copy.
        (
            lambda d: (d / "model" / "model.safetensors").write_bytes(
                (d / "model" / "model.safetensors").read_bytes()[:100]
            ),
            r"E021.*model.safetensors.*damaged",
        ),
    ]
    for i, (change, pattern) in enumerate(cases):
        with pytest.raises(ValueError, match=pattern):
            spacy.load(damaged(f"case{i}", change))
    assert ents_of(spacy.load(tmp_path / "good")(SAMPLE_TEXTS[0])) == ents_of(nlp(SAMPLE_TEXTS[0]))
    # Settings are not damage: a window chosen at load time is taken.
    smaller = spacy.load(tmp_path / "good", config={"components": {"long_ner": {"model": {"window": 16}}}})
    assert smaller.get_pipe("long_ner").state.window == 16


def test_spacy_package_wheel_installs_and_loads_by_name(checkpoints, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoints("bert"), ckpt)
    nlp = make_nlp(ckpt)
    nlp.meta["name"] = "longner_test"
    nlp.meta["version"] = "0.0.1"
    expected = [ents_of(d) for d in nlp.pipe(SAMPLE_TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(ckpt)
    (tmp_path / "pkg").mkdir()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "package",
            str(tmp_path / "pipeline"),
            str(tmp_path / "pkg"),
            "--build",
            "wheel",
            "--force",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    wheels = list((tmp_path / "pkg").rglob("*.whl"))
    assert len(wheels) == 1
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheels[0])],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    shutil.rmtree(tmp_path / "pipeline")
    assert run_fresh("en_longner_test", SAMPLE_TEXTS, {"PYTHONPATH": str(site)}) == expected


def test_int8_quantized_cpu_mode_runs_and_is_saved(checkpoints, tmp_path):
    path = checkpoints("bert")
    text = "Peter Blackburn went to Brussels with the European Commission on Thursday ."
    fp32 = make_nlp(path)
    q = make_nlp(path, quantize="int8")
    doc_q = q(text)
    check_doc(doc_q, text)
    state = q.get_pipe("long_ner").state
    assert "quantized_int8" in state.derived
    assert state.hf_model.classifier.weight.dtype == torch.float32  # fp32 weights kept
    # Tags mostly agree with fp32 on a random model (int8 noise flips a few).
    tags = lambda d: [t.ent_iob_ + t.ent_type_ for t in d]  # noqa: E731
    agree = np.mean([a == b for a, b in zip(tags(fp32(text)), tags(doc_q))])
    assert agree >= 0.7
    q.to_disk(tmp_path / "q")
    loaded = spacy.load(tmp_path / "q")
    assert loaded.get_pipe("long_ner").model.attrs["quantize"] == "int8"
    assert ents_of(loaded(text)) == ents_of(doc_q)


def test_n_process_2_gives_identical_results(checkpoints, tmp_path):
    nlp = make_nlp(checkpoints("bert"))
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    texts = SAMPLE_TEXTS * 3
    multi = [ents_of(d) for d in loaded.pipe(texts, n_process=2, batch_size=2)]
    single = [ents_of(d) for d in loaded.pipe(texts)]
    assert multi == single


def test_device_and_precision_settings_on_cpu(checkpoints):
    path = checkpoints("bert")
    texts = ["Peter Blackburn went to Brussels .", "Tokyo and Paris ."] * 3
    base = [ents_of(d) for d in make_nlp(path).pipe(texts)]
    explicit = make_nlp(path, device="cpu")
    assert [ents_of(d) for d in explicit.pipe(texts)] == base
    half = make_nlp(path, precision="fp16")
    with pytest.warns(UserWarning, match="W002") as record:
        out = [ents_of(d) for d in half.pipe(texts, batch_size=16)]
    assert len(record) == 1  # one warning per batch, not per doc
    assert out == base  # fp16 is only used on CUDA: CPU runs fp32


def test_bf16_on_cpu_runs_in_bf16_where_the_cpu_has_it(checkpoints):
    import warnings

    import numpy as np

    from spacy_longner.device import cpu_has_bf16

    path = checkpoints("bert")
    texts = ["Peter Blackburn went to Brussels .", "Tokyo and Paris are far from Lima ."] * 3
    base = [d._.long_ner_probs for d in make_nlp(path, token_probs=True).pipe(texts)]
    bf16 = make_nlp(path, token_probs=True, precision="bf16")
    if cpu_has_bf16():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no W002: it really runs in bf16
            out = [d._.long_ner_probs for d in bf16.pipe(texts)]
        diffs = [np.abs(a - b).max() for a, b in zip(out, base)]
        assert 0 < max(diffs) < 0.05  # bf16 rounding: different, but close
    else:
        with pytest.warns(UserWarning, match="W002"):
            out = [d._.long_ner_probs for d in bf16.pipe(texts)]
        assert all(np.array_equal(a, b) for a, b in zip(out, base))


def test_read_ahead_buffers_keep_order_and_do_not_change_results(checkpoints):
    from spacy_longner.stream import read_ahead

    nlp = spacy.blank("en")
    docs = [nlp.make_doc(t) for t in ["a b c", "", "d e", "f g h i j", "k"]]
    assert [[len(d) for d in b] for b in read_ahead(iter(docs), 4, 100)] == [[3, 0, 2], [5], [1]]
    assert [[len(d) for d in b] for b in read_ahead(iter(docs), 0, 2)] == [[3, 0], [2, 5], [1]]
    assert list(read_ahead(iter([]), 4, 2)) == []
    texts = (SAMPLE_TEXTS * 4) + ["", "Paris"]
    path = checkpoints("bert")
    one_by_one = [ents_of(make_nlp(path, buffer_words=0)(t)) for t in texts]
    for buffer_words, batch_size in ((0, 1), (0, 3), (7, 2), (32768, 64)):
        out = list(make_nlp(path, buffer_words=buffer_words).pipe(texts, batch_size=batch_size))
        assert [d.text for d in out] == texts
        assert [ents_of(d) for d in out] == one_by_one


@pytest.mark.parametrize("kind", ["bert", "albert", "longformer"])
def test_int8_keeps_ffn_output_and_head_in_fp32_int8_all_quantizes_every_linear(checkpoints, kind):
    text = "Peter Blackburn went to Brussels with the European Commission on Thursday ."
    for how in ("int8", "int8_all"):
        nlp = make_nlp(checkpoints(kind), quantize=how)
        check_doc(nlp(text), text)
        qmodel = nlp.get_pipe("long_ner").state.derived[f"quantized_{how}"]
        config = qmodel.config
        dense = {n: m for n, m in qmodel.named_modules() if isinstance(m, torch.nn.Linear)}
        quantized = {
            n: m
            for n, m in qmodel.named_modules()
            if type(m).__name__ == "Linear" and "quantized" in type(m).__module__
        }
        assert quantized, "nothing was quantized"
        if how == "int8_all":
            assert not dense
        else:
            # Left in fp32: exactly the feed-forward down-projections and the classifier.
            assert dense and all(
                (m.in_features, m.out_features) == (config.intermediate_size, config.hidden_size) or n == "classifier"
                for n, m in dense.items()
            )
            assert "classifier" in dense
            assert any(m.in_features == config.hidden_size for m in quantized.values())


def test_a_failing_doc_in_a_buffer_reaches_the_error_handler_alone(checkpoints):
    from spacy.util import ignore_error

    path = checkpoints("bert")
    texts = SAMPLE_TEXTS + ["this one BOOMs"] + SAMPLE_TEXTS
    expected = [ents_of(d) for d in make_nlp(path).pipe(SAMPLE_TEXTS + SAMPLE_TEXTS)]
    nlp = make_nlp(path)
    pipe = nlp.get_pipe("long_ner")
    fail_on(pipe, "BOOM")
    with pytest.raises(RuntimeError, match="BOOM"):
        list(nlp.pipe(texts))
    nlp.set_error_handler(ignore_error)
    out = list(nlp.pipe(texts))
    assert [d.text for d in out] == SAMPLE_TEXTS + SAMPLE_TEXTS
    assert [ents_of(d) for d in out] == expected
