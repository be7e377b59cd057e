"""The package's command line: `spacy-longner` or `python -m spacy_longner`.

spacy-longner annotate PIPELINE INPUT OUTPUT       entities of texts, as JSONL
spacy-longner import-hf CHECKPOINT OUTPUT          a pipeline from a fine-tuned HF checkpoint
spacy-longner evaluate PIPELINE CORPUS OUTPUT      the seeds' reports on .spacy splits
spacy-longner calibrate PIPELINE DEV OUTPUT        calibrated entity confidences, fitted on DEV
"""

import argparse
import sys
from typing import Optional

from wasabi import msg

from . import annotate, calibrate, evaluate, importer

COMMANDS = {
    "annotate": (annotate, "annotate JSONL, text lines or a folder of .txt files; write entities as JSONL"),
    "import-hf": (
        importer,
        "make a pipeline folder (and optionally a wheel) from a fine-tuned Hugging Face checkpoint",
    ),
    "evaluate": (evaluate, "token-level report and conlleval table per split, as the seed model cards give them"),
    "calibrate": (calibrate, "fit calibrated entity confidences on a dev corpus; write the pipeline with them"),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spacy-longner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(
            name, help=help_text, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(p)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = make_parser().parse_args(argv)
    module, _ = COMMANDS[args.command]
    try:
        return module.run(args)
    except (ValueError, ImportError) as e:
        if not str(e).startswith("[long_ner "):
            raise
        # A coded error says what to change: no traceback.
        msg.fail(str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
