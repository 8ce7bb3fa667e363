"""Model-free cues: on the demo's generated benchmarks no surface heuristic (shortest, longest, copied from
the prompt, most word-like by a character trigram model of the pack's word list, and from the demo's
training corpus: a word of it, the most frequent in it, most word-like by a trigram model of its text) beats
or trails chance by more than 5 points on any suite or level; and the cues themselves find a cue where there
is one."""

from __future__ import annotations

import random

import pytest

from conftest import REPO
from morphcpt.config import load_experiment
from morphcpt.evaluation.cues import (
    CharNgram,
    CorpusWords,
    balanced_distractors,
    chance,
    cue_accuracy,
    cue_table,
    experiment_suites,
    in_prompt,
    language_words,
    longest,
    markdown,
    offline_corpus,
    shortest,
    standard_cues,
)
from morphcpt.evaluation.items import Item
from morphcpt.languages import get_language

TOLERANCE = 0.05


@pytest.fixture(scope="module")
def demo_table() -> dict[str, dict[str, float]]:
    """The cue table of the suites the demo's benchmarks stage writes (its seed, items per suite, pack), the
    corpus cues from the corpus the demo trains on (demo-data's offline corpus with the demo's seed)."""
    experiment = load_experiment(REPO / "configs/experiments/demo.yaml")
    pack = get_language(experiment.language)
    suites = experiment_suites(experiment)
    assert set(suites) == {f"pacute/{s}" for s in ("affixation", "composition", "manipulation", "syllabification")} | {
        f"hierarchical/level_{i}" for i in range(6)
    }
    assert all(len(items) == experiment.evaluation.items_per_suite for items in suites.values())
    corpus = offline_corpus(experiment.language, experiment.seed)
    return cue_table(suites, standard_cues(language_words(pack), pack.prompt_languages, corpus))


SUITES = [f"pacute/{s}" for s in ("affixation", "composition", "manipulation", "syllabification")] + [
    f"hierarchical/level_{i}" for i in range(6)
]


@pytest.mark.parametrize("suite", SUITES)
def test_no_surface_cue_solves_a_demo_suite(demo_table: dict[str, dict[str, float]], suite: str) -> None:
    row = demo_table[suite]
    assert {"shortest", "longest", "in_prompt_en", "in_prompt_tl", "most_wordlike"} <= set(row)
    assert {"in_corpus", "most_frequent", "most_wordlike_corpus", "most_likely_corpus"} <= set(row)
    far = {cue: round(100 * score, 1) for cue, score in row.items() if abs(score - row["chance"]) > TOLERANCE}
    assert not far, f"{suite}: cues more than 5 points from chance {far}:\n{markdown(demo_table)}"


def _item(options: tuple[str, ...], gold: int, prompt: str = "q") -> Item:
    return Item("x", "b", "s", "t", {"en": prompt}, options[gold], options, gold)


def test_cues_find_a_cue_and_split_ties() -> None:
    # The gold is always the shortest, copied from the prompt, and a real word among reversals.
    items = [_item(("ayos", "soyaa", "maayo", "ayodd"), 0, "Remove ma- from 'maayos'.") for _ in range(8)]
    assert cue_accuracy(items, shortest) == 1.0 and cue_accuracy(items, longest) == 0.0
    assert cue_accuracy(items, in_prompt("en")) == 1.0 / 2  # ayos and maayo both occur in the prompt
    model = CharNgram.fit(["ayos", "maayos", "ayaw", "sayaw", "gayon", "ito", "iyon"] * 5)
    assert model.wordlikeness("ayos") > model.wordlikeness("soya") > model.wordlikeness("yyqx")
    # Options that tie (same length, none in the prompt) count 1/k: a cue that cannot decide scores chance.
    ties = [_item(("abcd", "bcda", "cdab", "dabc"), g) for g in range(4)]
    assert cue_accuracy(ties, shortest) == 0.25 == chance(ties)
    assert chance([_item(("a", "b"), 0), _item(("a", "b", "c", "d"), 0)]) == pytest.approx((1 / 2 + 1 / 4) / 2)


def test_corpus_cues_find_the_real_word_among_pieces() -> None:
    # A root is a word of the corpus and the pieces of its affixed form are not: the cue a corpus-trained
    # model has for free, which these cues must see (and the generator hide).
    corpus = CorpusWords.from_texts(["Kumain siya. Kain na! Mag-aral tayo, kain.", "Kumain ka na ba? Aral."])
    assert corpus.count("kain") == 2 and corpus.count("Mag-aral") == 1 and corpus.count("mag") == 0
    assert corpus.count("ku-ma-in") == 0  # an option counts as the whole it is, not by its letter runs
    cues = standard_cues(["kain"], ["en"], corpus)
    items = [_item(("kain", "kumin", "umain", "kuma"), 0, "Remove -um- from 'kumain'.") for _ in range(4)]
    assert cue_accuracy(items, cues["in_corpus"]) == 1.0 == cue_accuracy(items, cues["most_frequent"])
    assert corpus.wordlikeness("kain") > corpus.wordlikeness("kxqz")
    # Summed, as an LM's plain MCQ score: a short frequent word beats a longer one that is as word-like.
    assert corpus.likelihood("na") > corpus.likelihood("kumain") and cues["most_likely_corpus"](items[0])[0] < 0


# A stand-in word-likeness with candidates on both sides of kumain's 500 at every length (shorter, as long,
# longer): the balancer only compares scores.
SCORES = {"kumain": 500, "kmain": 600, "main": 700, "kuain": 400, "kumin": 300, "kinain": 450, "kakain": 550}
SCORES |= {"kumaain": 650, "kumakain": 750, "kumainn": 350, "kkumain": 250}


# A second score (a stand-in corpus frequency) that orders the options otherwise: balanced at once with it.
FREQUENCY = dict(zip(sorted(SCORES), (5, 1, 7, 3, 8, 2, 6, 4, 9, 0, 5), strict=True))


def _score(option: str) -> float:
    return float(SCORES[option])


def _frequency(option: str) -> float:
    return float(FREQUENCY[option])


def _suite(rng: random.Random, n: int = 400, frequency: bool = False) -> list[tuple[str, ...]]:
    """The options of `n` questions one generator balances (one suite): kumain and its near misses, whose
    sides by length and score vary from question to question as a real suite's do."""
    candidates = sorted(set(SCORES) - {"kumain"})
    out = []
    for _ in range(n):
        pool = rng.sample(candidates, rng.randint(4, len(candidates)))
        scores = {"frequency": _frequency} if frequency else {}
        wrong = balanced_distractors("kumain", pool, rng, wordlike=_score, scores=scores)
        out.append(("kumain", *wrong))
    return out


def test_balanced_distractors_keep_every_cue_at_chance_over_a_suite() -> None:
    questions = _suite(random.Random(3))
    items = [_item(options, 0) for options in questions]
    assert all(len(set(options)) == 4 for options in questions)
    # Stratified, not drawn: over 400 questions each cue is within a question or two of chance, where
    # independent draws would stray by about 2 points (one standard deviation).
    for cue in (
        shortest,
        longest,
        lambda item: [_score(o) for o in item.options],
        lambda item: [-_score(o) for o in item.options],
    ):
        assert cue_accuracy(items, cue) == pytest.approx(0.25, abs=0.01)
    # Not by leaving every question tied or the gold always in the middle: its place by length varies.
    below = [sum(len(o) < len("kumain") for o in options[1:]) for options in questions]
    assert all(below.count(n) > 20 for n in range(4)), [below.count(n) for n in range(4)]
    # The tally belongs to the generator: the same seed gives the same suite; another seed another one.
    assert _suite(random.Random(3)) == questions != _suite(random.Random(4))


def test_balanced_distractors_keep_two_scores_at_chance_at_once() -> None:
    # Word-likeness and a corpus frequency that orders the options otherwise (the generator balances four
    # such scores): every cue, most and least of each, near chance. Looser than one score alone: a pool of
    # four candidates often has no choice that suits both orders, and the tally makes that up only in part.
    items = [_item(options, 0) for options in _suite(random.Random(3), frequency=True)]
    for cue in (
        shortest,
        longest,
        lambda item: [_score(o) for o in item.options],
        lambda item: [-_score(o) for o in item.options],
        lambda item: [_frequency(o) for o in item.options],
        lambda item: [-_frequency(o) for o in item.options],
    ):
        assert cue_accuracy(items, cue) == pytest.approx(0.25, abs=0.04)


def test_balanced_distractors_are_copied_from_the_prompt_as_the_gold_is() -> None:
    rng = random.Random(5)
    prompt = "Remove ma- from 'maayos'. Write what remains."
    candidates = ["soya", "aayos", "yos", "maay", "ayo", "os", "maayos", "sayo", "ayon"]
    questions = [("ayos", *balanced_distractors("ayos", candidates, rng, prompts=[prompt])) for _ in range(50)]
    # The gold is a piece of the prompt, so its distractors are too (but for a trade against length now and
    # then): with fewer pieces among them, the occurs-in-the-prompt cue would pick the gold above chance.
    assert sum(all(option in prompt for option in options) for options in questions) >= 45
    items = [_item(options, 0, prompt) for options in questions]
    assert cue_accuracy(items, in_prompt("en")) == pytest.approx(0.25, abs=0.01)
