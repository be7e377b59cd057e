"""Save tiny pipelines, or predict with saved ones, under whatever transformers
this interpreter has: tests/test_cross_version.py runs it in the other
environment (transformers 4.53 beside 5.x) to prove that saved pipelines
cross the major version.

    python tests/cross_version.py save FOLDER
    python tests/cross_version.py predict FOLDER
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

KINDS = ("bert", "albert", "longformer")
TEXTS = [
    "Peter Blackburn said on Thursday that the European Commission in Brussels would act .",
    "Maria Müller flew from São Paulo to Zürich ; Werner Zwingmann met her .",
    "",
    "Germany 's representative to the European Union 's veterinary committee said so .",
]


def save(folder: Path) -> None:
    import spacy

    from spacy_longner.testing import build_checkpoint

    for kind in KINDS:
        ckpt = build_checkpoint(folder / f"{kind}-checkpoint", kind)
        nlp = spacy.blank("en")
        nlp.add_pipe("long_ner", config={"model": {"name": str(ckpt), "window": 16}})
        nlp.initialize()
        nlp.to_disk(folder / kind)


def predict(folder: Path) -> dict:
    import spacy
    import transformers

    out = {"transformers": transformers.__version__}
    for kind in KINDS:
        nlp = spacy.load(folder / kind)
        out[kind] = [
            [[e.start, e.end, e.label_, s] for e, s in zip(d.ents, d.spans["long_ner"].attrs["scores"])]
            for d in nlp.pipe(TEXTS)
        ]
    return out


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    if command == "save":
        save(folder)
    else:
        print("RESULT " + json.dumps(predict(folder)))
