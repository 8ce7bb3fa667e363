"""Tagalog benchmark questions: PACUTE-style suites and hierarchical levels 0-5, in English and Tagalog.

Every answer is computed by the rules in `rules.py` from roots in roots.tsv and words from wordfreq's `fil`
list; distractors are near misses (wrong infix place, missing o -> u, wrong hyphen, off-by-one counts) so an
item cannot be solved by form alone. The generic layer (morphcpt.evaluation.generate) draws from `makers()`,
shuffles the gold in and writes the items.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from functools import cache

from morphcpt.evaluation.generate import Maker, Question
from morphcpt.languages.tl import rules
from morphcpt.languages.tl.corpus import WORDFREQ_LANGUAGE
from morphcpt.languages.tl.files import roots

PREFIXES = ("mag", "nag", "ma", "na", "pa", "ka", "taga", "pinaka", "i", "maka", "maki", "pang", "pag")
ORDINALS_EN = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
ORDINALS_TL = ("una", "ikalawa", "ikatlo", "ikaapat", "ikalima", "ikaanim", "ikapito", "ikawalo")


def _q(task: str, en: str, tl: str, answer: str, distractors: tuple[str, ...], source: dict[str, object]) -> Question:
    return Question(task, {"en": en, "tl": tl}, answer, distractors, source)


def word_pool(count: int = 3000) -> list[str]:
    """Real Tagalog words (wordfreq `fil`), lower-case letters only, 4-10 long."""
    from wordfreq import top_n_list

    return [
        w
        for w in top_n_list(WORDFREQ_LANGUAGE, count)
        if w.isascii() and w.isalpha() and w.islower() and 4 <= len(w) <= 10
    ]


# ---------------------------------------------------------------- affixation


def q_apply_prefix(root: str, rng: random.Random) -> Question:
    prefix = rng.choice(PREFIXES)
    answer = rules.apply_prefix(prefix, root)
    plain = prefix + root
    wrong = (plain if plain != answer else f"{prefix}-{root}", root + prefix, rules.apply_infix("um", root))
    return _q(
        "apply_prefix",
        f"Add the prefix '{prefix}-' to the root '{root}'. Write the resulting word.",
        f"Idagdag ang unlaping '{prefix}-' sa salitang-ugat na '{root}'. Isulat ang nabuong salita.",
        answer,
        wrong,
        {"root": root, "affix": prefix, "kind": "prefix"},
    )


def q_apply_infix(root: str, rng: random.Random) -> Question:
    infix = rng.choice(("um", "in")) if root[0] not in "lyw" else "um"  # l/y/w roots often take ni- for -in-
    answer = rules.apply_infix(infix, root)
    other = "in" if infix == "um" else "um"
    wrong = (
        infix + root if root[0] not in rules.VOWELS else root[0] + infix + root[1:],
        root[:2] + infix + root[2:],
        rules.apply_infix(other, root),
    )
    return _q(
        "apply_infix",
        f"Insert the infix '-{infix}-' into the root '{root}'. Write the resulting word.",
        f"Isingit ang gitlaping '-{infix}-' sa salitang-ugat na '{root}'. Isulat ang nabuong salita.",
        answer,
        wrong,
        {"root": root, "affix": infix, "kind": "infix"},
    )


def q_apply_suffix(root: str, rng: random.Random) -> Question:
    suffix = rng.choice(("in", "an"))
    answer = rules.apply_suffix(suffix, root)
    other = "an" if suffix == "in" else "in"
    wrong = (root + suffix, root + "h" + suffix, rules.apply_suffix(other, root))
    return _q(
        "apply_suffix",
        f"Add the suffix '-{suffix}' to the root '{root}'. Write the resulting word.",
        f"Idagdag ang hulaping '-{suffix}' sa salitang-ugat na '{root}'. Isulat ang nabuong salita.",
        answer,
        wrong,
        {"root": root, "affix": suffix, "kind": "suffix"},
    )


def q_apply_circumfix(root: str, rng: random.Random) -> Question:
    prefix, suffix = rng.choice((("ka", "an"), ("pag", "an"), ("pa", "in")))
    answer = rules.apply_circumfix(prefix, suffix, root)
    wrong = (
        rules.apply_prefix(prefix, root),
        rules.apply_suffix(suffix, root),
        rules.apply_prefix(prefix, root + suffix),
    )
    return _q(
        "apply_circumfix",
        f"Add the circumfix '{prefix}-...-{suffix}' to the root '{root}'. Write the resulting word.",
        f"Idagdag ang kabilaang panlapi na '{prefix}-...-{suffix}' sa salitang-ugat na '{root}'. "
        "Isulat ang nabuong salita.",
        answer,
        wrong,
        {"root": root, "affix": f"{prefix}-{suffix}", "kind": "circumfix"},
    )


def _derived(root: str, rng: random.Random) -> tuple[str, str, str]:
    """A word formed from `root` with one affix: (word, affix as written, kind)."""
    kinds = ["prefix", "infix"] + (["suffix"] if root[-1] not in rules.VOWELS else [])
    kind = rng.choice(kinds)
    if kind == "prefix":
        prefix = rng.choice(("mag", "ma", "pa", "ka", "taga", "maka", "maki", "pinaka"))
        return rules.apply_prefix(prefix, root), f"{prefix}-", kind
    if kind == "infix":
        infix = "um" if root[0] in "lyw" else rng.choice(("um", "in"))
        return rules.apply_infix(infix, root), f"-{infix}-", kind
    suffix = rng.choice(("in", "an"))
    return rules.apply_suffix(suffix, root), f"-{suffix}", kind


def q_identify_affix(root: str, rng: random.Random) -> Question:
    word, affix, kind = _derived(root, rng)
    pool = ("mag-", "ma-", "pa-", "ka-", "-um-", "-in-", "-in", "-an", "taga-", "maka-", "pinaka-", "maki-")
    return _q(
        "identify_affix",
        f"What affix is used in the word '{word}'? Write the affix with its hyphens (e.g. mag-, -um-, -an).",
        f"Anong panlapi ang ginamit sa salitang '{word}'? "
        "Isulat ang panlapi kasama ang gitling (hal. mag-, -um-, -an).",
        affix,
        tuple(rng.sample([a for a in pool if a != affix], 3)),
        {"root": root, "word": word, "affix": affix.strip("-"), "kind": kind},
    )


# ---------------------------------------------------------------- composition


def q_spelling(word: str, rng: random.Random) -> Question:
    answer = " ".join(word)
    swapped = list(word)
    i = rng.randrange(len(word) - 1)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    return _q(
        "spelling",
        f"Spell the word '{word}' letter by letter, separated by spaces.",
        f"Baybayin ang salitang '{word}' titik por titik, hiwalay ng espasyo.",
        answer,
        (" ".join(swapped), " ".join(word[:-1]), " ".join(word + word[-1])),
        {"word": word},
    )


def q_char_count(word: str, rng: random.Random) -> Question:
    n = len(word)
    return _q(
        "char_count",
        f"How many characters are in the word '{word}'? Answer with a number.",
        f"Ilang karakter ang nasa salitang '{word}'? Sumagot ng numero.",
        str(n),
        (str(n - 1), str(n + 1), str(n + 2)),
        {"word": word},
    )


def q_count_letter(word: str, rng: random.Random) -> Question:
    letter = rng.choice(sorted(set(word)))
    n = word.count(letter)
    return _q(
        "count_letter",
        f"How many times does the letter '{letter}' appear in '{word}'? Answer with a number.",
        f"Ilang beses lumabas ang titik na '{letter}' sa '{word}'? Sumagot ng numero.",
        str(n),
        (str(n + 1), str(n + 2), str(max(n - 1, 0)) if n > 1 else str(n + 3)),
        {"word": word, "letter": letter},
    )


def q_longest(word: str, rng: random.Random, pool: list[str]) -> Question:
    others = [w for w in rng.sample(pool, 12) if len(w) < len(word) and w != word]
    if len(others) < 3:
        return q_char_count(word, rng)
    return _q(
        "longest_word",
        f"Which of these words is the longest: {', '.join(sorted([word, *others[:3]]))}?",
        f"Alin sa mga salitang ito ang pinakamahaba: {', '.join(sorted([word, *others[:3]]))}?",
        word,
        tuple(others[:3]),
        {"word": word},
    )


# ---------------------------------------------------------------- manipulation


def q_manipulate(word: str, rng: random.Random, task: str | None = None) -> Question:
    task = task or rng.choice(("insert", "delete", "substitute", "swap", "duplicate"))
    i = rng.randrange(min(len(word), len(ORDINALS_EN)))
    ord_en, ord_tl = ORDINALS_EN[i], ORDINALS_TL[i]
    letter = rng.choice([c for c in "abdgklmnprstuy" if c != word[i]])
    if task == "insert":
        answer = word[:i] + letter + word[i:]
        en = f"Insert the letter '{letter}' before the {ord_en} letter of '{word}'."
        tl = f"Isingit ang titik na '{letter}' bago ang {ord_tl} titik ng '{word}'."
        wrong = (word[: i + 1] + letter + word[i + 1 :], letter + word, word + letter)
    elif task == "delete":
        answer = word[:i] + word[i + 1 :]
        en, tl = f"Delete the {ord_en} letter of '{word}'.", f"Burahin ang {ord_tl} titik ng '{word}'."
        wrong = (word[: i + 1] + word[i + 2 :], word[1:], word[:-1])
    elif task == "substitute":
        answer = word[:i] + letter + word[i + 1 :]
        en = f"Replace the {ord_en} letter of '{word}' with '{letter}'."
        tl = f"Palitan ng '{letter}' ang {ord_tl} titik ng '{word}'."
        wrong = (word[:i] + letter + word[i:], word[: i + 1] + letter + word[i + 2 :], letter + word[1:])
    elif task == "swap":
        answer = word[-1] + word[1:-1] + word[0]
        en = f"Swap the first and the last letters of '{word}'."
        tl = f"Pagpalitin ang una at huling titik ng '{word}'."
        wrong = (word[::-1], word[1] + word[0] + word[2:], word[:-2] + word[-1] + word[-2])
    else:
        answer = word[: i + 1] + word[i] + word[i + 1 :]
        en = f"Write '{word}' with its {ord_en} letter doubled."
        tl = f"Isulat ang '{word}' na doble ang {ord_tl} titik."
        wrong = (word + word[i], word[i] + word, word[: i + 1] + word[i + 1 :] + word[-1])
    return _q(task, en + " Write the new word.", tl + " Isulat ang bagong salita.", answer, wrong, {"word": word})


# ---------------------------------------------------------------- syllabification


def q_syllables(word: str, rng: random.Random) -> Question:
    parts = rules.syllables(word)
    task = rng.choice(("syllable_count", "syllable_extract", "syllabify"))
    if task == "syllable_count":
        n = len(parts)
        return _q(
            task,
            f"How many syllables does '{word}' have? Answer with a number.",
            f"Ilang pantig mayroon ang '{word}'? Sumagot ng numero.",
            str(n),
            (str(n + 1), str(max(n - 1, 0)) if n > 1 else str(n + 2), str(n + 3)),
            {"word": word, "syllables": parts},
        )
    if task == "syllable_extract" and len(parts) >= 2:
        i = rng.randrange(len(parts))
        wrong = [p for p in parts if p != parts[i]] + [word[:2], word[-2:], word[:3]]
        return _q(
            task,
            f"What is the {ORDINALS_EN[i]} syllable of '{word}'?",
            f"Ano ang {ORDINALS_TL[i]} pantig ng '{word}'?",
            parts[i],
            tuple(wrong),
            {"word": word, "syllables": parts, "index": i},
        )
    answer = "-".join(parts)
    shifted = "-".join(word[j : j + 2] for j in range(0, len(word), 2))
    return _q(
        "syllabify",
        f"Split '{word}' into syllables, separated by hyphens.",
        f"Pantigin ang '{word}', hiwalay ng gitling.",
        answer,
        (shifted, "-".join(word[j : j + 3] for j in range(0, len(word), 3)), word),
        {"word": word, "syllables": parts},
    )


# ---------------------------------------------------------------- hierarchical


def q_letter_at(word: str, rng: random.Random) -> Question:
    i = rng.randrange(min(len(word), len(ORDINALS_EN)))
    others = [c for c in dict.fromkeys(word + "aeioukgs") if c != word[i]]
    return _q(
        "letter_at",
        f"What is the {ORDINALS_EN[i]} letter of '{word}'?",
        f"Ano ang {ORDINALS_TL[i]} titik ng '{word}'?",
        word[i],
        tuple(others[:3]),
        {"word": word, "index": i},
    )


def q_root(root: str, rng: random.Random) -> Question:
    word, affix, kind = _derived(root, rng)
    return _q(
        "extract_root",
        f"What is the root (salitang-ugat) of '{word}'?",
        f"Ano ang salitang-ugat ng '{word}'?",
        root,
        (word, word[1:], word[:-1] if kind != "suffix" else word[:-2]),
        {"root": root, "word": word, "affix": affix.strip("-"), "kind": kind},
    )


def q_remove_affix(root: str, rng: random.Random) -> Question:
    word, affix, kind = _derived(root, rng)
    return _q(
        "remove_affix",
        f"Remove the affix '{affix}' from '{word}'. Write what remains.",
        f"Alisin ang panlaping '{affix}' sa '{word}'. Isulat ang natira.",
        root,
        (word.replace(affix.strip("-"), "", 1)[::-1], word[2:], word[:-2]),
        {"root": root, "word": word, "affix": affix.strip("-"), "kind": kind},
    )


def q_complex(root: str, rng: random.Random) -> Question:
    task = rng.choice(("progressive_um", "contemplated_um", "prefix_then_count", "mag_reduplicated"))
    if task == "progressive_um":
        answer = rules.progressive_um(root)
        en = f"Form the progressive aspect of the -um- verb from '{root}' (infix -um- and reduplicate)."
        tl = f"Bumuo ng aspektong progresibo ng pandiwang -um- mula sa '{root}' (gitlaping -um- at pag-uulit)."
        wrong = (
            rules.apply_infix("um", root),
            rules.contemplated_um(root),
            rules.reduplicate(rules.apply_infix("um", root)),
        )
    elif task == "contemplated_um":
        answer = rules.contemplated_um(root)
        en = f"Form the contemplated (future) aspect of the -um- verb from '{root}'."
        tl = f"Bumuo ng aspektong kontemplatibo ng pandiwang -um- mula sa '{root}'."
        wrong = (rules.progressive_um(root), rules.apply_infix("um", root), root + root[-2:])
    elif task == "mag_reduplicated":
        answer = rules.apply_prefix("mag", rules.reduplicate(root))
        en = f"Form the contemplated aspect of the mag- verb from '{root}' (mag- plus reduplication)."
        tl = f"Bumuo ng aspektong kontemplatibo ng pandiwang mag- mula sa '{root}' (mag- at pag-uulit)."
        wrong = (
            rules.apply_prefix("mag", root),
            rules.apply_prefix("nag", rules.reduplicate(root)),
            "mag" + root + root,
        )
    else:
        word = rules.apply_infix("um", root)
        n = len(word)
        return _q(
            task,
            f"Insert the infix -um- into '{root}', then count the characters of the result. Answer with a number.",
            f"Isingit ang gitlaping -um- sa '{root}', saka bilangin ang karakter ng nabuo. Sumagot ng numero.",
            str(n),
            (str(len(root)), str(n + 1), str(n - 1)),
            {"root": root, "word": word},
        )
    return _q(task, en, tl, answer, tuple(wrong), {"root": root})


def _suites(roots: list[str], words: list[str]) -> dict[tuple[str, str], Maker]:
    consonant_final = [r for r in roots if r[-1] not in rules.VOWELS]
    vocabulary = sorted(set(words) | set(roots))

    def pick(pool: list[str]) -> Callable[[random.Random], str]:
        return lambda rng: rng.choice(pool)

    root, cfinal, word = pick(roots), pick(consonant_final), pick(vocabulary)

    def affixation(rng: random.Random) -> Question:
        kind = rng.choice(("prefix", "infix", "suffix", "circumfix", "identify"))
        if kind == "prefix":
            return q_apply_prefix(root(rng), rng)
        if kind == "infix":
            return q_apply_infix(root(rng), rng)
        if kind == "suffix":
            return q_apply_suffix(cfinal(rng), rng)
        if kind == "circumfix":
            return q_apply_circumfix(cfinal(rng), rng)
        return q_identify_affix(root(rng), rng)

    def composition(rng: random.Random) -> Question:
        kind = rng.choice((q_spelling, q_char_count, q_count_letter, "longest"))
        if kind == "longest":
            return q_longest(word(rng), rng, vocabulary)
        return kind(word(rng), rng)  # type: ignore[operator]

    def level_2(rng: random.Random) -> Question:
        return q_identify_affix(root(rng), rng) if rng.random() < 0.5 else q_root(root(rng), rng)

    def level_4(rng: random.Random) -> Question:
        kind = rng.choice(("prefix", "infix", "suffix"))
        if kind == "suffix":
            return q_apply_suffix(cfinal(rng), rng)
        return q_apply_prefix(root(rng), rng) if kind == "prefix" else q_apply_infix(root(rng), rng)

    return {
        ("pacute", "affixation"): affixation,
        ("pacute", "composition"): composition,
        ("pacute", "manipulation"): lambda rng: q_manipulate(word(rng), rng),
        ("pacute", "syllabification"): lambda rng: q_syllables(word(rng), rng),
        ("hierarchical", "level_0"): lambda rng: q_letter_at(word(rng), rng),
        ("hierarchical", "level_1"): lambda rng: q_manipulate(word(rng), rng, rng.choice(("insert", "delete", "swap"))),
        ("hierarchical", "level_2"): level_2,
        ("hierarchical", "level_3"): lambda rng: q_remove_affix(root(rng), rng),
        ("hierarchical", "level_4"): level_4,
        ("hierarchical", "level_5"): lambda rng: q_complex(root(rng), rng),
    }


@cache
def makers() -> Mapping[tuple[str, str], Maker]:
    """The makers of every suite, over the pack's roots and the word pool (built once: wordfreq is slow)."""
    return _suites(list(roots()), word_pool())
