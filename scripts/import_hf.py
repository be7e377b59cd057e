"""Build a ready spaCy pipeline folder from an already fine-tuned Hugging Face
token-classification checkpoint (local folder or hub id), with no training.
This is how the seed models, or any hub NER model, come into spaCy.

    python scripts/import_hf.py PATH_OR_HUB_ID training/imported [--window 510] [--name my_ner] [--decoding viterbi]

The folder holds the weights (safetensors), the tokenizer and the labels, and
loads offline with spacy.load(); `spacy package` turns it into a wheel.
"""

import argparse
from pathlib import Path

import spacy
from wasabi import msg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("output", type=Path)
    parser.add_argument("--lang", default="en")
    parser.add_argument("--name", default="long_ner_pipeline", help="package name in meta.json")
    parser.add_argument("--version", default="0.0.1")
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--sentencizer", action="store_true", help="add a sentencizer before long_ner")
    parser.add_argument("--decoding", default="conlleval", choices=["conlleval", "viterbi"],
                        help="viterbi: the best tag sequence valid under the labels' scheme (for IOB2 checkpoints: "
                             "+0.7 dev F1 on a MiniLM fine-tuned by scripts/hf_reference.py, docs/RESULTS.md); "
                             "keep conlleval for a checkpoint trained on IOB1 tags, whose labels look like IOB2")
    args = parser.parse_args()
    nlp = spacy.blank(args.lang)
    if args.sentencizer:
        nlp.add_pipe("sentencizer")
    nlp.add_pipe("long_ner", config={"decoding": args.decoding,
                                     "model": {"name": args.checkpoint, "window": args.window, "stride": args.stride}})
    nlp.initialize()
    nlp.meta["name"] = args.name
    nlp.meta["version"] = args.version
    nlp.to_disk(args.output)
    pipe = nlp.get_pipe("long_ner")
    msg.good(f"Saved {args.output}: labels {pipe.labels}, window {pipe.state.window}, stride {pipe.state.stride}")


if __name__ == "__main__":
    main()
