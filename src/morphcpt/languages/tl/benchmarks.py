"""Tagalog benchmark questions: PACUTE-style suites and hierarchical levels 0-5, in English and Tagalog.

Every answer is computed by the rules in `rules.py` from roots in roots.tsv and words from wordfreq's `fil`
list. Distractors are near misses (wrong infix place, missing o -> u, wrong hyphen, stripping too much or
too little, other forms of the same root, the same edit at another place, a syllable boundary one letter
off), three of them chosen per question so that over each suite, and over each kind of question in it, no
surface cue picks the gold more often than chance: the gold is the shortest, the longest, the most and the
least word-like option (by the character trigram model of the pack's word list the cue uses) and copied from
the prompt a quarter of the time (morphcpt.evaluation.cues.balanced_distractors; tests/test_benchmark_cues.py,
bench/benchmark_cues.py). Counts are runs of consecutive numbers holding the gold anywhere. The generic layer
(morphcpt.evaluation.generate) draws from `makers()`, shuffles the gold in and writes the items.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping
from functools import cache

from morphcpt.evaluation.cues import CharNgram, CorpusWords, Scorer, language_words, number_distractors, offline_corpus
from morphcpt.evaluation.cues import balanced_distractors as balanced
from morphcpt.evaluation.generate import Maker, Question
from morphcpt.languages.tl import rules
from morphcpt.languages.tl.corpus import WORDFREQ_LANGUAGE
from morphcpt.languages.tl.files import roots

PREFIXES = ("mag", "nag", "ma", "na", "pa", "ka", "taga", "pinaka", "i", "maka", "maki", "pang", "pag")
CIRCUMFIXES = (("ka", "an"), ("pag", "an"), ("pa", "in"))
ORDINALS_EN = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
ORDINALS_TL = ("una", "ikalawa", "ikatlo", "ikaapat", "ikalima", "ikaanim", "ikapito", "ikawalo")


def _q(task: str, en: str, tl: str, answer: str, distractors: tuple[str, ...], source: dict[str, object]) -> Question:
    return Question(task, {"en": en, "tl": tl}, answer, distractors, source)


def _balanced_q(
    task: str,
    en: str,
    tl: str,
    answer: str,
    candidates: list[str],
    rng: random.Random,
    source: dict[str, object],
    *,
    slipped: bool = True,
) -> Question:
    """A question whose distractors are three of `candidates` chosen so that no surface cue picks the gold
    more often than chance over the suite (`slipped`: spelling slips of the answer may fill in lengths)."""
    wrong = distractors(answer, candidates, rng, prompts=(en, tl), slipped=slipped, task=task)
    return _q(task, en, tl, answer, wrong, source)


def word_pool(count: int = 3000) -> list[str]:
    """Real Tagalog words (wordfreq `fil`), lower-case letters only, 4-10 long."""
    from wordfreq import top_n_list

    return [
        w
        for w in top_n_list(WORDFREQ_LANGUAGE, count)
        if w.isascii() and w.isalpha() and w.islower() and 4 <= len(w) <= 10
    ]


@cache
def _corpus() -> CorpusWords:
    """The words of the corpus a model of this pack is trained on offline (the demo's: `morphcpt demo-data`,
    which morphcpt.evaluation.cues.offline_corpus builds again): another corpus has the same frequent words
    (the pack's word list is the source of both), so balancing against this one serves it too."""
    return offline_corpus("tl")


@cache
def _scores() -> dict[str, Scorer]:
    """What the cues score an option by besides length and the prompt, and distractors are chosen against:
    word-likeness by a character trigram model of the pack's word list (the word-likeness cue,
    morphcpt.evaluation.cues.standard_cues) and, from the training corpus, being a word of it, its
    frequency there and word-likeness (per letter) and likelihood (summed) by a trigram model of its text
    (cues.corpus_cues): a corpus-trained
    model prefers real words, so a gold that is one among pieces that are not would be found without
    knowing any morphology."""
    from morphcpt.languages.tl import PACK

    corpus = _corpus()
    return {
        "wordlike": CharNgram.fit(language_words(PACK)).wordlikeness,
        "in_corpus": corpus.in_corpus,
        "frequency": corpus.frequency,
        "wordlike_corpus": corpus.wordlikeness,
        "likelihood_corpus": corpus.likelihood,
    }


def distractors(
    answer: str,
    candidates: list[str],
    rng: random.Random,
    prompts: tuple[str, ...],
    slipped: bool = True,
    task: str = "",
) -> tuple[str, ...]:
    """Three distractors among `candidates` that give away the gold by neither length, word-likeness, the
    training corpus (a word of it, how frequent) nor being copied from the question (`prompts`, in each
    language), over the suite and its `task` questions (see `balanced`)."""
    fillers = slips(answer, rng) if slipped else []
    return balanced(answer, candidates, rng, prompts=prompts, scores=_scores(), fillers=fillers, task=task)


def slips(answer: str, rng: random.Random, each: int = 3) -> list[str]:
    """Spelling slips of the answer, `each` a letter shorter, as long and a letter longer (a letter dropped,
    two swapped, one doubled): so every pool has options on both sides of the answer's length."""
    n = len(answer)
    dropped = [answer[:i] + answer[i + 1 :] for i in range(n)]
    swapped = [answer[:i] + answer[i + 1] + answer[i] + answer[i + 2 :] for i in range(n - 1)]
    doubled = [answer[: i + 1] + answer[i:] for i in range(n)]
    out: list[str] = []
    for group in (dropped, swapped, doubled):
        group = [g for g in dict.fromkeys(group) if g != answer and "--" not in g and not g.startswith("-")]
        out += rng.sample(group, min(each, len(group)))
    return out


# ---------------------------------------------------------------- affixation


def syncope(stem: str) -> str:
    """`stem` without its last vowel (bukas + an -> buksan): real for some roots, so a near miss for others."""
    last = max(stem.rfind(v) for v in rules.VOWELS)
    return stem[:last] + stem[last + 1 :]


def paradigm(root: str) -> list[str]:
    """Other real forms of `root` (other affixes, aspects): distractors that share the prompt's root and are
    as word-like as any answer, in every length; near misses alone would leave the gold the most word-like."""
    forms = [rules.apply_prefix(p, root) for p in PREFIXES]
    forms += [rules.apply_infix(i, base) for i in ("um", "in") for base in (root, rules.reduplicate(root))]
    forms += [rules.reduplicate(root), *(rules.apply_prefix(p, rules.reduplicate(root)) for p in ("mag", "nag", "ma"))]
    if root[-1] not in rules.VOWELS:
        forms += [rules.apply_suffix(s, root) for s in ("in", "an")]
        forms += [rules.apply_circumfix(p, s, root) for p, s in CIRCUMFIXES]
    return forms


def q_apply_prefix(root: str, rng: random.Random) -> Question:
    prefix = rng.choice(PREFIXES)
    answer = rules.apply_prefix(prefix, root)
    errors = [  # the asked prefix, attached wrongly: hyphen, assimilation, a reduplication not asked for
        prefix + root,
        f"{prefix}-{root}",
        *(nasal + root for nasal in ("pang", "pam", "pan") if prefix == "pang"),
        rules.apply_prefix(prefix, rules.reduplicate(root)),
    ]
    others = paradigm(root)
    return _balanced_q(
        "apply_prefix",
        f"Add the prefix '{prefix}-' to the root '{root}'. Write the resulting word.",
        f"Idagdag ang unlaping '{prefix}-' sa salitang-ugat na '{root}'. Isulat ang nabuong salita.",
        answer,
        errors + others,
        rng,
        {"root": root, "affix": prefix, "kind": "prefix"},
    )


def onset_and(infixed: str, root: str, part: str) -> str:
    """`root` with only `part` of the infix that `infixed` has: k-u-ain for kumain (the infix half done)."""
    head = len(infixed) - len(root)  # onset + infix
    onset = head - 2
    return infixed[:onset] + part + infixed[head:]


def q_apply_infix(root: str, rng: random.Random) -> Question:
    infix = rng.choice(("um", "in")) if root[0] not in "lyw" else "um"  # l/y/w roots often take ni- for -in-
    answer = rules.apply_infix(infix, root)
    other = "in" if infix == "um" else "um"
    head = answer[: len(answer) - len(root)]  # the onset and the infix: k-um of kumain
    candidates = [
        infix + root if root[0] not in rules.VOWELS else root[0] + infix + root[1:],  # wrong place
        root[:2] + infix + root[2:],
        root + infix,
        head + root[len(head) - len(infix) + 1 :],  # the infix over the root's next letter (shorter)
        rules.apply_infix(other, root),  # the other infix: a real word
        onset_and(answer, root, infix[0]),  # half of the infix (shorter)
        onset_and(answer, root, infix[1]),
        *paradigm(root),
    ]
    return _balanced_q(
        "apply_infix",
        f"Insert the infix '-{infix}-' into the root '{root}'. Write the resulting word.",
        f"Isingit ang gitlaping '-{infix}-' sa salitang-ugat na '{root}'. Isulat ang nabuong salita.",
        answer,
        candidates,
        rng,
        {"root": root, "affix": infix, "kind": "infix"},
    )


def q_apply_suffix(root: str, rng: random.Random) -> Question:
    suffix = rng.choice(("in", "an"))
    answer = rules.apply_suffix(suffix, root)
    other = "an" if suffix == "in" else "in"
    stem = rules.suffix_stem(root)
    candidates = [
        root + suffix,  # o -> u missed
        root + "h" + suffix,  # the -h- of vowel-final roots
        stem + other,
        syncope(stem) + suffix,  # a vowel dropped that this root keeps (shorter)
        syncope(stem) + other,
        rules.reduplicate(stem) + suffix,  # with the aspect's reduplication (longer)
        *paradigm(root),
    ]
    return _balanced_q(
        "apply_suffix",
        f"Add the suffix '-{suffix}' to the root '{root}'. Write the resulting word.",
        f"Idagdag ang hulaping '-{suffix}' sa salitang-ugat na '{root}'. Isulat ang nabuong salita.",
        answer,
        candidates,
        rng,
        {"root": root, "affix": suffix, "kind": "suffix"},
    )


def q_apply_circumfix(root: str, rng: random.Random) -> Question:
    prefix, suffix = rng.choice(CIRCUMFIXES)
    answer = rules.apply_circumfix(prefix, suffix, root)
    stem = rules.suffix_stem(root)
    candidates = [
        rules.apply_prefix(prefix, root),  # half of the circumfix (shorter)
        rules.apply_suffix(suffix, root),
        rules.apply_prefix(prefix, root + suffix),  # o -> u missed
        rules.apply_prefix(prefix, syncope(stem) + suffix),  # a vowel dropped (shorter)
        rules.apply_prefix(prefix, rules.reduplicate(stem) + suffix),  # reduplicated (longer)
        *paradigm(root),
    ]
    return _balanced_q(
        "apply_circumfix",
        f"Add the circumfix '{prefix}-...-{suffix}' to the root '{root}'. Write the resulting word.",
        f"Idagdag ang kabilaang panlapi na '{prefix}-...-{suffix}' sa salitang-ugat na '{root}'. "
        "Isulat ang nabuong salita.",
        answer,
        candidates,
        rng,
        {"root": root, "affix": f"{prefix}-{suffix}", "kind": "circumfix"},
    )


DERIVING_PREFIXES = ("mag", "ma", "pa", "ka", "taga", "maka", "maki", "pinaka")


def _affixes_for(root: str) -> list[tuple[str, str]]:
    """The single affixes (as written, kind) the benchmarks derive words from `root` with."""
    out = [(f"{p}-", "prefix") for p in DERIVING_PREFIXES]
    out += [("-um-", "infix")] + ([("-in-", "infix")] if root[0] not in "lyw" else [])  # l/y/w: ni- for -in-
    if root[-1] not in rules.VOWELS:
        out += [("-in", "suffix"), ("-an", "suffix")]
    return out


def _affixed(root: str, affix: str, kind: str) -> str:
    bare = affix.strip("-")
    if kind == "prefix":
        return rules.apply_prefix(bare, root)
    return rules.apply_infix(bare, root) if kind == "infix" else rules.apply_suffix(bare, root)


def _derived(root: str, rng: random.Random) -> tuple[str, str, str]:
    """A word formed from `root` with one affix: (word, affix as written, kind)."""
    kind = rng.choice(["prefix", "infix"] + (["suffix"] if root[-1] not in rules.VOWELS else []))
    affix = rng.choice([a for a, k in _affixes_for(root) if k == kind])
    return _affixed(root, affix, kind), affix, kind


def q_identify_affix(root: str, rng: random.Random) -> Question:
    # Options among the affixes the root takes, the gold one of them at random, the other three chosen so
    # that neither length, letters nor being one of the prompt's examples (mag-, -um-, -an) marks it.
    (affix, kind), *others = rng.sample(_affixes_for(root), len(_affixes_for(root)))
    word = _affixed(root, affix, kind)
    return _balanced_q(
        "identify_affix",
        f"What affix is used in the word '{word}'? Write the affix with its hyphens (e.g. mag-, -um-, -an).",
        f"Anong panlapi ang ginamit sa salitang '{word}'? "
        "Isulat ang panlapi kasama ang gitling (hal. mag-, -um-, -an).",
        affix,
        [a for a, _ in others],
        rng,
        {"root": root, "word": word, "affix": affix.strip("-"), "kind": kind},
        slipped=False,
    )


# ---------------------------------------------------------------- composition


def _swaps(text: str, rng: random.Random, count: int = 3) -> list[str]:
    """`count` distinct strings made by swapping two different letters of `text`."""
    pairs = [(i, j) for i in range(len(text)) for j in range(i + 1, len(text)) if text[i] != text[j]]
    rng.shuffle(pairs)
    out: list[str] = []
    for i, j in pairs:
        chars = list(text)
        chars[i], chars[j] = chars[j], chars[i]
        if (swapped := "".join(chars)) not in out:
            out.append(swapped)
        if len(out) == count:
            break
    return out


def q_spelling(word: str, rng: random.Random) -> Question:
    # Misspellings by two swapped letters: the same letters and length, so neither length nor the letters'
    # frequencies tell the gold; only the order does (and word-likeness scores each letter alone: a tie).
    return _balanced_q(
        "spelling",
        f"Spell the word '{word}' letter by letter, separated by spaces.",
        f"Baybayin ang salitang '{word}' titik por titik, hiwalay ng espasyo.",
        " ".join(word),
        [" ".join(w) for w in _swaps(word, rng, count=6)],
        rng,
        {"word": word},
        slipped=False,
    )


def q_char_count(word: str, rng: random.Random) -> Question:
    n = len(word)
    return _q(
        "char_count",
        f"How many characters are in the word '{word}'? Answer with a number.",
        f"Ilang karakter ang nasa salitang '{word}'? Sumagot ng numero.",
        str(n),
        number_distractors(n, rng, low=1),
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
        number_distractors(n, rng),
        {"word": word, "letter": letter},
    )


def q_longest(word: str, rng: random.Random, pool: list[str]) -> Question:
    others = [w for w in dict.fromkeys(rng.sample(pool, 12)) if len(w) < len(word) and w != word]
    if len(others) < 3:
        return q_char_count(word, rng)
    listed = [word, *others[:3]]
    rng.shuffle(listed)
    # The answer is the longest word's place in the list, not the word: offered the words themselves, the
    # longest option would always be right.
    shown = ", ".join(f"({n}) {w}" for n, w in enumerate(listed, start=1))
    return _q(
        "longest_word",
        f"Which of these words is the longest: {shown}? Answer with its number: 1, 2, 3 or 4.",
        f"Alin sa mga salitang ito ang pinakamahaba: {shown}? Sumagot ng bilang nito: 1, 2, 3 o 4.",
        str(listed.index(word) + 1),
        tuple(str(n) for n in range(1, 5) if listed[n - 1] != word),
        {"word": word, "words": listed},
    )


# ---------------------------------------------------------------- manipulation


def _elsewhere(word: str, i: int, edit: Callable[[int], str], rng: random.Random, extra: list[str]) -> list[str]:
    """The same edit at other places of the word (a miscounted ordinal), then `extra` near misses: edited
    at a place drawn like the answer's, a distractor is as long and as word-like as the answer."""
    places = [j for j in range(min(len(word), len(ORDINALS_EN))) if j != i]
    rng.shuffle(places)
    return [edit(j) for j in places] + extra


def q_manipulate(word: str, rng: random.Random, task: str | None = None) -> Question:
    task = task or rng.choice(MANIPULATIONS)
    if task == "swap" and word[0] == word[-1]:
        task = "insert"  # swapping equal end letters would give the word itself back
    i = rng.randrange(min(len(word), len(ORDINALS_EN)))
    ord_en, ord_tl = ORDINALS_EN[i], ORDINALS_TL[i]
    letter = rng.choice([c for c in "abdgklmnprstuy" if c != word[i]])
    if task == "insert":
        answer = word[:i] + letter + word[i:]
        en = f"Insert the letter '{letter}' before the {ord_en} letter of '{word}'."
        tl = f"Isingit ang titik na '{letter}' bago ang {ord_tl} titik ng '{word}'."
        wrong = _elsewhere(word, i, lambda j: word[:j] + letter + word[j:], rng, [word + letter])
    elif task == "delete":
        answer = word[:i] + word[i + 1 :]
        en, tl = f"Delete the {ord_en} letter of '{word}'.", f"Burahin ang {ord_tl} titik ng '{word}'."
        wrong = _elsewhere(word, i, lambda j: word[:j] + word[j + 1 :], rng, [word[:-1]])
    elif task == "substitute":
        answer = word[:i] + letter + word[i + 1 :]
        en = f"Replace the {ord_en} letter of '{word}' with '{letter}'."
        tl = f"Palitan ng '{letter}' ang {ord_tl} titik ng '{word}'."
        # The same letter elsewhere; where the word already has it, that would be the word unchanged.
        wrong = _elsewhere(word, i, lambda j: word[:j] + letter + word[j + 1 :], rng, [])
    elif task == "swap":
        answer = word[-1] + word[1:-1] + word[0]
        en = f"Swap the first and the last letters of '{word}'."
        tl = f"Pagpalitin ang una at huling titik ng '{word}'."
        n = len(word)

        def swap(a: int, b: int) -> str:
            chars = list(word)
            chars[a], chars[b] = chars[b], chars[a]
            return "".join(chars)

        # Other swaps of two letters, each moving one of the two end letters like the answer does.
        wrong = [swap(0, j) for j in range(1, n - 1)] + [swap(j, n - 1) for j in range(1, n - 1)] + [word[::-1]]
    else:
        answer = word[: i + 1] + word[i] + word[i + 1 :]
        en = f"Write '{word}' with its {ord_en} letter doubled."
        tl = f"Isulat ang '{word}' na doble ang {ord_tl} titik."
        wrong = _elsewhere(word, i, lambda j: word[: j + 1] + word[j] + word[j + 1 :], rng, [word + word[-1]])
    # The same edit at other places (drawn like the answer's place, so as long as it), three of them chosen
    # so that word-likeness and being a piece of the word (a deletion at either end) tell nothing either.
    wrong = [w for w in dict.fromkeys(wrong) if w not in (word, answer)]
    en, tl = en + " Write the new word.", tl + " Isulat ang bagong salita."
    return _balanced_q(task, en, tl, answer, wrong, rng, {"word": word}, slipped=False)


# ---------------------------------------------------------------- syllabification


def _other_hyphenations(parts: list[str]) -> list[str]:
    """Other splits of the word into one piece fewer, as many or one more: the mistakes a syllabifier makes.
    Pieces have a vowel (kum-a-in, ku-main), except that one piece may be a lone consonant (k-u-ma-in,
    ku-ma-i-n: a coda or onset split off): a word has rarely more syllables than vowels, so without those no
    option would be longer than the gold (one more hyphen) and the longest option would be the gold."""
    word = "".join(parts)
    gold = "-".join(parts)
    splits = [word]  # not split at all (a real word, so as word-like as one): some golds' syllables beat every split
    for pieces_count in sorted({max(len(parts) - 1, 2), len(parts), len(parts) + 1}):
        splits += _splits(word, pieces_count, gold)
    return splits


def _splits(word: str, count: int, gold: str) -> list[str]:
    splits = []
    for cuts in itertools.combinations(range(1, len(word)), max(count - 1, 0)):
        bounds = [0, *cuts, len(word)]
        pieces = [word[a:b] for a, b in itertools.pairwise(bounds)]
        voiceless = [p for p in pieces if not rules.VOWELS & set(p)]
        if (not voiceless or voiceless in (pieces[:1], pieces[-1:])) and all(len(p) == 1 for p in voiceless):
            if (split := "-".join(pieces)) != gold:
                splits.append(split)
    return splits


SYLLABLE_TASKS = ("syllable_count", "syllable_extract", "syllabify")
COMPLEX_TASKS = ("progressive_um", "contemplated_um", "prefix_then_count", "mag_reduplicated")
MANIPULATIONS = ("insert", "delete", "substitute", "swap", "duplicate")


def q_syllables(word: str, rng: random.Random, task: str | None = None) -> Question:
    parts = rules.syllables(word)
    task = task or rng.choice(SYLLABLE_TASKS)
    if task == "syllable_count" or len(parts) < 2:  # a one-syllable word has nothing to split or pick
        n = len(parts)
        return _q(
            "syllable_count",
            f"How many syllables does '{word}' have? Answer with a number.",
            f"Ilang pantig mayroon ang '{word}'? Sumagot ng numero.",
            str(n),
            number_distractors(n, rng, low=1),
            {"word": word, "syllables": parts},
        )
    if task == "syllable_extract":
        i = rng.randrange(len(parts))
        size = len(parts[i])
        # The word's other syllables, and pieces of it with a vowel a letter shorter, as long or a letter
        # longer, at any place (a miscounted syllable, a boundary one letter off): pieces of the word, as the
        # gold is, on both sides of its length.
        others = list(dict.fromkeys(p for p in parts if p != parts[i]))
        pieces = [
            word[a : a + n]
            for n in range(max(size - 1, 1), size + 2)
            for a in range(len(word) - n + 1)
            if rules.VOWELS & set(word[a : a + n])
        ]
        return _balanced_q(
            task,
            f"What is the {ORDINALS_EN[i]} syllable of '{word}'?",
            f"Ano ang {ORDINALS_TL[i]} pantig ng '{word}'?",
            parts[i],
            others + pieces,
            rng,
            {"word": word, "syllables": parts, "index": i},
        )
    return _balanced_q(
        "syllabify",
        f"Split '{word}' into syllables, separated by hyphens.",
        f"Pantigin ang '{word}', hiwalay ng gitling.",
        "-".join(parts),
        _other_hyphenations(parts),
        rng,
        {"word": word, "syllables": parts},
        slipped=False,
    )


# ---------------------------------------------------------------- hierarchical


def q_letter_at(word: str, rng: random.Random) -> Question:
    i = rng.randrange(min(len(word), len(ORDINALS_EN)))
    others = [c for c in dict.fromkeys(word + "aeioukgs") if c != word[i]]
    return _balanced_q(
        "letter_at",
        f"What is the {ORDINALS_EN[i]} letter of '{word}'?",
        f"Ano ang {ORDINALS_TL[i]} titik ng '{word}'?",
        word[i],
        others,
        rng,
        {"word": word, "index": i},
        slipped=False,
    )


@cache
def _known_words() -> frozenset[str]:
    return frozenset(word_pool()) | frozenset(roots())


def real_pieces(word: str, root: str, rng: random.Random) -> list[str]:
    """Real words inside `word` (mahal in mahalan) and a few other roots of about the root's length: as
    word-like as the root, the first for when it is a piece of the word, the second for when it is not."""
    inside = [word[a:b] for a in range(len(word)) for b in range(a + 2, len(word) + 1)]
    similar = [r for r in roots() if abs(len(r) - len(root)) <= 2 and r != root]
    return [w for w in dict.fromkeys(inside) if w in _known_words() and w != root] + rng.sample(similar, 6)


def stripping_errors(word: str, affix: str, kind: str, root: str) -> list[str]:
    """What a learner gets taking `affix` off `word` wrongly: a piece about the affix's size cut at another
    place (too little, too much, the wrong end, from inside the root), and for a suffixed root whose o
    became u the u kept or the o restored in the wrong piece. Pieces of the word where the root is one."""
    size = len(affix.strip("-")) + (kind == "prefix" and "-" in word)
    out: list[str] = []
    for cut in range(max(1, size - 2), size + 3):
        for start in range(len(word) - cut + 1):
            rest = word[:start] + word[start + cut :]
            if sum(ch.isalpha() for ch in rest) >= 2:
                out.append(rest)
    # Pieces as long as the root cut at the wrong place (mak, aki, kiu of makiupo): with these an answer
    # too short to have three shorter pieces beside it still has three as long.
    out += [word[a : a + len(root)] for a in range(len(word) - len(root) + 1)]
    if kind == "suffix" and rules.suffix_stem(root) != root:
        last_u = [rest[: rest.rfind("u")] + "o" + rest[rest.rfind("u") + 1 :] for rest in out if "u" in rest]
        out += last_u
    return [o for o in dict.fromkeys(out) if o != root]


def q_root(root: str, rng: random.Random) -> Question:
    word, affix, kind = _derived(root, rng)
    return _balanced_q(
        "extract_root",
        f"What is the root (salitang-ugat) of '{word}'?",
        f"Ano ang salitang-ugat ng '{word}'?",
        root,
        stripping_errors(word, affix, kind, root) + real_pieces(word, root, rng),
        rng,
        {"root": root, "word": word, "affix": affix.strip("-"), "kind": kind},
    )


def q_remove_affix(root: str, rng: random.Random) -> Question:
    word, affix, kind = _derived(root, rng)
    # Not the literal remainder of a suffixed o -> u root (inumin minus -in is inum): the gold is the root.
    literal = word.replace(affix.strip("-"), "", 1) if kind != "prefix" else None
    errors = [e for e in stripping_errors(word, affix, kind, root) + real_pieces(word, root, rng) if e != literal]
    return _balanced_q(
        "remove_affix",
        f"Remove the affix '{affix}' from '{word}'. Write what remains.",
        f"Alisin ang panlaping '{affix}' sa '{word}'. Isulat ang natira.",
        root,
        errors,
        rng,
        {"root": root, "word": word, "affix": affix.strip("-"), "kind": kind},
    )


def q_complex(root: str, rng: random.Random, task: str | None = None) -> Question:
    task = task or rng.choice(COMPLEX_TASKS)
    copy = rules.first_syllable_copy(root)
    if task == "progressive_um":
        answer = rules.progressive_um(root)
        en = f"Form the progressive aspect of the -um- verb from '{root}' (infix -um- and reduplicate)."
        tl = f"Bumuo ng aspektong progresibo ng pandiwang -um- mula sa '{root}' (gitlaping -um- at pag-uulit)."
        candidates = [
            rules.apply_infix("um", root),  # the perfective (shorter)
            rules.contemplated_um(root),
            rules.apply_infix("in", rules.reduplicate(root)),  # the -in- verb's progressive: a real word
            rules.reduplicate(rules.apply_infix("um", root)),  # reduplicated after the infix
            "um" + rules.reduplicate(root) if root[0] not in rules.VOWELS else "u" + rules.reduplicate(root),
            rules.apply_infix("um", copy + copy + root),  # reduplicated twice (longer)
            rules.apply_infix("um", root + root),  # the whole root repeated (longer)
            *paradigm(root),
        ]
    elif task == "contemplated_um":
        answer = rules.contemplated_um(root)
        en = f"Form the contemplated (future) aspect of the -um- verb from '{root}'."
        tl = f"Bumuo ng aspektong kontemplatibo ng pandiwang -um- mula sa '{root}'."
        candidates = [
            rules.progressive_um(root),  # longer
            rules.apply_infix("um", root),
            copy[0] + root,  # one letter copied, not the syllable (shorter)
            copy[-1] + root,
            copy + copy + root,  # copied twice (longer)
            root + root,  # the whole root repeated
            root + root[-2:],
            *paradigm(root),
        ]
    elif task == "mag_reduplicated":
        answer = rules.apply_prefix("mag", rules.reduplicate(root))
        en = f"Form the contemplated aspect of the mag- verb from '{root}' (mag- plus reduplication)."
        tl = f"Bumuo ng aspektong kontemplatibo ng pandiwang mag- mula sa '{root}' (mag- at pag-uulit)."
        candidates = [
            rules.apply_prefix("mag", root),  # no reduplication (shorter)
            rules.apply_prefix("ma", rules.reduplicate(root)),  # ma-: a real word (shorter)
            "mag" + root + root,  # the whole root repeated (longer)
            rules.apply_prefix("mag", copy + copy + root),  # copied twice (longer)
            rules.apply_prefix("mag", copy[0] + root),  # one letter copied, not the syllable
            rules.apply_prefix("mag", copy[-1] + root),
            *paradigm(root),
        ]
    else:
        word = rules.apply_infix("um", root)
        n = len(word)
        return _q(
            task,
            f"Insert the infix -um- into '{root}', then count the characters of the result. Answer with a number.",
            f"Isingit ang gitlaping -um- sa '{root}', saka bilangin ang karakter ng nabuo. Sumagot ng numero.",
            str(n),
            number_distractors(n, rng, low=1),
            {"root": root, "word": word},
        )
    return _balanced_q(task, en, tl, answer, candidates, rng, {"root": root})


def _suites(roots: list[str], words: list[str]) -> dict[tuple[str, str], Maker]:
    consonant_final = [r for r in roots if r[-1] not in rules.VOWELS]
    vocabulary = sorted(set(words) | set(roots))

    def pick(pool: list[str]) -> Callable[[random.Random], str]:
        return lambda rng: rng.choice(pool)

    root, cfinal, word = pick(roots), pick(consonant_final), pick(vocabulary)
    syllabic = pick([w for w in vocabulary if rules.VOWELS & set(w)])  # not "http": no syllable to count
    # Words to split or pick a syllable of.
    polysyllabic = pick([w for w in vocabulary if len(rules.syllables(w)) >= 2])

    # Each maker draws the kind of question, then its word or root; no redraws, so the suite's mix of kinds
    # and words is the one drawn (the distractors hide the gold over the suite, not by choosing words).
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

    def manipulation(tasks: tuple[str, ...]) -> Maker:
        def make(rng: random.Random) -> Question:
            task = rng.choice(tasks)
            return q_manipulate(word(rng), rng, task)

        return make

    def syllabification(rng: random.Random) -> Question:
        task = rng.choice(SYLLABLE_TASKS)
        words = syllabic if task == "syllable_count" else polysyllabic
        return q_syllables(words(rng), rng, task)

    def level_2(rng: random.Random) -> Question:
        return q_identify_affix(root(rng), rng) if rng.random() < 0.5 else q_root(root(rng), rng)

    def level_4(rng: random.Random) -> Question:
        kind = rng.choice(("prefix", "infix", "suffix"))
        if kind == "suffix":
            return q_apply_suffix(cfinal(rng), rng)
        if kind == "prefix":
            return q_apply_prefix(root(rng), rng)
        return q_apply_infix(root(rng), rng)

    def level_5(rng: random.Random) -> Question:
        task = rng.choice(COMPLEX_TASKS)
        return q_complex(root(rng), rng, task)

    suites: dict[tuple[str, str], Maker] = {
        ("pacute", "affixation"): affixation,
        ("pacute", "composition"): composition,
        ("pacute", "manipulation"): manipulation(MANIPULATIONS),
        ("pacute", "syllabification"): syllabification,
        ("hierarchical", "level_0"): lambda rng: q_letter_at(word(rng), rng),
        ("hierarchical", "level_1"): manipulation(("insert", "delete", "swap")),
        ("hierarchical", "level_2"): level_2,
        ("hierarchical", "level_3"): lambda rng: q_remove_affix(root(rng), rng),
        ("hierarchical", "level_4"): level_4,
        ("hierarchical", "level_5"): level_5,
    }
    return suites


@cache
def makers() -> Mapping[tuple[str, str], Maker]:
    """The makers of every suite, over the pack's roots and the word pool (built once: wordfreq is slow)."""
    return _suites(list(roots()), word_pool())
