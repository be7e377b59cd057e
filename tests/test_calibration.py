"""Entity probabilities (confidence.py) against enumeration of every tag
sequence; the calibration map (calibration.py) against a known
miscalibration; the measures on hand-worked examples; `spacy-longner
calibrate` end to end: the map saved, loaded, packed as bytes, applied on
torch and ONNX Runtime, thresholds, and coded errors for bad input."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from conftest import ents_of, make_nlp
from spacy.tokens import Doc, DocBin, Span

from spacy_longner.calibrate import calibrate_pipeline
from spacy_longner.calibration import (
    FILE_NAME,
    GLOBAL,
    Calibration,
    brier_score,
    calibration_bins,
    expected_calibration_error,
    fit_calibration,
    threshold_table,
)
from spacy_longner.cli import main
from spacy_longner.confidence import entity_probabilities, make_chain
from spacy_longner.decode import allowed_transitions, chunk_starts_ends, decode_buffer, parse_tagset
from spacy_longner.scoring import entity_dicts
from spacy_longner.testing import IOB2_LABELS, synthetic_conll_sentences

pytest.importorskip("sklearn")

LABEL_SETS = [
    (["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "auto"),
    (["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "IOB1"),
    (["O", "B-X", "I-X", "E-X", "S-X"], "auto"),
    (["O", "B-X", "I-X", "L-X", "U-X"], "auto"),
    (["O", "PER", "LOC"], "auto"),
]


def enumerated_chunk_probabilities(probs, lengths, tagset, decoding):
    """P(chunk) for every chunk any tag sequence has, by summing the weight
    of every sequence (valid under the decoding's rules) that has it."""
    k = len(tagset.labels)
    if decoding == "viterbi":
        trans, first, last = allowed_transitions(tagset)
    else:
        trans, first, last = np.ones((k, k), bool), np.ones(k, bool), np.ones(k, bool)
    out, offset = {}, 0
    for n in lengths:
        total, mass = 0.0, {}
        for tags in itertools.product(range(k), repeat=n):
            if not first[tags[0]] or not last[tags[-1]] or any(not trans[a, b] for a, b in zip(tags, tags[1:])):
                continue
            weight = float(np.prod([probs[offset + t, tags[t]] for t in range(n)]))
            total += weight
            for s, e, c in chunk_starts_ends(tagset.prefix[list(tags)], tagset.type_id[list(tags)]):
                key = (offset + s, offset + e, c)
                mass[key] = mass.get(key, 0.0) + weight
        out.update({key: m / total for key, m in mass.items()})
        offset += n
    return out


@pytest.mark.parametrize("labels,scheme", LABEL_SETS)
@pytest.mark.parametrize("decoding", ["viterbi", "conlleval"])
def test_entity_probability_is_the_enumerated_probability_of_the_chunk(labels, scheme, decoding):
    tagset = parse_tagset(labels, scheme)
    rng = np.random.default_rng(len(labels))
    lengths = [4, 1, 3]
    probs = rng.dirichlet(np.full(len(labels), 0.5), size=sum(lengths))
    seq_start = np.zeros(sum(lengths), dtype=bool)
    seq_start[np.cumsum([0] + lengths[:-1])] = True
    want = enumerated_chunk_probabilities(probs, lengths, tagset, decoding)
    keys = sorted(want)
    got = entity_probabilities(
        probs,
        seq_start,
        np.array([k[0] for k in keys]),
        np.array([k[1] for k in keys]),
        np.array([k[2] for k in keys]),
        make_chain(tagset, decoding),
    )
    assert len(keys) > 10
    np.testing.assert_allclose(got, [want[k] for k in keys], atol=1e-12)


def test_marginal_scores_of_decoded_entities_are_probabilities_and_follow_the_decoding():
    tagset = parse_tagset(IOB2_LABELS)
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(300, len(IOB2_LABELS)))
    logits[:, IOB2_LABELS.index("O")] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    visible = rng.random(300) > 0.1
    # The one-token doc is surely B-PER: its entity is surely right.
    probs[120] = 1e-9
    probs[120, IOB2_LABELS.index("B-PER")] = 1.0
    visible[120] = True
    offsets = np.array([0, 120, 121, 300])
    for decoding in ("viterbi", "conlleval"):
        _, mean = decode_buffer(probs, visible, offsets, tagset, decoding=decoding)
        _, marginal = decode_buffer(probs, visible, offsets, tagset, decoding=decoding, confidence="marginal")
        assert len(mean) > 20
        np.testing.assert_array_equal(mean.doc, marginal.doc)
        np.testing.assert_array_equal(mean.start, marginal.start)
        np.testing.assert_array_equal(mean.end, marginal.end)
        assert ((marginal.score > 0) & (marginal.score <= 1)).all()
        assert not np.allclose(marginal.score, mean.score)
        sure = np.flatnonzero(marginal.doc == 1)
        assert len(sure) == 1 and marginal.score[sure[0]] == pytest.approx(1.0)


def test_fit_recovers_a_known_miscalibration_per_type_and_globally():
    rng = np.random.default_rng(0)
    n = 40000
    scores = rng.random(n)
    labels = np.where(rng.random(n) < 0.5, "PER", "LOC").astype(object)
    labels[:150] = "MISC"  # too few for a map of its own
    truth = np.where(labels == "PER", scores**2, np.sqrt(scores))
    correct = rng.random(n) < truth
    fitted = fit_calibration(scores, labels.tolist(), correct, per_type_min=500)
    assert set(fitted.maps) == {GLOBAL, "PER", "LOC"}
    grid = np.linspace(0.05, 0.95, 19)
    types = ["LOC", "MISC", "PER"]
    for label, want in (("PER", grid**2), ("LOC", np.sqrt(grid))):
        got = fitted.apply(grid, types, np.full(len(grid), types.index(label)))
        assert np.abs(got - want).max() < 0.06, (label, got - want)
    # MISC uses the global map: the mixture of the two.
    got = fitted.apply(grid, types, np.full(len(grid), types.index("MISC")))
    np.testing.assert_allclose(got, fitted.apply(grid, [GLOBAL], np.zeros(len(grid), dtype=int)))
    assert np.abs(got - (grid**2 + np.sqrt(grid)) / 2).max() < 0.06
    calibrated = fitted.apply(scores, types, np.array([types.index(lab) for lab in labels]))
    for label in ("PER", "LOC"):
        chosen = labels == label
        assert expected_calibration_error(scores[chosen], correct[chosen]) > 0.1
        assert expected_calibration_error(calibrated[chosen], correct[chosen]) < 0.02
    assert brier_score(calibrated, correct) < brier_score(scores, correct)


def test_measures_on_a_hand_worked_example():
    scores = np.array([0.9, 0.9, 0.1, 0.1])
    correct = np.array([True, False, False, False])
    # Equal width: bin 0.9-1.0 (confidence 0.9, half right), bin 0.1-0.2 (0.1, none right).
    assert expected_calibration_error(scores, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    # Equal mass over 4 entities: four bins of one.
    assert expected_calibration_error(scores, correct, mass=True) == pytest.approx((0.1 + 0.9 + 0.1 + 0.1) / 4)
    assert brier_score(scores, correct) == pytest.approx((0.01 + 0.81 + 0.01 + 0.01) / 4)
    assert [b["count"] for b in calibration_bins(scores, correct)] == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert calibration_bins(np.array([1.0]), np.array([True]))[-1]["count"] == 1
    rows = {r["threshold"]: r for r in threshold_table(scores, correct, n_gold=2, thresholds=(0.0, 0.5, 0.95))}
    assert (rows[0.0]["kept"], rows[0.0]["precision"], rows[0.0]["recall"]) == (4, 25.0, 50.0)
    assert (rows[0.5]["kept"], rows[0.5]["precision"], rows[0.5]["recall"]) == (2, 50.0, 50.0)
    assert (rows[0.95]["kept"], rows[0.95]["f1"]) == (0, 0.0)


def test_a_damaged_map_is_a_coded_error(tmp_path):
    (tmp_path / FILE_NAME).write_text(
        json.dumps({"feature": "marginal", "maps": {"*": {"x": [0.5, 0.1], "y": [0, 1]}}})
    )
    with pytest.raises(ValueError, match="E045"):
        Calibration.from_disk(tmp_path)
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="E045"):
        Calibration.from_disk(tmp_path)
    assert Calibration.from_disk(tmp_path / "none") is None


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def calibration_setup(checkpoints, tmp_path_factory):
    """A pipeline on a random checkpoint and a dev corpus whose
    gold entities are its own predictions, a known share of them changed:
    about 70% of its entities are exactly right."""
    root = tmp_path_factory.mktemp("calibrate")
    path = checkpoints("bert")
    nlp = make_nlp(path, decoding="viterbi")
    nlp.to_disk(root / "pipeline")
    rng = np.random.default_rng(0)
    docs = []
    sents = synthetic_conll_sentences(240, seed=5)
    for i in range(0, 240, 6):
        words = [w for s in sents[i : i + 6] for w, _ in s]
        starts = [j == 0 for s in sents[i : i + 6] for j, _ in enumerate(s)]
        pred = nlp(Doc(nlp.vocab, words=words, sent_starts=starts))
        gold = Doc(nlp.vocab, words=words, sent_starts=starts)
        ents = []
        for e in pred.ents:
            # Right, or wrong by its type.
            label = e.label_ if rng.random() < 0.7 else ("LOC" if e.label_ != "LOC" else "ORG")
            ents.append(Span(gold, e.start, e.end, label))
        gold.set_ents(ents, default="outside")
        docs.append(gold)
    DocBin(docs=docs).to_disk(root / "dev.spacy")
    n_pred = sum(len(nlp(Doc(nlp.vocab, words=[t.text for t in d])).ents) for d in docs[:3])
    assert n_pred > 0
    calibrate_pipeline(str(root / "pipeline"), root / "dev.spacy", root / "calibrated", per_type_min=100)
    return root


def doc_scores(nlp, docs):
    out = []
    for doc in nlp.pipe(
        [Doc(nlp.vocab, words=[t.text for t in d], sent_starts=[t.is_sent_start for t in d]) for d in docs]
    ):
        out.append((ents_of(doc), list(doc.spans["long_ner"].attrs["scores"])))
    return out


def test_calibrate_writes_a_map_that_reads_as_the_rate_of_right_entities(calibration_setup):
    root = calibration_setup
    assert (root / "calibrated" / "long_ner" / FILE_NAME).exists()
    gold = list(DocBin().from_disk(root / "dev.spacy").get_docs(spacy.blank("en").vocab))
    plain = spacy.load(root / "pipeline")
    calibrated = spacy.load(root / "calibrated")
    assert calibrated.get_pipe("long_ner").calibration is not None
    before, after = doc_scores(plain, gold), doc_scores(calibrated, gold)
    # Same entities; scores now P(correct): their mean is the share right.
    assert [e for e, _ in before] == [e for e, _ in after]
    right = [
        (e in {(g.start, g.end, g.label_) for g in d.ents}, s)
        for d, (ents, scores) in zip(gold, after)
        for e, s in zip(ents, scores)
    ]
    rate = np.mean([r for r, _ in right])
    assert 0.55 < rate < 0.85
    assert abs(np.mean([s for _, s in right]) - rate) < 0.02
    assert [s for _, s in before] != [s for _, s in after]
    # calibrated = false gives the uncalibrated pipeline's scores.
    off = spacy.load(root / "calibrated", config={"components": {"long_ner": {"calibrated": False}}})
    assert doc_scores(off, gold) == before


def test_the_map_survives_bytes_and_the_onnx_runtime(calibration_setup):
    pytest.importorskip("onnxruntime")
    root = calibration_setup
    gold = list(DocBin().from_disk(root / "dev.spacy").get_docs(spacy.blank("en").vocab))[:10]
    calibrated = spacy.load(root / "calibrated")
    want = doc_scores(calibrated, gold)
    copy = spacy.blank("en")
    copy.add_pipe("long_ner", config={"model": {"name": ""}, "decoding": "viterbi"})
    copy.get_pipe("long_ner").from_bytes(calibrated.get_pipe("long_ner").to_bytes())
    assert doc_scores(copy, gold) == want
    onnx = spacy.load(root / "calibrated", config={"components": {"long_ner": {"model": {"runtime": "onnx"}}}})
    got = doc_scores(onnx, gold)
    assert [e for e, _ in got] == [e for e, _ in want]
    # The runtimes' entity probabilities agree to float precision, and each
    # runtime's score is the same map applied to them. (A steep stretch of
    # an isotonic map can turn 1e-6 into 1e-3, so the calibrated scores
    # themselves agree to 1e-4 nearly everywhere, not everywhere.)
    fitted = calibrated.get_pipe("long_ner").calibration
    identity = Calibration(maps={GLOBAL: ([0.0, 1.0], [0.0, 1.0])})
    raw = {}
    for name, nlp in (("torch", calibrated), ("onnx", onnx)):
        nlp.get_pipe("long_ner").calibration = identity
        raw[name] = doc_scores(nlp, gold)
        nlp.get_pipe("long_ner").calibration = fitted
    flat = {name: np.array([s for _, ss in r for s in ss]) for name, r in raw.items()}
    np.testing.assert_allclose(flat["onnx"], flat["torch"], atol=1e-5)
    labels = [e[2] for ents, _ in want for e in ents]
    types = sorted(set(labels))
    type_id = np.array([types.index(label) for label in labels])
    for name, scores in (("torch", want), ("onnx", got)):
        mapped = fitted.apply(flat[name], types, type_id)
        np.testing.assert_allclose([s for _, ss in scores for s in ss], mapped, atol=1e-12)
    close = np.isclose([s for _, ss in got for s in ss], [s for _, ss in want for s in ss], atol=1e-4)
    assert close.mean() > 0.99


def test_thresholds_leave_out_entities_below_them(calibration_setup):
    root = calibration_setup
    gold = list(DocBin().from_disk(root / "dev.spacy").get_docs(spacy.blank("en").vocab))
    full = doc_scores(spacy.load(root / "calibrated"), gold)
    scores = sorted(s for _, ss in full for s in ss)
    cut = float(scores[len(scores) // 2])
    kept = doc_scores(spacy.load(root / "calibrated", config={"components": {"long_ner": {"threshold": cut}}}), gold)
    for (ents, ss), (k_ents, k_ss) in zip(full, kept):
        assert k_ents == [e for e, s in zip(ents, ss) if s >= cut]
        assert k_ss == [s for s in ss if s >= cut]
    label = full[0][0][0][2] if full[0][0] else "PER"
    per = doc_scores(
        spacy.load(root / "calibrated", config={"components": {"long_ner": {"thresholds": {label: 1.0}}}}), gold
    )
    for (ents, ss), (p_ents, _) in zip(full, per):
        assert p_ents == [e for e, s in zip(ents, ss) if e[2] != label or s >= 1.0]


def test_threshold_settings_are_checked(checkpoints):
    with pytest.raises(ValueError, match="E010.*threshold"):
        make_nlp(checkpoints("bert"), threshold=1.5)
    nlp = make_nlp(checkpoints("bert"), thresholds={"PERSON": 0.5})
    with pytest.raises(ValueError, match="E046.*PERSON"):
        nlp("Peter went to Brussels .")


def test_evaluate_reports_calibration_of_the_pipeline_it_scores(calibration_setup, tmp_path):
    from spacy_longner.evaluate import evaluate_splits

    root = calibration_setup
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "dev.spacy").write_bytes((root / "dev.spacy").read_bytes())
    results = evaluate_splits(
        str(root / "calibrated"), tmp_path / "corpus", tmp_path / "out", splits=["dev"], raw=False
    )
    report = json.loads((tmp_path / "out" / "dev.json").read_text())["confidence"]
    assert report["calibrated"] is True
    assert (tmp_path / "out" / "dev_reliability.png").stat().st_size > 1000
    assert report["ece_width"] < 0.05 and 0 < report["brier"] < 0.25
    at_zero = report["thresholds"][0]
    assert at_zero["threshold"] == 0.0
    assert at_zero["precision"] == pytest.approx(results["dev"]["precision"])
    assert at_zero["recall"] == pytest.approx(results["dev"]["recall"])
    assert "ECE (10 equal-width bins)" in (tmp_path / "out" / "dev.txt").read_text()


def test_calibrate_errors_are_coded_lines(calibration_setup, tmp_path, capsys):
    root = calibration_setup
    empty = spacy.blank("en")
    DocBin(docs=[Doc(empty.vocab, words=["no", "entities", "here"])]).to_disk(tmp_path / "none.spacy")
    assert main(["calibrate", str(root / "pipeline"), str(tmp_path / "none.spacy"), str(tmp_path / "a")]) == 1
    assert "E047" in capsys.readouterr().out
    assert main(["calibrate", str(root / "pipeline"), str(tmp_path / "missing.spacy"), str(tmp_path / "b")]) == 1
    assert "E047" in capsys.readouterr().out
    spacy.blank("en").to_disk(tmp_path / "blank")
    assert main(["calibrate", str(tmp_path / "blank"), str(root / "dev.spacy"), str(tmp_path / "c")]) == 1
    assert "E048" in capsys.readouterr().out
    assert not (tmp_path / "c").exists()


def test_calibrate_cli_in_a_new_process(calibration_setup, tmp_path):
    root = calibration_setup
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy_longner",
            "calibrate",
            str(root / "pipeline"),
            str(root / "dev.spacy"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ECE before" in done.stdout
    saved = json.loads((tmp_path / "out" / "long_ner" / FILE_NAME).read_text())
    assert saved["feature"] == "marginal" and saved["info"]["corpus"] == "dev.spacy"
    assert list(saved["maps"]) == ["*"]  # one map for all labels unless --per-type


def test_annotate_and_a_packaged_pipeline_give_the_calibrated_scores(calibration_setup, tmp_path):
    root = calibration_setup
    texts = [" ".join(w for w, _ in s) for s in synthetic_conll_sentences(12, seed=9)]
    nlp = spacy.load(root / "calibrated")
    want = [[e["score"] for e in entity_dicts(doc)] for doc in nlp.pipe(texts)]
    assert sum(len(w) for w in want) > 0
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf8")
    assert main(["annotate", str(root / "calibrated"), str(tmp_path / "in.txt"), str(tmp_path / "out.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf8").splitlines()]
    assert [[e["score"] for e in line["entities"]] for line in lines] == want
    off = spacy.load(root / "calibrated", config={"components": {"long_ner": {"calibrated": False}}})
    assert [[e["score"] for e in entity_dicts(doc)] for doc in off.pipe(texts)] != want
    (tmp_path / "pkg").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "package",
            str(root / "calibrated"),
            str(tmp_path / "pkg"),
            "--name",
            "calibrated",
        ]
        + ["--version", "0.0.1", "--build", "wheel", "--force"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = list((tmp_path / "pkg").rglob("*.whl"))
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    code = (
        "import json, sys, spacy\n"
        "from spacy_longner.scoring import entity_dicts\n"
        "nlp = spacy.load('en_calibrated')\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps([[e['score'] for e in entity_dicts(d)] for d in nlp.pipe(texts)]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == want


def test_calibration_cost_benchmark_times_both_ways(calibration_setup, tmp_path):
    root = calibration_setup
    out = tmp_path / "cost.json"
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "calibration_cost.py")]
        + [str(root / "calibrated"), str(root / "dev.spacy"), str(out), "--passes", "1", "--long-words", "500"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["inputs"]["one_long_document"]["words"] == 500
    for kind in ("documents", "one_long_document"):
        speeds = result["inputs"][kind]["words_per_second"]
        assert speeds["calibrated"] > 0 and speeds["uncalibrated"] > 0
