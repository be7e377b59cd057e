"""The package command line: `spacy-longner` / `python -m spacy_longner`."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from spacy_longner.cli import COMMANDS, main

SAMPLE = "Peter Blackburn reports from Brussels ."


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "spacy_longner", *args], capture_output=True, text=True, **kwargs)


def test_help_lists_every_command():
    done = run_cli("--help")
    assert done.returncode == 0
    for name in ("annotate", "import-hf", "evaluate", "calibrate"):
        assert name in done.stdout
    assert set(COMMANDS) == {"annotate", "import-hf", "evaluate", "calibrate"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: spacy-longner {command}")


def test_the_console_script_is_installed():
    script = shutil.which(
        "spacy-longner", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    assert script is not None
    done = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "import-hf" in done.stdout


def test_import_hf_writes_a_pipeline_and_a_wheel_that_loads_by_name(checkpoints, tmp_path):
    import spacy

    checkpoint = checkpoints("bert")
    done = run_cli(
        "import-hf",
        str(checkpoint),
        str(tmp_path / "pipeline"),
        "--label-map",
        "PER=PERSON",
        "--name",
        "cli_test",
        "--package",
        str(tmp_path / "packages"),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    nlp = spacy.load(tmp_path / "pipeline")
    assert "PERSON" in nlp.get_pipe("long_ner").labels and "PER" not in nlp.get_pipe("long_ner").labels
    expected = [(e.text, e.label_) for e in nlp(SAMPLE).ents]
    wheels = list((tmp_path / "packages").glob("en_cli_test-0.0.1/dist/*.whl"))
    assert len(wheels) == 1
    site = tmp_path / "site"
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
            str(site),
            str(wheels[0]),
        ],
        check=True,
    )
    load = (
        "import spacy, json, sys; nlp = spacy.load('en_cli_test'); "
        "print(json.dumps([(e.text, e.label_) for e in nlp(sys.argv[1]).ents]))"
    )
    shutil.rmtree(tmp_path / "pipeline")
    out = subprocess.run(
        [sys.executable, "-c", load, SAMPLE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert [tuple(x) for x in json.loads(out.stdout)] == expected
    again = run_cli("import-hf", str(checkpoint), str(tmp_path / "packages"))
    assert again.returncode != 0 and "E026" in again.stdout and "Traceback" not in again.stderr


def test_import_hf_label_map_needs_pairs(checkpoints, tmp_path):
    done = run_cli("import-hf", str(checkpoints("bert")), str(tmp_path / "p"), "--label-map", "PER")
    assert done.returncode != 0 and "FROM=TO" in done.stderr


def test_evaluate_writes_the_seed_reports(checkpoints, tmp_path, synthetic_conll_dir):
    corpus = tmp_path / "corpus"
    converted = subprocess.run(
        [sys.executable, "scripts/convert.py", str(synthetic_conll_dir), str(corpus)],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert run_cli("import-hf", str(checkpoints("bert")), str(tmp_path / "pipeline")).returncode == 0
    done = run_cli(
        "evaluate", str(tmp_path / "pipeline"), str(corpus), str(tmp_path / "reports"), "--splits", "dev", "--no-raw"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = (tmp_path / "reports" / "dev.txt").read_text()
    assert "precision    recall  f1-score   support" in report and "FB1:" in report
    result = json.loads((tmp_path / "reports" / "dev.json").read_text())
    assert result["seqeval_agrees"] is True
    # Overrides of component and model settings reach the pipeline.
    done = run_cli(
        "evaluate",
        str(tmp_path / "pipeline"),
        str(corpus),
        str(tmp_path / "reports2"),
        "--splits",
        "dev",
        "--no-raw",
        "--setting",
        "decoding=viterbi",
        "--model-setting",
        "window=8",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "reports2" / "dev.json").read_text())["conlleval"] != result["conlleval"]


def test_annotate_with_a_mistyped_pipeline_or_input_prints_one_coded_line(tmp_path):
    (tmp_path / "in.txt").write_text("Tokyo .\n", encoding="utf8")
    done = run_cli("annotate", str(tmp_path / "my_pipelin"), str(tmp_path / "in.txt"), str(tmp_path / "out.jsonl"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "[long_ner E040] Pipeline" in " ".join(done.stdout.split())
    done = run_cli("annotate", str(tmp_path), str(tmp_path / "missing.txt"), str(tmp_path / "out.jsonl"))
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert "[long_ner E041] Input" in " ".join(done.stdout.split())


GENERIC = ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3", "LABEL_4"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def generic_and_named(tmp_path_factory):
    """The same random checkpoint (same seed) saved once with generic labels
    and once with the tags they stand for."""
    from spacy_longner.testing import build_checkpoint

    root = tmp_path_factory.mktemp("generic")
    return build_checkpoint(root / "generic", "bert", GENERIC), build_checkpoint(root / "named", "bert", TAGS)


def test_import_hf_names_generic_labels_from_the_label_map(generic_and_named, tmp_path):
    import spacy

    from spacy_longner.importer import import_checkpoint

    generic, named = generic_and_named
    label_map = {f"LABEL_{i}": tag for i, tag in enumerate(TAGS)}
    label_map["PER"] = "PERSON"
    import_checkpoint(str(generic), tmp_path / "p", label_map=label_map)
    reference = spacy.blank("en")
    reference.add_pipe("long_ner", config={"model": {"name": str(named)}, "label_map": {"PER": "PERSON"}})
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("long_ner").model_labels == TAGS
    text = "Peter Blackburn went to Brussels and Tokyo with Maria Müller ."
    want = [(e.start, e.end, e.label_) for e in reference(text).ents]
    assert want and [(e.start, e.end, e.label_) for e in loaded(text).ents] == want
    assert {label for _, _, label in want} <= {"PERSON", "LOC"}


def test_import_hf_label_map_errors_name_what_the_checkpoint_has(generic_and_named, checkpoints, tmp_path):
    from spacy_longner.importer import import_checkpoint

    generic, _ = generic_and_named
    with pytest.raises(ValueError, match=r"\[long_ner E004\].*LABEL_0.*--label-map"):
        import_checkpoint(str(generic), tmp_path / "a")
    with pytest.raises(ValueError, match=r"\[long_ner E042\].*no tag for \['LABEL_2', 'LABEL_3', 'LABEL_4'\]"):
        import_checkpoint(str(generic), tmp_path / "b", label_map={"LABEL_0": "O", "LABEL_1": "PER"})
    with pytest.raises(ValueError, match=r"\[long_ner E043\] --label-map PERSON=\.\.\. names no entity type.*'LOC'"):
        import_checkpoint(str(checkpoints("bert")), tmp_path / "c", label_map={"PERSON": "PER"})
    done = run_cli("import-hf", str(generic), str(tmp_path / "d"), "--label-map", "LABEL_0=PER")
    printed = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and "Traceback" not in printed and "[long_ner E042]" in printed


def test_evaluate_with_a_mistyped_pipeline_or_corpus_prints_one_coded_line(tmp_path, checkpoints):
    from spacy.tokens import DocBin

    (tmp_path / "corpus").mkdir()
    DocBin().to_disk(tmp_path / "corpus" / "dev.spacy")
    done = run_cli("evaluate", str(tmp_path / "my_pipelin"), str(tmp_path / "corpus"), str(tmp_path / "out"))
    printed = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and "Traceback" not in printed and "[long_ner E040]" in printed
    done = run_cli("evaluate", str(checkpoints("bert")), str(tmp_path / "no_corpus"), str(tmp_path / "out"))
    printed = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and "Traceback" not in printed and "[long_ner E044] No corpus" in printed
