"""The CUDA paths: inference on a torch device (explicit or spaCy's
require_gpu), fp16/bf16 autocast, and training with thinc's GPU ops and
mixed precision. They run where CUDA is (a lent GPU machine, via
benchmarks/gpu_check.sh) and skip elsewhere; their CPU sides are covered by the
other tests."""

import numpy as np
import pytest
import spacy
import torch
from conftest import ents_of, make_nlp, person_place_docs
from spacy.tokens import Doc
from spacy.training import Example

SAMPLE_TEXTS = [
    "Peter Blackburn reports from Brussels that the European Commission met German officials on Thursday.",
    "Tokyo and Paris .",
    "EU rejects German call to boycott British lamb .",
]

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

WORDS = [
    "Peter",
    "Blackburn",
    "Brussels",
    "European",
    "Commission",
    "German",
    "Thursday",
    "Tokyo",
    "Paris",
    "Reuters",
    "said",
    "on",
    "the",
    "in",
    "and",
    "of",
    "to",
    "a",
    "EU",
    "UK",
    "Germany",
    "Clinton",
    "Ltd",
    "Inc",
    ".",
    ",",
    "1996",
    "results",
]


def random_texts(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 60))) for _ in range(n)] + SAMPLE_TEXTS + ["", "  "]


def tags(doc):
    return [t.ent_iob_ + t.ent_type_ for t in doc]


@pytest.fixture
def gpu_ops():
    spacy.require_gpu()
    yield
    spacy.require_cpu()


@pytest.mark.parametrize("kind", ["bert", "albert", "longformer"])
def test_cuda_inference_equals_cpu(checkpoints, kind):
    path = checkpoints(kind)
    texts = random_texts(200)
    cpu = make_nlp(path, token_probs=True, window=64)
    gpu = make_nlp(path, token_probs=True, window=64, device="cuda:0")
    cpu_docs, gpu_docs = list(cpu.pipe(texts)), list(gpu.pipe(texts))
    assert next(gpu.get_pipe("long_ner").state.hf_model.parameters()).device.type == "cuda"
    assert [ents_of(d) for d in gpu_docs] == [ents_of(d) for d in cpu_docs]
    for a, b in zip(cpu_docs, gpu_docs):
        assert np.allclose(a._.long_ner_probs, b._.long_ner_probs, atol=1e-4)


def test_require_gpu_moves_the_model_and_keeps_results(checkpoints, gpu_ops):
    path = checkpoints("bert")
    texts = random_texts(50)
    gpu = make_nlp(path)
    out = [ents_of(d) for d in gpu.pipe(texts)]
    assert next(gpu.get_pipe("long_ner").state.hf_model.parameters()).device.type == "cuda"
    spacy.require_cpu()
    assert [ents_of(d) for d in make_nlp(path).pipe(texts)] == out


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_inference_agrees_with_fp32(checkpoints, precision):
    path = checkpoints("bert")
    texts = random_texts(200)
    full = [tags(d) for d in make_nlp(path, device="cuda:0").pipe(texts)]
    half = [tags(d) for d in make_nlp(path, device="cuda:0", precision=precision).pipe(texts)]
    agree = np.mean([a == b for x, y in zip(full, half) for a, b in zip(x, y)])
    assert agree >= 0.97


# thinc 8.3's xp2torch calls cupy's toDlpack, which cupy 14 deprecates.
@pytest.mark.filterwarnings("ignore:This function is deprecated and will be removed")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_training_on_gpu_learns(checkpoints, gpu_ops, precision):
    # A small synthetic set: a lent GPU machine has no CoNLL data.
    docs = person_place_docs(spacy.blank("en").vocab)
    nlp = spacy.blank("en", vocab=docs[0].vocab)
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert")), "precision": precision}})
    examples = [Example(Doc(nlp.vocab, words=[t.text for t in d]), d) for d in docs]
    opt = nlp.initialize(lambda: examples)
    opt.learn_rate = 0.003
    for _ in range(80):
        nlp.update(examples, sgd=opt)
    f = nlp.evaluate(examples)["ents_f"]
    assert f >= 0.9
    shim_device = next(nlp.get_pipe("long_ner").state.hf_model.parameters()).device
    assert shim_device.type == "cuda"
