"""Tiny, random, offline token-classification checkpoints (BERT, ALBERT,
Longformer) with tokenizers trained on the fly: for tests, the project's CI
workflow and examples. Never for real use."""

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

CONLL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conll2003"
IOB2_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
BILOU_LABELS = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG", "MISC") for p in "BILU"]

_BUILTIN_TEXT = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "BRUSSELS 1996-08-22",
    "The European Commission said on Thursday it disagreed with German advice to consumers to shun British lamb "
    "until scientists determine whether mad cow disease can be transmitted to sheep .",
    "Germany 's representative to the European Union 's veterinary committee Werner Zwingmann said on Wednesday "
    "consumers should buy sheepmeat from countries other than Britain until the scientific advice was clearer .",
    "Tokyo , Paris and New York ; Maria Müller met José in São Paulo and Zürich on 12 March .",
    "Ölpreis über 100 Dollar , sagte die Bundesbank in Frankfurt am Main .",
]


def read_conll_sentences(path: Path, limit: Optional[int] = None) -> list[list[tuple]]:
    """(word, tag) sentences from a CoNLL-2003 file, -DOCSTART- blocks left out."""
    from .conll import read_conll

    sents: list[list[tuple]] = []
    for doc in read_conll(path):
        for words, tags in zip(doc.sentences, doc.tags):
            sents.append(list(zip(words, tags)))
            if limit and len(sents) >= limit:
                return sents
    return sents


_NAMES = {
    "PER": [
        "Peter Blackburn",
        "Werner Zwingmann",
        "Maria Müller",
        "José",
        "Nikolaus van der Pas",
        "Franz Fischler",
        "Hendrix",
    ],
    "LOC": ["Brussels", "Germany", "Britain", "São Paulo", "Zürich", "New York", "Frankfurt am Main", "Tokyo"],
    "ORG": ["European Commission", "European Union", "Bundesbank", "Reuters", "Commission", "Bayer Leverkusen"],
    "MISC": ["German", "British", "European", "Olympic", "Russian-born", "Euro 96"],
}
_TEMPLATES = [
    "{PER} said on Thursday that the {ORG} in {LOC} would act .",
    "The {MISC} team met {PER} and {PER} in {LOC} .",
    "{ORG} shares rose 2.5 percent in {LOC} , the {ORG} said .",
    "{LOC} 1996-08-22",
    "Consumers should buy sheepmeat from {LOC} until the {MISC} advice was clearer , {PER} told {ORG} .",
    "{PER} ( {LOC} ) beat {PER} 6-3 6-4 .",
    "Tokyo , Paris and {LOC} ; no entity here at all .",
    "He told the {MISC} newspaper that {ORG} and {ORG} had agreed .",
]


def synthetic_conll_sentences(n: int = 200, seed: int = 0) -> list[list[tuple]]:
    """(word, IOB2 tag) sentences built from templates and entity names, for
    tests that must not depend on the CoNLL files: every entity type, names
    of one to four words, adjacent entities, non-ASCII words and
    sentences without entities."""
    import random

    rng = random.Random(seed)
    sents = []
    for _ in range(n):
        words: list[tuple] = []
        for piece in rng.choice(_TEMPLATES).split():
            if piece.startswith("{") and piece.endswith("}"):
                etype = piece[1:-1]
                name = rng.choice(_NAMES[etype]).split()
                words.extend((w, ("B-" if i == 0 else "I-") + etype) for i, w in enumerate(name))
            else:
                words.append((piece, "O"))
        sents.append(words)
    return sents


def _iob1(tags: Sequence[str]) -> list[str]:
    """IOB2 tags as CoNLL-2003's original files write them (IOB1): I- for
    every entity token, B- only where an entity directly follows one of the
    same type."""
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("B-") and not (prev != "O" and prev[2:] == tag[2:]):
            tag = "I-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def write_synthetic_conll(
    folder: Path, *, sentences_per_doc: int = 8, docs: Sequence[int] = (12, 4, 4, 4), seed: int = 0
) -> Path:
    """CoNLL-2003-shaped files (train, dev, test in IOB1; test_conllpp in
    IOB2) of synthetic sentences, for tests and examples that must run
    without the real data."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = ("train.txt", "dev.txt", "test.txt", "test_conllpp.txt")
    for k, (name, n_docs) in enumerate(zip(names, docs)):
        sents = synthetic_conll_sentences(n_docs * sentences_per_doc, seed=seed + k)
        lines = []
        for d in range(n_docs):
            lines += ["-DOCSTART- -X- -X- O", ""]
            for sent in sents[d * sentences_per_doc : (d + 1) * sentences_per_doc]:
                words, gold = zip(*sent)
                tags = list(gold) if name == "test_conllpp.txt" else _iob1(gold)
                lines += [f"{w} NN I-NP {t}" for w, t in zip(words, tags)] + [""]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf8")
    return folder


def training_text(conll_dir: Path = CONLL_DIR) -> list[str]:
    lines = list(_BUILTIN_TEXT) + [" ".join(w for w, _ in s) for s in synthetic_conll_sentences(200)]
    train = Path(conll_dir) / "train.txt"
    if train.exists():
        lines += [" ".join(w for w, _ in s) for s in read_conll_sentences(train, limit=3000)]
    return lines


def train_tokenizer(kind: str, lines: Sequence[str], vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if kind == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(lines, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        tok.decoder = decoders.WordPiece()
        from transformers import BertTokenizerFast  # type: ignore[attr-defined]  # lazily exported

        return BertTokenizerFast(tokenizer_object=tok, model_max_length=512)
    if kind == "albert":
        tok = Tokenizer(models.Unigram())
        # As a real ALBERT tokenizer (keep_accents=False, do_lower_case=True):
        # transformers 5 rebuilds this normalizer from those settings.
        tok.normalizer = normalizers.Sequence(
            [
                normalizers.Replace("``", '"'),
                normalizers.Replace("''", '"'),
                normalizers.NFKD(),
                normalizers.StripAccents(),
                normalizers.Lowercase(),
            ]
        )
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(
            lines, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
        )
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        tok.decoder = decoders.Metaspace()
        from transformers import AlbertTokenizerFast  # type: ignore[attr-defined]  # lazily exported

        return AlbertTokenizerFast(
            tokenizer_object=tok,
            do_lower_case=True,
            model_max_length=512,
            pad_token="<pad>",
            unk_token="<unk>",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    if kind == "longformer":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok.train_from_iterator(
            lines,
            trainers.BpeTrainer(
                vocab_size=vocab_size + 100,
                special_tokens=specials,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            ),
        )
        sep, cls = tok.token_to_id("</s>"), tok.token_to_id("<s>")
        assert sep is not None and cls is not None  # special tokens of the trainer
        tok.post_processor = processors.RobertaProcessing(("</s>", sep), ("<s>", cls))
        tok.decoder = decoders.ByteLevel()
        from transformers import LongformerTokenizerFast  # type: ignore[attr-defined]  # lazily exported

        return LongformerTokenizerFast(
            tokenizer_object=tok,
            model_max_length=4096,
            bos_token="<s>",
            eos_token="</s>",
            sep_token="</s>",
            cls_token="<s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
        )
    raise ValueError(kind)


def build_checkpoint(
    path: Path,
    kind: str,
    labels: Optional[Sequence[str]] = IOB2_LABELS,
    *,
    context_free: bool = False,
    seed: int = 0,
    head: bool = True,
    hidden_size: int = 32,
    vocab_size: int = 600,
    o_bias: float = 0.0,
) -> Path:
    """Save a tiny random token-classification checkpoint of `kind` to `path`.

    context_free: no transformer layers and zeroed position/token-type
        embeddings, so each wordpiece's logits depend on that wordpiece only.
    head: False saves a bare encoder (AutoModel, no classifier).
    hidden_size, vocab_size: the width (feed-forward 2x as wide) and the
        tokenizer's vocabulary; o_bias: added to the head's bias for "O", so
        that a speed benchmark's random model finds about as many entities as
        a trained one.
    """
    import torch
    from transformers import (
        AlbertConfig,
        AutoModel,
        AutoModelForTokenClassification,
        BertConfig,
        LongformerConfig,
        PretrainedConfig,
    )

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(kind, training_text(), vocab_size)
    # Longformer can't run with no layers (its padding reads the per-layer
    # attention windows): it gets one layer whose attention output is zeroed.
    n_layers = (1 if kind == "longformer" else 0) if context_free else 2
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        pad_token_id=tokenizer.pad_token_id,
    )
    if labels is not None:
        common.update(id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
    config: PretrainedConfig
    if kind == "bert":
        config = BertConfig(max_position_embeddings=512, **common)
    elif kind == "albert":
        config = AlbertConfig(max_position_embeddings=512, embedding_size=16, num_hidden_groups=1, **common)
    else:
        config = LongformerConfig(
            max_position_embeddings=4098, attention_window=8, bos_token_id=0, eos_token_id=2, sep_token_id=2, **common
        )
    model = (AutoModelForTokenClassification if head else AutoModel).from_config(config)
    base = getattr(model, model.base_model_prefix, model)
    with torch.no_grad():
        if context_free:
            base.embeddings.position_embeddings.weight.zero_()
            base.embeddings.token_type_embeddings.weight.zero_()
            for layer in getattr(getattr(base, "encoder", None), "layer", []):
                layer.attention.output.dense.weight.zero_()
                layer.attention.output.dense.bias.zero_()
        if head:
            # Well-separated logits, so argmax is stable under float noise.
            model.classifier.weight.normal_(0.0, 1.0)
            model.classifier.bias.normal_(0.0, 1.0)
            if labels is not None and "O" in labels:
                model.classifier.bias[list(labels).index("O")] += o_bias
    model.eval()
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Save a tiny random token-classification checkpoint.")
    parser.add_argument("output", type=Path)
    parser.add_argument("--kind", default="bert", choices=["bert", "albert", "longformer"])
    parser.add_argument("--no-head", action="store_true", help="a bare encoder, no classifier")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--vocab-size", type=int, default=600)
    parser.add_argument("--o-bias", type=float, default=0.0, help="added to the head's bias for O")
    parser.add_argument(
        "--pipeline",
        type=Path,
        default=None,
        help="also save a spaCy pipeline (blank English + long_ner on the checkpoint) here",
    )
    args = parser.parse_args()
    build_checkpoint(
        args.output,
        args.kind,
        None if args.no_head else IOB2_LABELS,
        head=not args.no_head,
        hidden_size=args.hidden_size,
        vocab_size=args.vocab_size,
        o_bias=args.o_bias,
    )
    print(f"saved a tiny {args.kind} checkpoint to {args.output}")
    if args.pipeline is not None:
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("long_ner", config={"model": {"name": str(args.output)}})
        nlp.initialize()
        nlp.to_disk(args.pipeline)
        print(f"saved a pipeline with long_ner on it to {args.pipeline}")


if __name__ == "__main__":
    main()
