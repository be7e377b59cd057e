"""The spaCy project runs where nothing but the project is: the ci workflow
on synthetic CoNLL-shaped data, and `all` stops at once, saying what to do,
where CoNLL-2003 is missing."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def copy_project(tmp_path) -> Path:
    """The project's files alone, in a folder with no ../shared beside it."""
    project = tmp_path / "project"
    project.mkdir()
    for item in ("project.yml", "configs", "scripts"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, project / item)
    assert not (project.parent / "shared").exists()
    return project


def test_project_ci_workflow_needs_nothing_beside_the_project(tmp_path):
    project = copy_project(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "ci", str(project)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    report = (project / "metrics" / "ci" / "dev.txt").read_text()
    assert "precision    recall  f1-score   support" in report
    assert "weighted avg" in report and "macro avg" in report
    assert "processed" in report and "phrases; found:" in report and "FB1:" in report
    result = json.loads((project / "metrics" / "ci" / "dev.json").read_text())
    assert result["seqeval_agrees"] is True
    # Scored by the pipeline that calibrate-ci fitted on dev.
    assert (project / "training" / "ci" / "model-calibrated" / "long_ner" / "calibration.json").exists()
    assert result["confidence"]["calibrated"] is True
    assert (project / "metrics" / "ci" / "dev_reliability.png").stat().st_size > 1000
    assert result["conlleval"]["f1"] == pytest.approx(result["seqeval"]["f1"], abs=1e-9)
    for split in ("dev", "test", "test_conllpp"):
        assert (project / "metrics" / "ci" / f"{split}.html").exists()
        assert (project / "metrics" / "ci" / f"{split}_confusion.png").stat().st_size > 1000
    assert "installs and loads by name" in out.stdout
    assert (project / "training" / "imported" / "long_ner" / "model" / "model.safetensors").exists()


def test_project_all_without_the_data_stops_at_once_naming_the_setting(tmp_path):
    project = copy_project(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "all", str(project)], capture_output=True, text=True
    )
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert "train.txt" in said and "--vars.conll_dir" in said
    assert not (project / "corpus").exists() or not any((project / "corpus").iterdir())
