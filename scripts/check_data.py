"""Stop the project's CoNLL-2003 workflows at once, with what to do, where
the data is not there.

    python scripts/check_data.py ../shared/data/conll2003
"""

import sys
from pathlib import Path

from wasabi import msg

FILES = ("train.txt", "dev.txt", "test.txt", "test_conllpp.txt")


def main() -> None:
    folder = Path(sys.argv[1])
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        msg.fail(
            f"CoNLL-2003 not found: {', '.join(str(folder / m) for m in missing)} missing",
            "CoNLL-2003 is not shipped with this project (its license does not allow it). Put eng.train, "
            "eng.testa and eng.testb (as train.txt, dev.txt, test.txt) and the CoNLL++ test (test_conllpp.txt) "
            "in one folder and pass it: python -m spacy project run all --vars.conll_dir PATH. "
            "`python -m spacy project run ci` needs no data.",
            exits=1,
        )
    msg.good(f"CoNLL-2003 found in {folder}")


if __name__ == "__main__":
    main()
