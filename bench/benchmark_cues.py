"""Model-free cues on the generated benchmarks: accuracy of each surface heuristic per suite and level.

    .venv/bin/python bench/benchmark_cues.py [--experiment configs/experiments/demo.yaml] [--corpus JSONL]

Generates the experiment's suites in memory exactly as its benchmarks stage does (seed, items per suite,
language pack) and prints, per suite, chance and the accuracy of picking the shortest option, the longest,
the one that occurs in the prompt (per prompt language), the most word-like (character trigram model of
the pack's word list) and what the training corpus gives a model for free: the option that is a word of the
corpus, the most frequent in it, the most word-like by a trigram model of its text (--corpus: the corpus's
JSONL; default the offline corpus `morphcpt demo-data` builds with the experiment's seed, the demo's
training text). Every cue should be within a few points of chance (tests/test_benchmark_cues.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from morphcpt.config import load_experiment  # noqa: E402
from morphcpt.evaluation.cues import (  # noqa: E402
    CorpusWords,
    corpus_texts,
    cue_table,
    experiment_suites,
    language_words,
    markdown,
    offline_corpus,
    standard_cues,
)
from morphcpt.languages import get_language  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default=str(REPO / "configs/experiments/demo.yaml"))
    parser.add_argument("--corpus", type=Path, help="the training corpus (JSONL); default: the offline one")
    args = parser.parse_args()
    experiment = load_experiment(args.experiment)
    pack = get_language(experiment.language)
    if args.corpus:
        corpus = CorpusWords.from_texts(corpus_texts(args.corpus))
    else:
        corpus = offline_corpus(experiment.language, experiment.seed)
    cues = standard_cues(language_words(pack), pack.prompt_languages, corpus)
    table = cue_table(experiment_suites(experiment), cues)
    print(markdown(table))
    worst = max((abs(row[c] - row["chance"]), suite, c) for suite, row in table.items() for c in cues)
    print(f"\nlargest distance from chance: {100 * worst[0]:.1f} points ({worst[2]} on {worst[1]})")


if __name__ == "__main__":
    main()
