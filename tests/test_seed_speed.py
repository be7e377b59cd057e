"""benchmarks/seed_speed.py, the GPU measurement of the seed-sized models: its
parts that run on CPU with tiny stand-ins, so that device time is not spent
finding its bugs."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from conftest import CONLL_DIR
from spacy.tokens import DocBin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def seed_speed():
    spec = importlib.util.spec_from_file_location("seed_speed", ROOT / "benchmarks" / "seed_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_docs(vocab, folder: Path):
    """Documents of synthetic CoNLL sentences with gold entities, enough to
    fill several Longformer windows."""
    from spacy_longner.conll import read_conll, to_docs
    from spacy_longner.testing import write_synthetic_conll

    write_synthetic_conll(folder, sentences_per_doc=10, docs=(1, 120, 1, 1))
    return [doc for conll_doc in read_conll(folder / "dev.txt") for doc in to_docs(vocab, conll_doc)]


@pytest.fixture(scope="module")
def tiny_shapes(seed_speed, tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    seed_speed.make_shapes(out, True, CONLL_DIR, list(seed_speed.SHAPES))
    return out


def test_shapes_keep_the_seeds_kind_tokenizer_family_and_window(seed_speed, tiny_shapes):
    from transformers import AutoConfig, AutoTokenizer

    long_cfg = AutoConfig.from_pretrained(tiny_shapes / "longformer_large")
    albert_cfg = AutoConfig.from_pretrained(tiny_shapes / "albert_xlarge")
    assert long_cfg.model_type == "longformer" and albert_cfg.model_type == "albert"
    assert long_cfg.max_position_embeddings == 4098 and albert_cfg.max_position_embeddings == 512
    long_tok = AutoTokenizer.from_pretrained(tiny_shapes / "longformer_large")
    albert_tok = AutoTokenizer.from_pretrained(tiny_shapes / "albert_xlarge")
    assert long_tok.model_max_length == 4096
    # Longformer's tokenizer is case-sensitive byte-level BPE; ALBERT's lowercases.
    assert long_tok.tokenize("Paris") != long_tok.tokenize("paris")
    assert albert_tok.tokenize("Paris") == albert_tok.tokenize("paris")
    # The full-size specs are the seeds' published sizes.
    assert seed_speed.SHAPES["longformer_large"]["config"]["hidden_size"] == 1024
    assert seed_speed.SHAPES["albert_xlarge"]["config"]["hidden_size"] == 2048
    assert all(s["config"]["num_hidden_layers"] == 24 for s in seed_speed.SHAPES.values())


@pytest.fixture(scope="module")
def tiny_pipelines(tiny_shapes, tmp_path_factory):
    """Random-weight pipelines from the shapes, as the script makes them."""
    out = tmp_path_factory.mktemp("pipelines")
    for name in ("longformer_large", "albert_xlarge"):
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "random_pipeline.py"), str(tiny_shapes / name), str(out / name)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.parametrize("name", ["longformer_large", "albert_xlarge"])
def test_training_windows_are_full_length_and_keep_gold_entities(seed_speed, tiny_pipelines, tmp_path, name):
    nlp = spacy.load(tiny_pipelines / name)
    list(nlp.pipe(["warm up ."]))
    state = nlp.get_pipe("long_ner").model.attrs["state"]
    docs = synthetic_docs(nlp.vocab, tmp_path)
    sents = [s for d in docs for s in d.sents]
    assert sum(len(d.ents) for d in docs) > 0
    window = state.window
    examples = seed_speed.training_windows(nlp, docs, window, 3)
    assert len(examples) == 3
    tok = state.tokenizer

    def pieces(words):
        return len(tok(words, is_split_into_words=True, add_special_tokens=False, verbose=False)["input_ids"])

    start = 0
    for eg in examples:
        words = [t.text for t in eg.reference]
        assert [t.text for t in eg.predicted] == words and not eg.predicted.ents
        n = pieces(words)
        assert n <= window
        # Consecutive sentences, as many as fit: the next one would overflow.
        k = start
        joined = []
        while len(joined) < len(words):
            joined += [t.text for t in sents[k]]
            k += 1
        assert joined == words
        gold = [(e.text, e.label_) for s in sents[start:k] for e in s.ents]
        assert [(e.text, e.label_) for e in eg.reference.ents] == gold
        assert n + pieces([t.text for t in sents[k]]) > window
        start = k


def test_training_windows_say_when_the_corpus_is_too_short(seed_speed, tiny_pipelines):
    nlp = spacy.load(tiny_pipelines / "longformer_large")
    list(nlp.pipe(["warm up ."]))
    docs = [nlp.make_doc("Peter Blackburn went to Brussels .")] * 3
    with pytest.raises(ValueError, match="full windows"):
        seed_speed.training_windows(nlp, docs, nlp.get_pipe("long_ner").model.attrs["state"].window, 1)


def test_wordpieces_per_word_counts_the_shapes_tokenizer(seed_speed, tiny_shapes, tmp_path):
    words = [["Peter", "Blackburn", "went", "to", "Brussels", "."], ["Zwingmann", "said", "."]]
    nlp = spacy.blank("en")
    db = DocBin(docs=[spacy.tokens.Doc(nlp.vocab, words=w) for w in words])
    db.to_disk(tmp_path / "c.spacy")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_shapes / "albert_xlarge")
    expected = sum(len(tok(w, is_split_into_words=True, add_special_tokens=False)["input_ids"]) for w in words) / 9
    assert seed_speed.wordpieces_per_word(tiny_shapes / "albert_xlarge", tmp_path / "c.spacy") == pytest.approx(
        expected
    )
    assert json.loads((tiny_shapes / "albert_xlarge" / "config.json").read_text())["model_type"] == "albert"


@pytest.mark.parametrize(
    "name,precision,checkpointed,windows,window",
    [("albert_xlarge", "bf16", False, 2, 510), ("longformer_large", "fp32", True, 1, 4094)],
)
def test_a_training_step_runs_and_reports_time_memory_and_loss(
    tiny_pipelines, tmp_path, name, precision, checkpointed, windows, window
):
    nlp = spacy.blank("en")
    DocBin(docs=synthetic_docs(nlp.vocab, tmp_path), store_user_data=False).to_disk(tmp_path / "train.spacy")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "seed_speed.py"),
            "train-worker",
            str(tiny_pipelines / name),
            str(tmp_path / "train.spacy"),
            "--model",
            name,
            "--precision",
            precision,
            "--train-wordpieces",
            "1024",
            "--train-steps",
            "2",
        ]
        + (["--gradient-checkpointing"] if checkpointed else []),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["windows_per_step"] == windows and result["window"] == window
    assert result["gradient_checkpointing"] is checkpointed
    assert len(result["step_seconds"]) == 2 and all(t > 0 for t in result["step_seconds"])
    assert len(result["losses"]) == 3 and all(loss is not None and loss > 0 for loss in result["losses"])
    assert result["peak_rss_gb"] > 0 and result["words_per_step"] > 100


def test_run_measures_inference_and_training_end_to_end(tiny_shapes, tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=synthetic_docs(nlp.vocab, tmp_path), store_user_data=False).to_disk(tmp_path / "dev.spacy")
    out = tmp_path / "seed.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "seed_speed.py"),
            "run",
            str(tiny_shapes),
            str(tmp_path / "dev.spacy"),
        ]
        + [str(out), "--models", "albert_xlarge", "--precisions", "fp32", "--systems", "long_ner", "floor"]
        + ["--inputs", "sentences", "--limit", "8", "--train-wordpieces", "1024", "--train-steps", "1"]
        + ["--gradient-checkpointing", "off", "on", "--work", str(tmp_path / "work")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    entry = json.loads(out.read_text())["models"]["albert_xlarge"]
    assert entry["tiny_stand_in"] is True
    runs = entry["inference"]["fp32"]["sentences"]
    for system in ("long_ner", "floor"):
        assert runs[system]["docs"] == 8 and runs[system]["words_per_second"] > 0 and runs[system]["peak_rss_mb"] > 0
    training = entry["training"]["fp32"]
    assert "error" not in training and training["windows_per_step"] == 2 and len(training["step_seconds"]) == 1
    assert training["gradient_checkpointing"] is False
    # transformers' ALBERT has no gradient checkpointing: the part reports long_ner's E051, the run goes on
    assert "E051" in entry["training"]["fp32_checkpointed"]["error"]


def test_a_killed_part_is_reported_with_its_signal(seed_speed):
    """The OOM killer's SIGKILL leaves no stderr: the report still says what
    stopped the part."""
    stdout, stderr = seed_speed.run_part([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"], 60)
    assert "killed by signal 9" in stderr and "out of memory" in stderr
