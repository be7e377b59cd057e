"""What calibrated entity scores cost: a calibrated pipeline's words per
second with its map (entity probabilities by forward-backward, then the map)
and without it (`calibrated = false`: the mean tag probability), in the same
process, passes interleaved, on CoNLL-style documents and on one long
document made of them.

    python benchmarks/calibration_cost.py training/minilm/model-calibrated corpus/dev.spacy \
        metrics/calibration_cost.json [--passes 2] [--long-words 32768]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402


def inputs(vocab, path: Path, long_words: int):
    """The corpus's documents as bare docs (words, spaces, sentence starts),
    and one doc of their first `long_words` tokens."""
    gold = list(DocBin().from_disk(path).get_docs(vocab))
    docs = [
        Doc(
            vocab,
            words=[t.text for t in d],
            spaces=[bool(t.whitespace_) for t in d],
            sent_starts=[t.is_sent_start for t in d],
        )
        for d in gold
    ]
    words, starts = [], []
    for d in docs:
        for t in d:
            if len(words) == long_words:
                break
            words.append(t.text)
            starts.append(bool(t.is_sent_start))
    return docs, [Doc(vocab, words=words, sent_starts=starts)]


def timed(nlp, docs) -> float:
    start = time.perf_counter()
    for _ in nlp.pipe([d.copy() for d in docs]):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", help="a calibrated pipeline (spacy-longner calibrate)")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--long-words", type=int, default=32768)
    args = parser.parse_args()
    runs = {
        "calibrated": spacy.load(args.pipeline),
        "uncalibrated": spacy.load(args.pipeline, config={"components": {"long_ner": {"calibrated": False}}}),
    }
    if runs["calibrated"].get_pipe("long_ner").calibration is None:
        sys.exit(f"{args.pipeline} has no confidence map: run spacy-longner calibrate first")
    vocab = runs["calibrated"].vocab
    docs, long_doc = inputs(vocab, args.corpus, args.long_words)
    result: dict = {"cpu": cpu_model(), "pipeline": args.pipeline, "passes": args.passes, "inputs": {}}
    for kind, batch in (("documents", docs), ("one_long_document", long_doc)):
        n_words = sum(len(d) for d in batch)
        for nlp in runs.values():
            timed(nlp, batch[:20])  # warm-up
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.passes):
            for name, nlp in runs.items():
                seconds[name].append(timed(nlp, batch))
        best = {name: min(s) for name, s in seconds.items()}
        result["inputs"][kind] = {
            "docs": len(batch),
            "words": n_words,
            "seconds": seconds,
            "words_per_second": {name: n_words / s for name, s in best.items()},
            "calibrated_over_uncalibrated": best["uncalibrated"] / best["calibrated"],
        }
        print(
            f"{kind}: {n_words} words, uncalibrated {n_words / best['uncalibrated']:.0f} words/s, calibrated "
            f"{n_words / best['calibrated']:.0f} words/s ({best['uncalibrated'] / best['calibrated']:.3f}x)"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
