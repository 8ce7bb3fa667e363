"""Toyish benchmark questions for two suites, in English and Toyish, answered by the toy rules."""

from __future__ import annotations

import random
from collections.abc import Mapping

from morphcpt.evaluation.generate import Maker, Question
from toy_language import rules


def _q(task: str, en: str, xx: str, answer: str, wrong: tuple[str, ...], source: dict[str, object]) -> Question:
    return Question(task, {"en": en, "xx": xx}, answer, wrong, source)


def q_affix(root: str, rng: random.Random) -> Question:
    kinds = ["prefix", "suffix"] + (["infix"] if root[0] not in rules.VOWELS else [])
    kind = rng.choice(kinds)
    if kind == "prefix":
        affix = rng.choice(rules.affixes().prefixes)
        answer = rules.apply_prefix(affix, root)
        wrong = (affix + root if affix + root != answer else f"{affix}h{root}", root + affix, affix + affix + root)
        shown = f"{affix}-"
    elif kind == "suffix":
        affix = rng.choice(rules.affixes().suffixes)
        answer = rules.apply_suffix(affix, root)
        wrong = (root + affix if root + affix != answer else root + "e" + affix, affix + root, root + affix + affix)
        shown = f"-{affix}"
    else:
        affix = "el"
        answer = rules.apply_infix(root)
        wrong = ("el" + root, root[:2] + "el" + root[2:], root + "el")
        shown = "-el-"
    return _q(
        f"apply_{kind}",
        f"Add the {kind} '{shown}' to the root '{root}'. Write the resulting word.",
        f"Zo-pleko '{shown}' ka rutu '{root}'. Skribo.",
        answer,
        wrong,
        {"root": root, "affix": affix, "kind": kind},
    )


def q_syllables(word: str, rng: random.Random) -> Question:
    parts = rules.syllables(word)
    return _q(
        "syllabify",
        f"Split '{word}' into syllables, separated by hyphens.",
        f"Silabo '{word}' kun streko.",
        "-".join(parts),
        ("-".join(word[j : j + 2] for j in range(0, len(word), 2)), word, "-".join(word)),
        {"word": word, "syllables": parts},
    )


def makers() -> Mapping[tuple[str, str], Maker]:
    words = rules.derived_words()
    return {
        ("pacute", "affixation"): lambda rng: q_affix(rng.choice(rules.ROOTS), rng),
        ("pacute", "syllabification"): lambda rng: q_syllables(rng.choice(words), rng),
    }
