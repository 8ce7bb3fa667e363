"""Morpheme boundaries of Filipino words from the affix inventory in data/linguistic/affixes.yaml.

Affixes are found with an Aho-Corasick automaton (pyahocorasick): prefixes that start the word (longest
first, leaving a root of at least three letters), suffixes that end it, the infixes -um-/-in- after the
first consonant, and CV reduplication after the prefix ("gaganda" -> ga|ganda, "aalis" -> a|alis).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import yaml

from morphcpt.config import REPO_ROOT

AFFIXES_FILE = REPO_ROOT / "data" / "linguistic" / "affixes.yaml"
VOWELS = frozenset("aeiou")
MIN_ROOT = 3
WORD = re.compile(rb"[A-Za-z]+")


@dataclass(frozen=True)
class Segmentation:
    """Boundaries are offsets inside the word; affix spans are (start, end) of each affix found."""

    boundaries: tuple[int, ...]
    affixes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class AffixInventory:
    prefixes: tuple[str, ...]
    infixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    circumfixes: tuple[tuple[str, str], ...]


@cache
def load_affixes(path: Path = AFFIXES_FILE) -> AffixInventory:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return AffixInventory(
        prefixes=tuple(data["prefixes"]),
        infixes=tuple(data["infixes"]),
        suffixes=tuple(data["suffixes"]),
        circumfixes=tuple((a, b) for a, b in data["circumfixes"]),
    )


@cache
def _automaton():  # type: ignore[no-untyped-def]
    import ahocorasick

    inventory = load_affixes()
    automaton = ahocorasick.Automaton()
    for kind, items in (("prefix", inventory.prefixes), ("suffix", inventory.suffixes)):
        for affix in items:
            _, kinds = automaton.get(affix, (affix, ()))
            automaton.add_word(affix, (affix, (*kinds, kind)))
    automaton.make_automaton()
    return automaton


@lru_cache(maxsize=1 << 18)
def segment_word(word: str) -> Segmentation:
    """Morpheme boundaries of one lower-case word. Pure and bounded: every loop is over the word's letters."""
    w = word.lower()
    n = len(w)
    boundaries: set[int] = set()
    affixes: list[tuple[int, int]] = []
    prefix_end = 0
    prefixes: list[str] = []
    suffixes: list[str] = []
    for end_index, (affix, kinds) in _automaton().iter(w):
        if "prefix" in kinds and end_index == len(affix) - 1:
            prefixes.append(affix)
        if "suffix" in kinds and end_index == n - 1:
            suffixes.append(affix)
    for affix in sorted(prefixes, key=len, reverse=True):
        if n - len(affix) >= MIN_ROOT:
            prefix_end = len(affix)
            break
    if prefix_end:
        boundaries.add(prefix_end)
        affixes.append((0, prefix_end))
    root = prefix_end
    infix_length = 0
    # Infix -um-/-in- after the root's first consonant (sumulat = s|um|ulat), only with no prefix before it.
    if not prefix_end and n >= MIN_ROOT + 3 and w[0] not in VOWELS and w[1:3] in load_affixes().infixes:
        boundaries.update((1, 3))
        affixes.append((1, 3))
        root, infix_length = 3, 2
    for affix in sorted(suffixes, key=len, reverse=True):
        if n - len(affix) - prefix_end - infix_length >= MIN_ROOT:
            suffix_start = n - len(affix)
            boundaries.add(suffix_start)
            affixes.append((suffix_start, n))
            break
    # Reduplication of the root's first syllable: CV (gaganda) or V (aalis).
    if root + 2 <= n:
        syllable = w[root : root + 2]
        is_cv = syllable[0] not in VOWELS and syllable[1] in VOWELS
        if is_cv and w[root + 2 : root + 4] == syllable and n - root - 2 >= MIN_ROOT:
            boundaries.add(root + 2)
        elif w[root] in VOWELS and w[root] == w[root + 1] and n - root - 1 >= MIN_ROOT:
            boundaries.add(root + 1)
    boundaries.discard(0)
    boundaries.discard(n)
    return Segmentation(tuple(sorted(boundaries)), tuple(sorted(affixes)))


def document_morphology(data: bytes) -> tuple[list[int], list[tuple[int, int]]]:
    """Byte offsets of morpheme boundaries and affix spans in a UTF-8 document."""
    boundaries: list[int] = []
    affixes: list[tuple[int, int]] = []
    for match in WORD.finditer(data):
        start = match.start()
        seg = segment_word(match.group().decode("ascii"))
        boundaries.extend(start + b for b in seg.boundaries)
        affixes.extend((start + a, start + b) for a, b in seg.affixes)
    return boundaries, affixes
