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

import numpy as np
import yaml

from morphcpt.config import REPO_ROOT
from morphcpt.data.ragged import gather_rows, row_lengths

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


@dataclass(frozen=True)
class TextMorphology:
    """Sorted byte offsets of morpheme boundaries, and (start, end) byte spans of affixes, in one text."""

    boundaries: np.ndarray
    affix_starts: np.ndarray
    affix_ends: np.ndarray


_LETTER = np.zeros(256, dtype=bool)
_LETTER[[*range(ord("A"), ord("Z") + 1), *range(ord("a"), ord("z") + 1)]] = True


def _gather(word_index: np.ndarray, offsets: np.ndarray, values: np.ndarray, base: np.ndarray) -> np.ndarray:
    """For each word occurrence, its word's values shifted by the occurrence's start offset."""
    return np.repeat(base, row_lengths(word_index, offsets)) + gather_rows(word_index, offsets, values)


class MorphologyIndex:
    """Segmentations of every distinct word seen so far, as CSR arrays, so that a text's morphology costs
    one dict lookup per distinct word and vectorized gathers for the rest."""

    def __init__(self) -> None:
        self._ids: dict[bytes, int] = {}
        self._b_offsets = np.zeros(1, dtype=np.int64)
        self._b_values = np.zeros(0, dtype=np.int64)
        self._a_offsets = np.zeros(1, dtype=np.int64)
        self._a_values = np.zeros((0, 2), dtype=np.int64)

    def _add(self, words: list[bytes]) -> None:
        segments = [segment_word(w.decode("ascii")) for w in words]
        for w in words:
            self._ids[w] = len(self._ids)
        b_counts = np.fromiter((len(s.boundaries) for s in segments), dtype=np.int64, count=len(segments))
        a_counts = np.fromiter((len(s.affixes) for s in segments), dtype=np.int64, count=len(segments))
        self._b_offsets = np.concatenate((self._b_offsets, self._b_offsets[-1] + np.cumsum(b_counts)))
        self._a_offsets = np.concatenate((self._a_offsets, self._a_offsets[-1] + np.cumsum(a_counts)))
        b_new = np.fromiter((b for s in segments for b in s.boundaries), dtype=np.int64, count=int(b_counts.sum()))
        a_new = np.fromiter(
            (x for s in segments for span in s.affixes for x in span), dtype=np.int64, count=2 * int(a_counts.sum())
        )
        self._b_values = np.concatenate((self._b_values, b_new))
        self._a_values = np.concatenate((self._a_values, a_new.reshape(-1, 2)))

    def analyse(self, data: bytes) -> TextMorphology:
        letters = _LETTER[np.frombuffer(data, dtype=np.uint8)]
        edges = np.diff(letters.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
        starts = np.flatnonzero(edges == 1)
        words = np.asarray(WORD.findall(data), dtype=bytes)  # the same maximal letter runs, in the same order
        if not len(words):
            empty = np.zeros(0, dtype=np.int64)
            return TextMorphology(empty, empty, empty)
        distinct, occurrence = np.unique(words, return_inverse=True)
        distinct_words = distinct.tolist()
        ids = self._ids
        new = [w for w in distinct_words if w not in ids]
        if new:
            self._add(new)
        word_ids = np.fromiter((ids[w] for w in distinct_words), dtype=np.int64, count=len(distinct_words))
        occurrence = word_ids[occurrence]
        return TextMorphology(
            _gather(occurrence, self._b_offsets, self._b_values, starts),
            _gather(occurrence, self._a_offsets, self._a_values[:, 0], starts),
            _gather(occurrence, self._a_offsets, self._a_values[:, 1], starts),
        )
