"""A tagger listening to a trained long_ner pipeline (frozen, annotating,
`store_trf_data = true`), trained on the first 20 sentences of a CoNLL-2003
file with their POS tags; prints its accuracy on them, whether long_ner's
entities changed, and the HF model's forward calls with and without the
tagger. Needs the [trf] extra (spacy-transformers):

    .venv-trf/bin/python benchmarks/trf_listener_check.py training/minilm/model-best \
        ../shared/data/conll2003/dev.txt 200 0.01
"""

import sys
import time

import numpy as np
import spacy
from spacy.tokens import Doc
from spacy.training import Example

import spacy_longner  # noqa

pipeline, conll = sys.argv[1], sys.argv[2]
sents = []
words, tags = [], []
with open(conll, encoding="utf8") as f:
    lines = f.read().splitlines()
for line in lines:
    parts = line.split()
    if not parts:
        if words:
            sents.append((words, tags))
        words, tags = [], []
        if len(sents) >= 21:
            break
        continue
    if parts[0] == "-DOCSTART-":
        continue
    words.append(parts[0])
    tags.append(parts[1])
sents = sents[:20]
nlp = spacy.load(pipeline, config={"components": {"long_ner": {"store_trf_data": True}}}, exclude=["sentencizer"])
nlp.add_pipe(
    "tagger",
    config={
        "model": {
            "@architectures": "spacy.Tagger.v2",
            "nO": None,
            "normalize": False,
            "tok2vec": {
                "@architectures": "spacy-transformers.TransformerListener.v1",
                "grad_factor": 1.0,
                "upstream": "long_ner",
                "pooling": {"@layers": "reduce_mean.v1"},
            },
        }
    },
)
egs = [Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, tags=t)) for w, t in sents]
calls = []
nlp.get_pipe("long_ner").state.hf_model.register_forward_hook(lambda *a: calls.append(1))
with nlp.select_pipes(disable=["tagger"]):
    before = [
        [(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe([Doc(nlp.vocab, words=w) for w, _ in sents])
    ]
calls.clear()
opt = nlp.initialize(lambda: egs)
opt.learn_rate = float(sys.argv[4])
t0 = time.time()
for _step in range(int(sys.argv[3])):
    nlp.update(egs, sgd=opt, exclude=["long_ner"], annotates=["long_ner"])
calls.clear()
docs = list(nlp.pipe([Doc(nlp.vocab, words=w) for w, _ in sents]))
acc = np.mean([p.tag_ == g for d, (_, t) in zip(docs, sents) for p, g in zip(d, t)])
after = [[(e.start, e.end, e.label_) for e in d.ents] for d in docs]
n = len(calls)
calls.clear()
with nlp.select_pipes(disable=["tagger"]):
    list(nlp.pipe([Doc(nlp.vocab, words=w) for w, _ in sents]))
print(
    f"accuracy {acc:.4f} after {sys.argv[3]} steps ({time.time() - t0:.0f} s); entities unchanged: "
    f"{before == after}; forward calls with tagger {n}, without {len(calls)}"
)
