"""Pipelines saved under one transformers major load under the other with
identical entities. CI points LONGNER_OTHER_PYTHON at its second
environment's interpreter (the [trf] one, transformers 4.53)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from cross_version import KINDS, predict, save

OTHER = os.environ.get("LONGNER_OTHER_PYTHON")
HELPER = Path(__file__).with_name("cross_version.py")

pytestmark = pytest.mark.skipif(
    not OTHER, reason="set LONGNER_OTHER_PYTHON to a Python with the other transformers major (CI does)"
)


def run_other(command, folder):
    out = subprocess.run([OTHER, str(HELPER), command, str(folder)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    return json.loads(line[len("RESULT ") :]) if line else None


def same(a, b):
    for kind in KINDS:
        assert [[e[:3] for e in d] for d in a[kind]] == [[e[:3] for e in d] for d in b[kind]], kind
        assert [e[3] for d in a[kind] for e in d] == pytest.approx([e[3] for d in b[kind] for e in d], abs=1e-4)
    assert sum(len(d) for k in KINDS for d in a[k]) > 10


def test_saved_pipelines_cross_the_transformers_major(tmp_path):
    import transformers

    # Saved here, loaded there.
    save(tmp_path / "here")
    there = run_other("predict", tmp_path / "here")
    assert there["transformers"].split(".")[0] != transformers.__version__.split(".")[0]
    same(predict(tmp_path / "here"), there)
    # Saved there, loaded here.
    run_other("save", tmp_path / "there")
    same(run_other("predict", tmp_path / "there"), predict(tmp_path / "there"))
