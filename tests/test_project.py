"""The spaCy project runs where nothing but the project is: the ci workflow
on synthetic CoNLL-shaped data, and `all` stops at once, saying what to do,
where CoNLL-2003 is missing."""

import json
import re
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


def test_context_table_evaluates_each_pipeline_under_each_context(checkpoints, tmp_path):
    import spacy
    from spacy.tokens import Doc, DocBin

    from spacy_longner.testing import synthetic_conll_sentences

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert"))}, "decoding": "viterbi"})
    nlp.to_disk(tmp_path / "pipeline")
    sents = synthetic_conll_sentences(24, seed=4)
    docs = []
    for i in range(0, 24, 6):
        words = [w for s in sents[i : i + 6] for w, _ in s]
        tags = [t for s in sents[i : i + 6] for _, t in s]
        starts = [j == 0 for s in sents[i : i + 6] for j, _ in enumerate(s)]
        docs.append(Doc(nlp.vocab, words=words, ents=tags, sent_starts=starts))
    (tmp_path / "corpus").mkdir()
    DocBin(docs=docs).to_disk(tmp_path / "corpus" / "dev.spacy")
    out = tmp_path / "table.json"
    settings = ["sentence", "context_16", "document_254"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "context_table.py"), str(out)]
        + [f"a={tmp_path / 'pipeline'}", f"b={tmp_path / 'pipeline'}"]
        + ["--corpus", str(tmp_path / "corpus"), "--settings", *settings],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = json.loads(out.read_text())
    for name in ("a", "b"):
        for setting in settings:
            report = json.loads((tmp_path / "table" / name / setting / "dev.json").read_text())
            assert table["f1"][name][setting]["dev"] == report["conlleval"]["f1"]
            assert report["settings"]["decoding"] == "viterbi"
            assert report["settings"]["model"]["context"] == table["settings"][setting]["context"]
    assert table["f1"]["a"] == {**table["f1"]["b"], "path": table["f1"]["a"]["path"]}


def documented_project_runs() -> list:
    """Every `spacy project run ...` the README and docs/ tell users to type:
    inline code spans (which may wrap over lines) and fenced blocks."""
    runs = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf8")
        fenced = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
        inline = re.findall(r"(?<!`)`([^`]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S))
        for code in fenced + inline:
            for part in re.split(r"&&|;|\n", code):
                part = " ".join(part.split())
                if "spacy project run" in part:
                    runs.append((path.name, part.split("spacy project run", 1)[1].split()))
    return runs


def test_documented_project_runs_name_one_command_or_workflow_and_known_vars():
    import srsly

    project = srsly.read_yaml(ROOT / "project.yml")
    names = {cmd["name"] for cmd in project["commands"]} | set(project["workflows"])
    runs = documented_project_runs()
    assert len(runs) > 20
    for where, args in runs:
        if not args or args[0].isupper():
            continue  # "spacy project run WORKFLOW": a placeholder
        assert args[0] in names, (where, args)
        rest = args[1:]
        if rest and rest[0] == ".":
            rest = rest[1:]
        # weasel reads a second bare word as the project folder, not a second command.
        assert all(arg.startswith("--") or prev.startswith("--vars.") for prev, arg in zip(["--"] + rest, rest)), (
            where,
            args,
        )
        for arg in rest:
            if arg.startswith("--vars."):
                assert arg[len("--vars.") :] in project["vars"], (where, args)
