import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONLL_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_project_ci_workflow_writes_the_seed_reports(tmp_path, synthetic_conll_dir):
    run_ci_workflow(tmp_path, synthetic_conll_dir)


@pytest.mark.slow
def test_project_ci_workflow_on_the_real_conll_files(tmp_path):
    if not (CONLL_DIR / "train.txt").exists():
        pytest.fail(f"CoNLL-2003 data not found at {CONLL_DIR}")
    run_ci_workflow(tmp_path, CONLL_DIR)


def run_ci_workflow(tmp_path, conll_dir):
    project = tmp_path / "project"
    project.mkdir()
    for item in ("project.yml", "configs", "scripts"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, project / item)
    out = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "ci", str(project), "--vars.conll_dir", str(conll_dir)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    report = (project / "metrics" / "ci" / "dev.txt").read_text()
    assert "precision    recall  f1-score   support" in report
    assert "weighted avg" in report and "macro avg" in report
    assert "processed" in report and "phrases; found:" in report and "FB1:" in report
    result = json.loads((project / "metrics" / "ci" / "dev.json").read_text())
    assert result["seqeval_agrees"] is True
    assert result["conlleval"]["f1"] == pytest.approx(result["seqeval"]["f1"], abs=1e-9)
    for split in ("dev", "test", "test_conllpp"):
        assert (project / "metrics" / "ci" / f"{split}.html").exists()
        assert (project / "metrics" / "ci" / f"{split}_confusion.png").stat().st_size > 1000
    assert "installs and loads by name" in out.stdout
    assert (project / "training" / "imported" / "long_ner" / "model" / "model.safetensors").exists()
