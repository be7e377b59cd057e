"""fp32 vs quantize="int8" for a trained pipeline on CoNLL dev (gold sentences):
words/s and conlleval F1, in one run. Paths: edit P and the corpus below, or
run as is after `spacy project run all` in a checkout next to ../fresh.

    python scripts/int8_check.py PIPELINE CORPUS.spacy OUT.json
"""
import sys
import time, json, spacy
from spacy.tokens import Doc, DocBin
from spacy_longner.report import conlleval, doc_iob2
P = sys.argv[1]
gold = list(DocBin().from_disk(sys.argv[2]).get_docs(spacy.blank("en").vocab))
out = {}
for q in ("none", "int8"):
    nlp = spacy.load(P, config={"components": {"long_ner": {"model": {"quantize": q}}}})
    inputs = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d], sent_starts=[bool(t.is_sent_start) for t in d]) for d in gold]
    list(nlp.pipe(inputs[:3]))
    t = time.perf_counter(); docs = list(nlp.pipe(inputs, batch_size=32)); s = time.perf_counter() - t
    f = conlleval([doc_iob2(d) for d in gold], [doc_iob2(d) for d in docs])["f1"]
    out[q] = {"words_per_second": sum(len(d) for d in gold) / s, "dev_f1": f}
    print(q, out[q], flush=True)
json.dump(out, open(sys.argv[3], "w"), indent=2)
