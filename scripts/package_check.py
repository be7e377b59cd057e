"""Install a wheel built by `spacy package` into a scratch folder and load the
pipeline by name in a fresh process, as a user would after `pip install`.

    python scripts/package_check.py packages en_minilm_conll03 "Peter Blackburn went to Brussels."
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from wasabi import msg

LOAD = "import spacy, sys; nlp = spacy.load(sys.argv[1]); print([(e.text, e.label_) for e in nlp(sys.argv[2]).ents])"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("packages", type=Path, help="the output folder of spacy package")
    parser.add_argument("name", help="package name, e.g. en_minilm_conll03")
    parser.add_argument("text")
    args = parser.parse_args()
    wheels = sorted(args.packages.rglob(f"{args.name}-*.whl"))
    if not wheels:
        msg.fail(f"No wheel for {args.name} under {args.packages}", exits=1)
    with tempfile.TemporaryDirectory() as site:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-index",
                "--target",
                site,
                str(wheels[-1]),
            ],
            check=True,
        )
        env = {**os.environ, "PYTHONPATH": site + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(
            [sys.executable, "-c", LOAD, args.name, args.text],
            env=env,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        )
    if out.returncode != 0:
        msg.fail(f"{args.name} did not load from its wheel", out.stderr[-2000:], exits=1)
    msg.good(f"{wheels[-1].name} installs and loads by name: {out.stdout.strip()}")


if __name__ == "__main__":
    main()
