"""Toyish rules: where affixes go, the sound changes at their edges, syllables, and a segmenter that undoes
the affixation. Made up for the tests, and chosen so no Tagalog rule gives the same forms."""

from __future__ import annotations

import itertools
from functools import cache, lru_cache
from pathlib import Path

from morphcpt.languages import AffixInventory, EdgeAffixes, Segmentation, load_affixes

VOWELS = frozenset("aeiou")
MIN_ROOT = 3
HERE = Path(__file__).parent
ROOTS = ("tobun", "dures", "gorat", "rotun", "bures", "fasot", "tirus", "rudo", "feta", "gosu", "atob", "urek")


@cache
def affixes() -> AffixInventory:
    return load_affixes(HERE / "affixes.yaml")


def apply_prefix(prefix: str, root: str) -> str:
    """A vowel-final prefix takes a linking h before a vowel-initial root (zo + atob -> zohatob)."""
    return f"{prefix}h{root}" if prefix[-1] in VOWELS and root[0] in VOWELS else prefix + root


def apply_infix(root: str) -> str:
    """-el- goes after the first consonant (tobun -> telobun); vowel-initial roots take no infix."""
    if root[0] in VOWELS:
        raise ValueError(f"{root}: vowel-initial roots take no infix")
    return root[0] + "el" + root[1:]


def apply_suffix(suffix: str, root: str) -> str:
    """A root-final vowel gives way to the suffix (rudo + ix -> rudix)."""
    return (root[:-1] if root[-1] in VOWELS else root) + suffix


def syllables(word: str) -> list[str]:
    """One vowel per syllable; of the consonants between two vowels the last one starts the next syllable
    (tobunix = to-bu-nix, vekgorat = vek-go-rat)."""
    w = word.lower()
    nuclei = [i for i, ch in enumerate(w) if ch in VOWELS]
    if not nuclei:
        return [word]
    cuts = [right if right - left == 1 else right - 1 for left, right in itertools.pairwise(nuclei)]
    return [w[a:b] for a, b in itertools.pairwise([0, *cuts, len(w)])]


@cache
def _edges() -> EdgeAffixes:
    return EdgeAffixes(affixes())


@lru_cache(maxsize=4096)
def segment(word: str) -> Segmentation:
    """Undo apply_prefix / apply_infix / apply_suffix: the longest prefix (and its linking h), -el- after the
    first consonant, the longest suffix; every piece leaves a root of at least three letters."""
    w = word.lower()
    n = len(w)
    prefixes, suffixes = _edges().find(w)
    boundaries: set[int] = set()
    spans: list[tuple[int, int]] = []
    start = 0
    for prefix in sorted(prefixes, key=len, reverse=True):
        if n - len(prefix) >= MIN_ROOT:
            start = len(prefix)
            boundaries.add(start)
            spans.append((0, start))
            if prefix[-1] in VOWELS and w[start : start + 1] == "h" and w[start + 1 : start + 2] in VOWELS:
                start += 1
                boundaries.add(start)
            break
    if not start and n >= MIN_ROOT + 3 and w[0] not in VOWELS and w[1:3] in affixes().infixes:
        boundaries.update((1, 3))
        spans.append((1, 3))
        start = 2  # the infix's letters are not the root's
    for suffix in sorted(suffixes, key=len, reverse=True):
        if n - len(suffix) - start >= MIN_ROOT:
            boundaries.add(n - len(suffix))
            spans.append((n - len(suffix), n))
            break
    boundaries.discard(0)
    boundaries.discard(n)
    return Segmentation(tuple(sorted(boundaries)), tuple(sorted(spans)))


def derived_words() -> list[str]:
    """Every root with each prefix, the infix and each suffix, and bare."""
    words: list[str] = []
    for root in ROOTS:
        words.append(root)
        words += [apply_prefix(p, root) for p in affixes().prefixes]
        words += [apply_suffix(s, root) for s in affixes().suffixes]
        if root[0] not in VOWELS:
            words.append(apply_infix(root))
    return list(dict.fromkeys(words))
