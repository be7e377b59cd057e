"""The stage profiler (benchmarks/profile_stages.py) times the real code
path, and stops when a patched function is no longer called through the
patched name, instead of showing that stage as free."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_profiler():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("profile_stages", BENCHMARKS / "profile_stages.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory, checkpoints):
    import spacy
    from spacy.tokens import DocBin

    from spacy_longner.testing import synthetic_conll_sentences

    root = tmp_path_factory.mktemp("profile")
    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": str(checkpoints("bert")), "window": 32}})
    nlp.to_disk(root / "pipeline")
    sents = [" ".join(w for w, _ in s) for s in synthetic_conll_sentences(40, seed=3)]
    docs = [nlp.make_doc(" ".join(sents[i : i + 8])) for i in range(0, 40, 8)]
    for doc in docs:
        for i, token in enumerate(doc):
            token.is_sent_start = i == 0 or doc[i - 1].text == "."
    DocBin(docs=docs).to_disk(root / "dev.spacy")
    return root


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_profile_stages_times_every_stage(tiny_corpus, runtime):
    out = tiny_corpus / f"profile_{runtime}.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "profile_stages.py"),
            str(tiny_corpus / "pipeline"),
            str(tiny_corpus / "dev.spacy"),
            str(out),
            "--runtime",
            runtime,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["runtime"] == runtime
    for kind in ("sentences", "documents"):
        stages = result["inputs"][kind]["seconds_by_stage"]
        assert stages["forward"] > 0 and stages["decode"] > 0 and stages["plan_and_batch"] > 0
        counts = result["inputs"][kind]["counts"]
        assert counts["forward_calls"] >= counts["buffers"] >= 1
        assert counts["padded_wordpieces"] >= counts["real_wordpieces"] > 0


def test_a_stage_never_called_stops_the_profiler():
    profiler = load_profiler()
    profiler.CALLED.update(["spacy_tokenizer", "write"] + [s for s in profiler.PATCHES if s != "decode"])
    with pytest.raises(SystemExit, match="decode never called"):
        profiler.check_stages(longest_doc=100, window=32)
    profiler.CALLED.add("decode")
    profiler.check_stages(longest_doc=100, window=32)


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", BENCHMARKS / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_onnx_floor_runs_long_ners_session_and_tags_as_the_torch_floor(tiny_corpus, monkeypatch):
    """floor_onnx is the floor loop through the InferenceSession long_ner_onnx
    runs: it tags every wordpiece as the eager floor does."""
    import argparse

    from spacy_longner import onnx_backend

    benchmark = load_benchmark()
    args = argparse.Namespace(
        corpus=tiny_corpus / "dev.spacy",
        pipeline=str(tiny_corpus / "pipeline"),
        limit=0,
        gpu=False,
        precision="fp32",
        wordpiece_budget=8192,
        window=0,
        stride=-1,
        cut_at_sentences="pipeline",
        prefetch="auto",
        batch_size=1000,
        passes=1,
    )
    sessions = []
    real_session = onnx_backend.session

    def recording(state, quantize):
        sessions.append(real_session(state, quantize))
        return sessions[-1]

    with monkeypatch.context() as patch:
        patch.setattr(onnx_backend, "session", recording)
        onnx_floor = benchmark.run_worker("floor_onnx", "documents", args)
    torch_floor = benchmark.run_worker("floor", "documents", args)
    assert len(sessions) == 1 and sessions[0].get_inputs()[0].name == "input_ids"
    assert onnx_floor["n_entities_or_tags"] == torch_floor["n_entities_or_tags"] > 0
    assert onnx_floor["words"] == torch_floor["words"] > 0


def test_train_speed_takes_config_overrides_as_spacy_train_reads_them(checkpoints, tmp_path):
    import spacy
    from spacy.tokens import Doc, DocBin

    from spacy_longner.testing import synthetic_conll_sentences

    vocab = spacy.blank("en").vocab
    sents = synthetic_conll_sentences(24, seed=5)
    docs = [Doc(vocab, words=[w for w, _ in s], ents=[t for _, t in s]) for s in sents]
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    out = tmp_path / "speed.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_speed.py"), str(BENCHMARKS.parent / "configs" / "tiny_ci.cfg")]
        + [str(tmp_path / "train.spacy"), str(tmp_path / "train.spacy"), str(out)]
        + ["--precisions", "fp32", "--steps", "2", "--warmup", "1"]
        + ["--set", f"paths.checkpoint={checkpoints('bert')}", "training.batcher.size=3"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    run = json.loads(out.read_text())["runs"]["fp32"]
    assert "error" not in run, run
    assert run["steps"] == 2 and run["words_per_second"] > 0
    # Batches of 3 words (the override read as the number 3) hold one sentence each, where the
    # config's 400 would hold all 24: the 2 timed steps saw 2 sentences.
    assert 0 < run["words"] <= 2 * max(len(s) for s in sents)
