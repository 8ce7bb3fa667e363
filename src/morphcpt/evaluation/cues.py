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
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.generate import generate_suite, suites_of
from morphcpt.evaluation.items import Item
from morphcpt.languages import LanguagePack, get_language

if TYPE_CHECKING:
    from morphcpt.config import Experiment

Cue = Callable[[Item], Sequence[float]]
"""A score per option of an item; the cue picks the highest."""

_LETTERS = re.compile(r"[^\W\d_]+")
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

    @classmethod
    def fit(cls, words: Iterable[str], order: int = 3) -> CharNgram:
        counts: dict[str, Counter[str]] = {}
        symbols: set[str] = {EOS}
        for word in words:
            padded = BOS * (order - 1) + word.lower() + EOS
            symbols.update(word.lower())
            for i in range(order - 1, len(padded)):
                counts.setdefault(padded[i - order + 1 : i], Counter())[padded[i]] += 1
        return cls(order, counts, len(symbols) + 1)  # + 1: one share for any unseen character

    def logprob(self, word: str) -> tuple[float, int]:
        """Summed log-probability of the word's characters and its end, and how many symbols that is."""
        padded = BOS * (self.order - 1) + word.lower() + EOS
        total = 0.0
        for i in range(self.order - 1, len(padded)):
            seen = self.counts.get(padded[i - self.order + 1 : i], Counter())
            total += math.log((seen[padded[i]] + 1) / (sum(seen.values()) + self.alphabet))
        return total, len(padded) - self.order + 1

    def wordlikeness(self, text: str) -> float:
        """Mean log-probability per symbol over the runs of letters in `text` (each run a word: "ku-ma-in"
        is three syllables, "k a i n" four letters); per symbol so that length is not the cue; 0 for none
        (a number), which ties all-number options."""
        total, symbols = 0.0, 0
        for run in _LETTERS.findall(text):
            logprob, count = self.logprob(run)
            total, symbols = total + logprob, symbols + count
        return total / symbols if symbols else 0.0


def most_wordlike(model: CharNgram) -> Cue:
    def cue(item: Item) -> list[float]:
        return [model.wordlikeness(option) for option in item.options]

    return cue


def standard_cues(words: Iterable[str], prompt_languages: Sequence[str]) -> dict[str, Cue]:
    """The cues a benchmark must be blind to: shortest, longest, occurs in the prompt (per prompt language)
    and most word-like by a character trigram model of `words` (the language's word list)."""
    cues: dict[str, Cue] = {"shortest": shortest, "longest": longest}
    cues.update({f"in_prompt_{lang}": in_prompt(lang) for lang in prompt_languages})
    cues["most_wordlike"] = most_wordlike(CharNgram.fit(words))
    return cues


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


class Unbalanced(ValueError):
    """The candidates cannot hide the answer exactly (see `balanced_distractors(exact=True)`): a question
    maker asks about another word instead."""


def balanced_distractors(
    answer: str,
    candidates: Iterable[str],
    rng: random.Random,
    *,
    inside: str | None = None,
    wordlike: Callable[[str], float] | None = None,
    fillers: Iterable[str] = (),
    same_length_first: bool = True,
    exact: bool = False,
    k: int = 3,
    per_side: int = 6,
) -> tuple[str, ...]:
    """`k` distinct distractors from `candidates` (plausible errors) that leave the answer's surface no tell.

    Length: with `k` candidates as long as the answer, only those (every length cue ties); else, with `k`
    shorter and `k` longer (`fillers`, e.g. spelling slips, make up the numbers), the number of shorter
    ones is drawn uniformly from 0..k, so the answer is the shortest option as often as the longest;
    else whatever is there. Word-likeness (`wordlike`, a score): among the sets that length allows, one
    that puts the answer at a uniformly drawn place by that score, or as near it as the candidates allow
    (adversarial filtering, as SWAG's distractors were chosen against a surface model). With `inside`
    (the text the question shows, e.g. the word to take apart), only candidates that occur in it exactly
    when the answer does are used, while there are `k`: when the answer is always a piece of the word, so
    are the distractors. Candidates come before fillers, which are used only where they are short.
    `same_length_first=False` prefers the drawn mix of lengths even when `k` candidates are as long as the
    answer (when those are all less word-like than it, as other splits into syllables are).

    `exact=True` raises `Unbalanced` unless the candidates could put the answer at every place by length
    and by word-likeness (and match it on `inside`): a maker that then asks about another word keeps the
    places uniform; one that settles for the nearest place would leave the gold mostly first or last."""
    real = [c for c in dict.fromkeys(candidates) if c and c != answer]
    extra = [c for c in dict.fromkeys(fillers) if c and c != answer and c not in real]
    if inside is not None:
        text = inside.lower()
        keep = answer.lower() in text
        if sum((c.lower() in text) == keep for c in real + extra) >= k:
            real = [c for c in real if (c.lower() in text) == keep]
            extra = [c for c in extra if (c.lower() in text) == keep]
        elif exact:
            raise Unbalanced(f"fewer than {k} candidates occur in {inside!r} as {answer!r} does")
    rng.shuffle(real)
    rng.shuffle(extra)
    if len(real) + len(extra) <= k:
        return tuple(real + extra)

    def side(pool: list[str], sign: int) -> list[str]:
        """The pool's candidates shorter (-1), as long (0) or longer (1) than the answer; per_side bounds
        the sets searched below."""
        return [c for c in pool if (len(c) > len(answer)) - (len(c) < len(answer)) == sign][:per_side]

    both = real + extra
    if same_length_first and len(side(real, 0)) >= k:
        mixes = [list(itertools.combinations(side(real, 0), k))]
    elif len(side(both, -1)) >= k and len(side(both, 1)) >= k:
        mixes = [  # one list of sets per number of shorter distractors
            [
                a + b
                for a in itertools.combinations(side(both, -1), below)
                for b in itertools.combinations(side(both, 1), k - below)
            ]
            for below in range(k + 1)
        ]
    elif len(side(both, 0)) >= k:
        mixes = [list(itertools.combinations(side(both, 0), k))]
    elif exact:
        raise Unbalanced(f"too few candidates shorter, as long and longer than {answer!r}")
    else:
        mixes = [list(itertools.combinations((side(both, -1) + side(both, 0) + side(both, 1))[: 2 * per_side], k))]
    sets = rng.choice(mixes)
    if not wordlike:
        return rng.choice(sets)
    place = rng.randrange(k + 1)  # how many distractors are more word-like than the answer
    gold = wordlike(answer)
    scores = {c: wordlike(c) for chosen in sets for c in chosen}

    def share(chosen: tuple[str, ...]) -> float:
        """How often this set puts the answer at `place`, ties broken at random."""
        before = sum(scores[c] > gold for c in chosen)
        tied = sum(scores[c] == gold for c in chosen)
        return (before <= place <= before + tied) / (tied + 1) - 1e-3 * abs(before - place)

    if exact:  # every place by word-likeness within every mix of lengths: else the places kept are skewed
        scores = {c: wordlike(c) for mix in mixes for chosen in mix for c in chosen}
        for mix in mixes:
            reached = {
                sum(scores[c] > gold for c in chosen) for chosen in mix if all(scores[c] != gold for c in chosen)
            }
            if not set(range(k + 1)) <= reached:
                raise Unbalanced(f"no candidates put {answer!r} at every place by word-likeness")
    shares = [share(chosen) for chosen in sets]
    best = max(shares)
    return rng.choice([chosen for chosen, s in zip(sets, shares, strict=True) if s == best])


def number_distractors(n: int, rng: random.Random, low: int = 0) -> tuple[str, ...]:
    """Three other counts from a run of four consecutive numbers (from `low` up) holding `n` at a random
    place, so the answer is not always second; the run keeps to numbers of `n`'s digit count (9 among
    6, 7, 8 rather than among 10, 11, 12) so that the written length never tells."""
    digits = len(str(n))
    first, last = max(low, n - 3, 10 ** (digits - 1) if digits > 1 else 0), min(n, 10**digits - 4)
    start = rng.randint(first, last) if first <= last else max(low, n - 3)
    return tuple(str(m) for m in range(start, start + 4) if m != n)
