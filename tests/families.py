"""Tiny random token-classification checkpoints of the model families users
bring, each with a tokenizer of its family's kind trained on the fly
(WordPiece, SentencePiece-style Unigram, byte-level BPE), saved as
`save_pretrained` writes a fine-tuned checkpoint. For the checkpoint matrix
tests; offline."""

from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from spacy_longner.testing import IOB2_LABELS, training_text

WIDTH = 32


def _wordpiece(lines: Sequence[str], lowercase: bool = False, mpnet: bool = False):
    """A BERT WordPiece tokenizer; mpnet: MPNet's (lowercased WordPiece with
    RoBERTa's <s> A </s> specials, pad id 1, as all-mpnet-base-v2 ships)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase or mpnet)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    if mpnet:
        names = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"]
        tok.train_from_iterator(lines, trainers.WordPieceTrainer(vocab_size=600, special_tokens=names))
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        specials = dict(bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>", pad_token="<pad>")
        return tok, dict(specials, unk_token="[UNK]", mask_token="<mask>")
    tok.train_from_iterator(
        lines, trainers.WordPieceTrainer(vocab_size=600, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return tok, dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _unigram(lines: Sequence[str], template: str, specials: dict[str, str]):
    """A SentencePiece-style tokenizer (Unigram over Metaspace). template:
    "cls_sep" ([CLS] $A [SEP]), "s_end" (<s> $A </s>), "end_sep_cls" ($A <sep> <cls>, XLNet)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.Replace("``", '"'), normalizers.Replace("''", '"')])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    names = list(dict.fromkeys(specials.values()))
    tok.train_from_iterator(
        lines, trainers.UnigramTrainer(vocab_size=600, special_tokens=names, unk_token=specials["unk_token"])
    )
    cls, sep = specials.get("cls_token"), specials.get("sep_token")
    if template == "cls_sep":
        single = f"{cls} $A {sep}"
        pair = f"{cls} $A {sep} $B {sep}"
    elif template == "s_end":
        single, pair = f"{cls} $A {sep}", f"{cls} $A {sep} {sep} $B {sep}"
    else:
        single, pair = f"$A {sep} {cls}", f"$A {sep} $B {sep} {cls}"
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))]
    )
    tok.decoder = decoders.Metaspace()
    return tok, specials


def _byte_bpe(lines: Sequence[str], specials: dict[str, str], roberta: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    names = list(dict.fromkeys(specials.values()))
    tok.train_from_iterator(
        lines,
        trainers.BpeTrainer(vocab_size=700, special_tokens=names, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    if roberta:
        tok.post_processor = processors.RobertaProcessing(
            (specials["sep_token"], tok.token_to_id(specials["sep_token"])),
            (specials["cls_token"], tok.token_to_id(specials["cls_token"])),
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return tok, specials


ROBERTA_SPECIALS = dict(
    bos_token="<s>",
    pad_token="<pad>",
    eos_token="</s>",
    unk_token="<unk>",
    mask_token="<mask>",
    cls_token="<s>",
    sep_token="</s>",
)
SPM_CLS_SEP = dict(pad_token="<pad>", unk_token="<unk>", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _family_specs() -> dict[str, Callable]:
    import transformers as t

    common = dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=WIDTH, intermediate_size=2 * WIDTH)

    def spec(config_cls, tokenizer_cls, tokenizer, extra_config=None, extra_tokenizer=None, common_config=True):
        def make(lines):
            tok, specials = tokenizer(lines)
            hf_tok = tokenizer_cls(tokenizer_object=tok, model_max_length=512, **specials, **(extra_tokenizer or {}))
            cfg = dict(common) if common_config else {}
            cfg.update(extra_config or {})
            cfg.update(vocab_size=len(hf_tok), pad_token_id=hf_tok.pad_token_id)
            return config_cls(**cfg), hf_tok

        return make

    return {
        "bert": spec(t.BertConfig, t.BertTokenizerFast, _wordpiece),
        "distilbert": spec(
            t.DistilBertConfig,
            t.DistilBertTokenizerFast,
            _wordpiece,
            dict(dim=WIDTH, n_layers=2, n_heads=2, hidden_dim=2 * WIDTH),
            common_config=False,
        ),
        "electra": spec(
            t.ElectraConfig,
            t.ElectraTokenizerFast,
            lambda lines: _wordpiece(lines, lowercase=True),
            dict(embedding_size=16),
        ),
        "funnel": spec(
            t.FunnelConfig,
            t.FunnelTokenizerFast,
            _wordpiece,
            dict(block_sizes=[1, 1], d_model=WIDTH, n_head=2, d_head=16, d_inner=2 * WIDTH),
            common_config=False,
        ),
        "mpnet": spec(
            t.MPNetConfig,
            t.MPNetTokenizerFast,
            lambda lines: _wordpiece(lines, mpnet=True),
            dict(max_position_embeddings=514),
        ),
        "roberta": spec(
            t.RobertaConfig,
            t.RobertaTokenizerFast,
            lambda lines: _byte_bpe(lines, ROBERTA_SPECIALS),
            dict(max_position_embeddings=514),
            extra_tokenizer=dict(add_prefix_space=True),
        ),
        "xlm-roberta": spec(
            t.XLMRobertaConfig,
            t.XLMRobertaTokenizerFast,
            lambda lines: _unigram(lines, "s_end", {k: v for k, v in ROBERTA_SPECIALS.items()}),
            dict(max_position_embeddings=514),
        ),
        "deberta-v2": spec(
            t.DebertaV2Config, t.DebertaV2TokenizerFast, lambda lines: _unigram(lines, "cls_sep", SPM_CLS_SEP)
        ),
        "big_bird": spec(
            t.BigBirdConfig,
            t.BigBirdTokenizerFast,
            lambda lines: _unigram(lines, "cls_sep", SPM_CLS_SEP),
            dict(attention_type="original_full"),
        ),
        "xlnet": spec(
            t.XLNetConfig,
            t.XLNetTokenizerFast,
            lambda lines: _unigram(
                lines,
                "end_sep_cls",
                dict(pad_token="<pad>", unk_token="<unk>", cls_token="<cls>", sep_token="<sep>", mask_token="<mask>"),
            ),
            dict(d_model=WIDTH, n_layer=2, n_head=2, d_inner=2 * WIDTH),
            common_config=False,
        ),
        "modernbert": spec(
            t.ModernBertConfig,
            t.PreTrainedTokenizerFast,
            lambda lines: _byte_bpe(lines, dict(ROBERTA_SPECIALS, cls_token="<s>")),
            dict(global_attn_every_n_layers=1),
            extra_tokenizer=dict(add_prefix_space=True),
        ),
        "gpt2": spec(
            t.GPT2Config,
            t.GPT2TokenizerFast,
            lambda lines: _byte_bpe(
                lines,
                dict(
                    bos_token="<|endoftext|>",
                    eos_token="<|endoftext|>",
                    unk_token="<|endoftext|>",
                    pad_token="<|endoftext|>",
                ),
                roberta=False,
            ),
            dict(n_embd=WIDTH, n_layer=2, n_head=2, n_positions=512),
            common_config=False,
            extra_tokenizer=dict(add_prefix_space=True),
        ),
    }


FAMILIES = sorted(_family_specs()) + ["albert", "longformer"]


def build_family_checkpoint(path: Path, family: str, labels: list[str] = IOB2_LABELS, seed: int = 0) -> Path:
    """Save a tiny random checkpoint of `family` with a token-classification
    head for `labels` to `path`."""
    import torch
    from transformers import AutoModelForTokenClassification

    if family in ("albert", "longformer"):
        from spacy_longner.testing import build_checkpoint

        return build_checkpoint(path, family, labels, seed=seed)
    torch.manual_seed(seed)
    lines = training_text()
    config, tokenizer = _family_specs()[family](lines)
    config.id2label = dict(enumerate(labels))
    config.label2id = {lab: i for i, lab in enumerate(labels)}
    config.num_labels = len(labels)
    model = AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():
        head = getattr(model, "classifier", None) or getattr(model, "score", None)
        head.weight.normal_(0.0, 1.0)
        head.bias.normal_(0.0, 1.0) if head.bias is not None else None
    model.eval()
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return Path(path)
