"""Model-free answer cues: what a multiple-choice item gives away on its surface.

A benchmark measures knowledge only when no surface feature of the options points at the gold. Each cue
here scores every option of an item without any model (its length, whether it is copied from the prompt,
how word-like a character n-gram model of the language finds it); the cue picks the highest. Its accuracy
over a suite should be chance: a cue well above chance lets a model that knows nothing look capable, one
well below lets it learn the inverse. Ties are counted fractionally (1/k for a gold among k winners), so a
cue that cannot decide scores chance exactly rather than by luck of a tie-break.

Used by tests/test_benchmark_cues.py (every cue near chance on the demo's benchmarks) and
bench/benchmark_cues.py (the table per suite); `balanced_distractors` and `number_distractors` are how a
question maker picks distractors that leave these cues nothing to find.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.generate import generate_suite, suites_of
from morphcpt.evaluation.items import Item
from morphcpt.languages import LanguagePack, get_language

if TYPE_CHECKING:
    from morphcpt.config import Experiment

Cue = Callable[[Item], Sequence[float]]
"""A score per option of an item; the cue picks the highest."""

_LETTERS = re.compile(r"[^\W\d_]+")
# A word of running text: letters, hyphenated parts kept together (mag-aral, i-disable are one word), so that
# an option is counted as the whole it is.
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
BOS, EOS = "^", "$"


def chance(items: Iterable[Item]) -> float:
    """Expected accuracy of a uniform guess: the mean of 1/k over the items (k options each)."""
    shares = [1 / len(item.options) for item in items if item.options]
    return sum(shares) / len(shares) if shares else 0.0


def cue_accuracy(items: Iterable[Item], cue: Cue) -> float:
    """Accuracy of picking each item's best-scored option, a tie among k counting 1/k if the gold is in it."""
    total, n = 0.0, 0
    for item in items:
        if not item.options:
            continue
        scores = list(cue(item))
        best = max(scores)
        winners = [i for i, s in enumerate(scores) if s == best]
        total += (item.gold in winners) / len(winners)
        n += 1
    return total / n if n else 0.0


def shortest(item: Item) -> list[float]:
    return [-float(len(option)) for option in item.options]


def longest(item: Item) -> list[float]:
    return [float(len(option)) for option in item.options]


def in_prompt(lang: str) -> Cue:
    """Prefer an option that occurs verbatim in the question (asked in `lang`): a copy of the input."""

    def cue(item: Item) -> list[float]:
        prompt = item.prompt(lang).lower()
        return [float(option.lower() in prompt) for option in item.options]

    return cue


@dataclass(frozen=True)
class CharNgram:
    """A character n-gram model of words with add-one smoothing, `^`/`$` marking a word's ends."""

    order: int
    counts: Mapping[str, Counter[str]]
    alphabet: int
    totals: Mapping[str, int] = field(default_factory=dict)  # per context: the sum of its counts

    @classmethod
    def fit(cls, words: Iterable[str], order: int = 3) -> CharNgram:
        return cls.fit_counts(Counter(words), order)

    @classmethod
    def fit_counts(cls, words: Mapping[str, int], order: int = 3) -> CharNgram:
        """Fit to words each seen `words[word]` times (running text: a frequent word weighs more)."""
        counts: dict[str, Counter[str]] = {}
        symbols: set[str] = {EOS}
        for word, n in words.items():
            padded = BOS * (order - 1) + word.lower() + EOS
            symbols.update(word.lower())
            for i in range(order - 1, len(padded)):
                counts.setdefault(padded[i - order + 1 : i], Counter())[padded[i]] += n
        totals = {context: sum(seen.values()) for context, seen in counts.items()}
        return cls(order, counts, len(symbols) + 1, totals)  # + 1: one share for any unseen character

    def logprob(self, word: str) -> tuple[float, int]:
        """Summed log-probability of the word's characters and its end, and how many symbols that is."""
        padded = BOS * (self.order - 1) + word.lower() + EOS
        total = 0.0
        for i in range(self.order - 1, len(padded)):
            context = padded[i - self.order + 1 : i]
            seen = self.counts.get(context, Counter())
            total += math.log((seen[padded[i]] + 1) / (self.totals.get(context, 0) + self.alphabet))
        return total, len(padded) - self.order + 1

    def wordlikeness(self, text: str) -> float:
        """Mean log-probability per symbol over the runs of letters in `text` (each run a word: "ku-ma-in"
        is three syllables, "k a i n" four letters); per symbol so that length is not the cue; 0 for none
        (a number), which ties all-number options."""
        total, symbols = 0.0, 0
        for run in _LETTERS.findall(text):
            logprob, count = self.logprob(run)
            total, symbols = total + logprob, symbols + count
        # Rounded: the same letters summed in another order ("k u m a i n", "k u m i a n") tie exactly
        # rather than differ by rounding error, which would break the tie for the cue at random.
        return round(total / symbols, 9) if symbols else 0.0

    def likelihood(self, text: str) -> float:
        """Summed log-probability of the runs of letters in `text` (a number: 0): how likely the whole option
        is, as an LM's summed MCQ score has it; shorter and more frequent pieces score higher together."""
        total = sum(self.logprob(run)[0] for run in _LETTERS.findall(text))
        return round(total, 9)


def most_wordlike(model: CharNgram) -> Cue:
    def cue(item: Item) -> list[float]:
        return [model.wordlikeness(option) for option in item.options]

    return cue


def standard_cues(
    words: Iterable[str], prompt_languages: Sequence[str], corpus: CorpusWords | None = None
) -> dict[str, Cue]:
    """The cues a benchmark must be blind to: shortest, longest, occurs in the prompt (per prompt language),
    most word-like by a character trigram model of `words` (the language's word list) and, given the
    `corpus` a model is trained on, the cues such a model has for free (`corpus_cues`)."""
    cues: dict[str, Cue] = {"shortest": shortest, "longest": longest}
    cues.update({f"in_prompt_{lang}": in_prompt(lang) for lang in prompt_languages})
    cues["most_wordlike"] = most_wordlike(CharNgram.fit(words))
    if corpus is not None:
        cues.update(corpus_cues(corpus))
    return cues


@dataclass(frozen=True)
class CorpusWords:
    """How often each word (lower-case, `_WORD`) occurs in a corpus, and a character trigram model of its
    running text: what a language model trained on that corpus knows without knowing any morphology."""

    counts: Counter[str]
    model: CharNgram

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CorpusWords:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text.lower()))
        # The n-gram model learns from the running text (each word as often as it occurs, its letter runs as
        # wordlikeness scores them), as an LM does, not from a list of distinct words.
        runs: Counter[str] = Counter()
        for word, n in counts.items():
            for run in _LETTERS.findall(word):
                runs[run] += n
        return cls(counts, CharNgram.fit_counts(runs))

    def count(self, option: str) -> int:
        """Occurrences of the whole option as a word ("ku-ma-in" or "k u m a i n": none, unless it is one)."""
        return self.counts.get(option.strip().lower(), 0)

    def in_corpus(self, option: str) -> float:
        return float(self.count(option) > 0)

    def frequency(self, option: str) -> float:
        return math.log1p(self.count(option))

    def wordlikeness(self, option: str) -> float:
        return self.model.wordlikeness(option)

    def likelihood(self, option: str) -> float:
        return self.model.likelihood(option)


def corpus_cues(corpus: CorpusWords) -> dict[str, Cue]:
    """Cues from the training corpus: the option that is a word of it, the most frequent one in it, and the
    most word-like by a character trigram model of its text. Real roots are words of the corpus and pieces
    of a word mostly not, so these are what a tiny LM answers an affix-stripping question with."""

    def by(score: Callable[[str], float]) -> Cue:
        return lambda item: [score(option) for option in item.options]

    return {
        "in_corpus": by(corpus.in_corpus),
        "most_frequent": by(corpus.frequency),
        "most_wordlike_corpus": by(corpus.wordlikeness),
        "most_likely_corpus": by(corpus.likelihood),
    }


def corpus_texts(path: Path) -> list[str]:
    """The texts of a JSONL corpus ({"text": ...} per line), as the data stages read it."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


OFFLINE_DOCUMENTS = 4000
"""Documents in the offline corpus `morphcpt demo-data` builds by default (the demo's training corpus)."""


@cache
def offline_corpus(language: str, seed: int = 1234, documents: int = OFFLINE_DOCUMENTS) -> CorpusWords:
    """The words of the offline corpus the demo trains on (morphcpt.data.offline_corpus.build_corpus with
    this seed and size), built again here: the same bytes as the demo's data/corpora file."""
    from morphcpt.data.offline_corpus import build_corpus

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        build_corpus(path, documents, seed, language=get_language(language))
        return CorpusWords.from_texts(corpus_texts(path))


def cue_table(suites: Mapping[str, list[Item]], cues: Mapping[str, Cue]) -> dict[str, dict[str, float]]:
    """{suite: {"chance": ..., cue name: accuracy, ...}} for every suite with MCQ items."""
    table: dict[str, dict[str, float]] = {}
    for name, items in suites.items():
        mcq = [item for item in items if item.options]
        if mcq:
            table[name] = {"chance": chance(mcq), **{cue: cue_accuracy(mcq, fn) for cue, fn in cues.items()}}
    return table


def markdown(table: Mapping[str, Mapping[str, float]]) -> str:
    """The table in percent, one row per suite."""
    columns = list(next(iter(table.values())))
    lines = ["| suite | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for suite, row in table.items():
        lines.append(f"| {suite} | " + " | ".join(f"{100 * row[c]:.1f}" for c in columns) + " |")
    return "\n".join(lines)


def language_words(pack: LanguagePack, count: int = 5000) -> list[str]:
    """The word list the word-likeness cue learns from: the pack's frequency list (the demo corpus's source)."""
    if pack.corpus is None:
        raise MorphcptError(f"language pack {pack.code} has no word list to train the word-likeness cue on")
    return list(pack.corpus.words(count)[0])


def experiment_suites(experiment: Experiment) -> dict[str, list[Item]]:
    """Every suite the experiment's benchmarks stage generates ("pacute/affixation": items), made the same
    way (its seed, items per suite and language pack), in memory."""
    pack = get_language(experiment.language)
    evaluation = experiment.evaluation
    return {
        f"{benchmark}/{suite}": generate_suite(
            benchmark, suite, evaluation.items_per_suite, experiment.seed, language=pack
        )
        for benchmark in evaluation.benchmarks
        for suite in suites_of(benchmark)
    }


@dataclass
class CueTally:
    """How often, over a suite's questions so far, each cue would have picked the gold (ties counted 1/k):
    the running sums the balancer keeps at chance."""

    picked: dict[str, float] = field(default_factory=dict)
    questions: int = 0


# Tallies per generator: generate_suite seeds a fresh one per suite, so they span exactly one suite's
# questions and a suite generated twice is the same (the makers themselves are cached and hold no state).
_TALLIES: weakref.WeakKeyDictionary[random.Random, dict[str, CueTally]] = weakref.WeakKeyDictionary()


def suite_tally(rng: random.Random, task: str = "") -> CueTally:
    """The tally of the suite `rng` is generating (`task`: of that task's questions in it; "": all)."""
    return _TALLIES.setdefault(rng, {}).setdefault(task, CueTally())


TASK_WEIGHT = 0.3


Scorer = Callable[[str], float]
"""A score of an option on its own (word-likeness, corpus frequency): one side of the gold or the other."""


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


@cache
def _combinations(groups: int, size: int) -> np.ndarray:
    """Every choice of `size` groups among `groups`, with repetition, as rows of group indices (sorted)."""
    rows = list(itertools.combinations_with_replacement(range(groups), size))
    return np.array(rows, dtype=np.int32).reshape(len(rows), size)


def balanced_distractors(
    answer: str,
    candidates: Iterable[str],
    rng: random.Random,
    *,
    prompts: Sequence[str] = (),
    wordlike: Scorer | None = None,
    scores: Mapping[str, Scorer] | None = None,
    fillers: Iterable[str] = (),
    task: str = "",
    k: int = 3,
    filler_cost: float = 0.1,
) -> tuple[str, ...]:
    """`k` distinct distractors from `candidates` (plausible errors) that leave the surface no tell.

    Each candidate is on one side of the answer by length, by each score in `scores` (`wordlike`: the one
    named "wordlike"; e.g. a character n-gram model's, a word's frequency in the training corpus, being a
    word of it) and, per text in `prompts` (the question in each language), by occurring in it or not; so
    each choice of three decides what the cues shortest, longest, most and least <score> and
    occurs-in-prompt pick. Among the choices, the one that keeps the tallies of those picks nearest chance
    is taken, ties at random: the suite's (`suite_tally(rng)`) and that of its `task` questions, so that no
    kind of question has a cue of its own while the hard cases of one kind are made up by the others. This
    is stratified adversarial filtering (SWAG's distractors were chosen against a surface model): over a
    suite the gold is the most word-like option a quarter of the time by construction, not by luck of the
    draw, while any one item's gold may be the shortest, the longest or in between.
    Candidates come before `fillers` (e.g. spelling slips, which put options on both sides of the answer's
    length), each filler costing `filler_cost` against a squared distance from chance."""
    real = [c for c in dict.fromkeys(candidates) if c and c != answer]
    extra = [c for c in dict.fromkeys(fillers) if c and c != answer and c not in real]
    rng.shuffle(real)
    rng.shuffle(extra)
    size = min(k, len(real) + len(extra))  # fewer: all of them, still tallied so that the others make up
    named = {"wordlike": wordlike} if wordlike else {}
    named |= dict(scores or {})
    # One side per dimension: (score, the cue preferring a higher score, the one preferring a lower or "").
    dims: list[tuple[Scorer, str, str]] = [(lambda c: float(len(c)), "longest", "shortest")]
    dims += [(fn, f"most_{name}", f"least_{name}") for name, fn in named.items()]
    for i, text in enumerate(p.lower() for p in prompts):  # the cue scores 1 in the prompt, 0 out
        dims.append(((lambda c, t=text: float(c.lower() in t)), f"in_prompt_{i}", ""))
    gold = [fn(answer) for fn, _, _ in dims]

    groups: dict[tuple[int, ...], list[str]] = {}
    n_real: Counter[tuple[int, ...]] = Counter()
    for i, c in enumerate(real + extra):  # real first in a group: fillers only where it runs out of them
        sig = tuple(_sign(fn(c) - g) for (fn, _, _), g in zip(dims, gold, strict=True))
        groups.setdefault(sig, []).append(c)
        n_real[sig] += i < len(real)
    tallies = [(1.0, suite_tally(rng))] + ([(TASK_WEIGHT, suite_tally(rng, task))] if task else [])

    # Every choice at once (numpy over the rows of `_combinations`): a pool of 60 kinds of candidate is
    # 37 820 choices of three, too many to score one by one for each of a suite's questions.
    sigs = sorted(groups)
    combos = _combinations(len(sigs), size)
    sides = np.array(sigs, dtype=np.int8).reshape(len(sigs), len(dims))[combos]  # choice x option x dim
    # The r-th use of a group in a choice takes its r-th candidate: past its real ones a filler, past all none.
    rank = np.zeros(combos.shape, dtype=np.int32)
    for j in range(1, size):
        rank[:, j] = (combos[:, :j] == combos[:, j : j + 1]).sum(1)
    available = np.array([len(groups[sig]) for sig in sigs])[combos]
    real_ones = np.array([n_real[sig] for sig in sigs])[combos]
    cost = filler_cost * (rank >= real_ones).sum(1)
    cost[~(rank < available).all(1)] = np.inf
    ties = 1 / (1 + (sides == 0).sum(1))  # the gold's share among the options tied with it, per dim
    shares: dict[str, np.ndarray] = {}
    for d, (_, more, less) in enumerate(dims):
        shares[more] = np.where((sides[:, :, d] > 0).any(1), 0.0, ties[:, d])
        if less:
            shares[less] = np.where((sides[:, :, d] < 0).any(1), 0.0, ties[:, d])
    for weight, tally in tallies:
        target = (tally.questions + 1) / (k + 1)
        for cue, x in shares.items():
            cost = cost + weight * (tally.picked.get(cue, 0.0) + x - target) ** 2
    best = float(cost.min())
    row = rng.choice([int(r) for r in np.flatnonzero(cost <= best + 1e-9)])
    for _, tally in tallies:
        for cue, x in shares.items():
            tally.picked[cue] = tally.picked.get(cue, 0.0) + float(x[row])
        tally.questions += 1
    taken: Counter[tuple[int, ...]] = Counter()
    out: list[str] = []
    for g in combos[row]:
        sig = sigs[int(g)]
        out.append(groups[sig][taken[sig]])
        taken[sig] += 1
    return tuple(out)


def number_distractors(n: int, rng: random.Random, low: int = 0) -> tuple[str, ...]:
    """Three other counts from a run of four consecutive numbers (from `low` up) holding `n` at a random
    place, so the answer is not always second; the run keeps to numbers of `n`'s digit count (9 among
    6, 7, 8 rather than among 10, 11, 12) so that the written length never tells."""
    digits = len(str(n))
    first, last = max(low, n - 3, 10 ** (digits - 1) if digits > 1 else 0), min(n, 10**digits - 4)
    start = rng.randint(first, last) if first <= last else max(low, n - 3)
    return tuple(str(m) for m in range(start, start + 4) if m != n)
