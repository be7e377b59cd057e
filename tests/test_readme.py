"""The README's Python blocks run as a user pastes them, in order, in one
folder, offline: the quickstart's printed output is the one the README shows,
`"path/to/checkpoint"` is a tiny random checkpoint, `letters/` holds a few
long documents and `war_and_peace.txt` a text of over a million characters.
Loading and predicting print nothing on stderr (no progress bars, no load
reports)."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def readme_blocks():
    """(code, expected stdout or None) for each ```python block; a ```text
    block right after one is its output."""
    text = README.read_text(encoding="utf8")
    found = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]
    blocks = []
    for i, (lang, body, _, end) in enumerate(found):
        if lang != "python":
            continue
        expected = None
        if i + 1 < len(found) and found[i + 1][0] == "text" and not text[end : found[i + 1][2]].strip():
            expected = found[i + 1][1]
        blocks.append((body, expected))
    return blocks


def calibrated_pipeline(checkpoint: str, folder: Path) -> None:
    """`my_pipeline_calibrated`, as the README's calibrate command writes it:
    a pipeline on `checkpoint` calibrated on synthetic gold documents."""
    import spacy
    from spacy.tokens import Doc, DocBin

    from spacy_longner.calibrate import calibrate_pipeline
    from spacy_longner.testing import synthetic_conll_sentences

    nlp = spacy.blank("en")
    nlp.add_pipe("long_ner", config={"model": {"name": checkpoint}})
    nlp.to_disk(folder / "uncalibrated")
    docs = []
    for sent in synthetic_conll_sentences(200, seed=2):
        words, tags = zip(*sent)
        docs.append(Doc(nlp.vocab, words=list(words), ents=list(tags)))
    DocBin(docs=docs).to_disk(folder / "dev.spacy")
    calibrate_pipeline(str(folder / "uncalibrated"), folder / "dev.spacy", folder / "my_pipeline_calibrated")


def test_the_readme_shows_a_quickstart_with_its_output():
    blocks = readme_blocks()
    assert len(blocks) >= 4
    assert blocks[0][1] is not None and "PER" in blocks[0][1]


def test_every_python_block_of_the_readme_runs(checkpoints, tmp_path):
    from spacy_longner.testing import synthetic_conll_sentences

    letters = tmp_path / "letters"
    letters.mkdir()
    sents = [" ".join(w for w, _ in s) for s in synthetic_conll_sentences(600, seed=5)]
    for i in range(3):
        (letters / f"{i}.txt").write_text("\n\n".join(sents[i * 200 : (i + 1) * 200]), encoding="utf8")
    # A text over spaCy's 1,000,000-character limit.
    book = "\n\n".join(sents)
    (tmp_path / "war_and_peace.txt").write_text((book + "\n\n") * (1_100_000 // len(book) + 1), encoding="utf8")
    checkpoint = str(checkpoints("bert"))
    calibrated_pipeline(checkpoint, tmp_path)
    for n, (code, expected) in enumerate(readme_blocks()):
        code = code.replace('"path/to/checkpoint"', repr(checkpoint))
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README block {n}:\n{code}\n{done.stderr[-3000:]}"
        if expected is not None:
            assert done.stdout == expected, f"README block {n} printed:\n{done.stdout}"
        if "precision" not in code:  # bf16 on a CPU without it warns (W002), as documented
            assert done.stderr == "", f"README block {n} wrote to stderr:\n{done.stderr[-3000:]}"
    assert (tmp_path / "my_pipeline" / "long_ner" / "model" / "model.safetensors").exists()
