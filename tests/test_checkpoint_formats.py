"""Checkpoints as exported heads and hubs have them: label names in other
spellings, generic or mixed labels (coded errors, never silent wrong
entities), and tokenizers shipped only as a SentencePiece model."""

import shutil

import pytest
import spacy
from spacy.tokens import Doc

from spacy_longner.decode import parse_tagset
from spacy_longner.testing import IOB2_LABELS, build_checkpoint

WORDS = [
    "Peter",
    "Blackburn",
    "went",
    "to",
    "Brussels",
    "with",
    "the",
    "European",
    "Commission",
    "and",
    "Maria",
    "Müller",
    ".",
]


def entities(path, **cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(path)}, **cfg})
    return [(e.start, e.end, e.label_) for e in nlp(Doc(nlp.vocab, words=WORDS * 6)).ents]


@pytest.mark.parametrize("spell", [str.lower, lambda lab: lab.replace("-", "_")], ids=["lower-case", "underscore"])
def test_other_spellings_of_iob_labels_give_the_same_entities(spell, tmp_path):
    # The same seed gives the same weights: only the label names differ.
    reference = entities(build_checkpoint(tmp_path / "iob2", "bert", IOB2_LABELS, seed=3))
    labels = [spell(lab) for lab in IOB2_LABELS]
    got = entities(build_checkpoint(tmp_path / "spelled", "bert", labels, seed=3))
    assert reference
    assert [(s, e, lab.upper()) for s, e, lab in got] == reference
    assert {lab for _, _, lab in got} <= {spell(lab)[2:] for lab in IOB2_LABELS if lab != "O"}


def test_bare_labels_are_read_as_io_tags(tmp_path):
    labels = ["O", "PER", "LOC", "ORG", "MISC"]
    tagset = parse_tagset(labels)
    assert tagset.scheme == "IO" and tagset.types == ("LOC", "MISC", "ORG", "PER")
    path = build_checkpoint(tmp_path / "io", "bert", labels, seed=3)
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(path)}, "token_probs": True})
    doc = nlp(Doc(nlp.vocab, words=WORDS))
    tags = [labels[i] for i in doc._.long_ner_probs.argmax(axis=1)]
    # IO: an entity is a maximal run of one type (computed here by hand).
    expected, start = [], None
    for i, tag in enumerate(tags + ["O"]):
        if start is not None and tag != tags[start]:
            expected.append((start, i, tags[start]))
            start = None
        if start is None and tag != "O":
            start = i
    assert [(e.start, e.end, e.label_) for e in doc.ents] == expected


@pytest.mark.parametrize(
    "labels,code",
    [
        (["O", "B-PER", "I-PER", "LOC"], "E027"),
        (["O", "LABEL_1", "B-PER", "I-PER"], "E027"),
        (["LABEL_0", "LABEL_1", "LABEL_2"], "E004"),
        (["OUT", "B-PER", "I-PER"], "E008"),
    ],
)
def test_labels_no_scheme_can_read_are_coded_errors(labels, code, tmp_path):
    path = build_checkpoint(tmp_path / "odd", "bert", labels, seed=3)
    with pytest.raises(ValueError, match=code) as info:
        entities(path)
    assert "id2label" in str(info.value)


def spiece_only_albert(folder):
    """A tiny ALBERT checkpoint whose tokenizer is only `spiece.model` (as
    the seed ALBERT checkpoint ships it), trained with sentencepiece."""
    import sentencepiece as spm
    from transformers import AlbertTokenizer

    from spacy_longner.testing import training_text

    source = build_checkpoint(folder.parent / "albert_fast", "albert", IOB2_LABELS, seed=3)
    folder.mkdir()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()),
        model_prefix=str(folder / "spiece"),
        vocab_size=600,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="<pad>",
        unk_piece="<unk>",
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        minloglevel=2,
    )
    (folder / "spiece.vocab").unlink()
    AlbertTokenizer(vocab_file=str(folder / "spiece.model")).save_pretrained(str(folder))
    (folder / "tokenizer.json").unlink()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, folder / name)
    return folder


def test_a_spiece_model_only_checkpoint_loads_with_sentencepiece(tmp_path):
    pytest.importorskip("sentencepiece")
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    folder = spiece_only_albert(tmp_path / "albert_spiece")
    assert {p.name for p in folder.iterdir()} == {
        "spiece.model",
        "tokenizer_config.json",
        "config.json",
        "model.safetensors",
    }
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(folder)}, "token_probs": True})
    doc = nlp(Doc(nlp.vocab, words=WORDS))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
    enc = tokenizer(WORDS, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits[0]
    firsts = [enc.word_ids().index(j) for j in range(len(WORDS))]
    assert doc._.long_ner_probs.argmax(axis=1).tolist() == logits[firsts].argmax(dim=1).tolist()


def test_a_spiece_model_only_checkpoint_without_sentencepiece_names_the_install(tmp_path, monkeypatch):
    import spacy_longner.checkpoint as checkpoint

    folder = tmp_path / "albert_spiece"
    shutil.copytree(build_checkpoint(tmp_path / "albert", "albert", IOB2_LABELS, seed=3), folder)
    (folder / "tokenizer.json").unlink()
    (folder / "spiece.model").write_bytes(b"stand-in: never read, the check comes first")
    monkeypatch.setattr(checkpoint, "sentencepiece_missing", lambda: ["sentencepiece", "protobuf"])
    with pytest.raises(ValueError, match=r"E028.*spiece.model.*pip install \"spacy-longner\[sentencepiece\]\""):
        entities(folder)
