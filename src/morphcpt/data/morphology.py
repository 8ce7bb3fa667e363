"""Morpheme boundaries of Filipino words from the affix inventory in data/linguistic/affixes.yaml.

Affixes are found with an Aho-Corasick automaton (pyahocorasick): prefixes that start the word (longest
first, leaving a root of at least three letters), suffixes that end it, the infixes -um-/-in- after the
first consonant, and CV reduplication after the prefix ("gaganda" -> ga|ganda, "aalis" -> a|alis).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import chain
from pathlib import Path

import numpy as np
import yaml

from morphcpt.config import REPO_ROOT
from morphcpt.data.ragged import GrowingRagged

AFFIXES_FILE = REPO_ROOT / "data" / "linguistic" / "affixes.yaml"
VOWELS = frozenset("aeiou")
MIN_ROOT = 3


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
# Every non-letter byte becomes a space, so bytes.split() yields the maximal ASCII letter runs in order
# (twice as fast as a regex findall).
_LETTERS_ONLY = bytes(b if _LETTER[b] else 0x20 for b in range(256))


class _WordIds(dict[bytes, int]):
    """Word -> row; a word seen for the first time gets the next row and waits in `new` to be segmented."""

    def __init__(self) -> None:
        super().__init__()
        self.new: list[bytes] = []

    def __missing__(self, word: bytes) -> int:
        self[word] = row = len(self)
        self.new.append(word)
        return row


class MorphologyIndex:
    """Segmentations of every distinct word seen so far, as ragged tables, so that a text's morphology costs
    one dict lookup per word and vectorized gathers for the rest."""

    def __init__(self) -> None:
        self._ids = _WordIds()
        self._boundaries = GrowingRagged(columns=1)
        self._affixes = GrowingRagged(columns=2)

    def _segment_new_words(self) -> None:
        segments = [segment_word(w.decode("ascii")) for w in self._ids.new]
        self._ids.new.clear()
        self._boundaries.append(
            np.fromiter(map(len, (s.boundaries for s in segments)), dtype=np.int64, count=len(segments)),
            np.fromiter(chain.from_iterable(s.boundaries for s in segments), dtype=np.int64).reshape(-1, 1),
        )
        self._affixes.append(
            np.fromiter(map(len, (s.affixes for s in segments)), dtype=np.int64, count=len(segments)),
            np.fromiter(chain.from_iterable(chain.from_iterable(s.affixes for s in segments)), dtype=np.int64).reshape(
                -1, 2
            ),
        )

    def analyse(self, data: bytes) -> TextMorphology:
        letters = _LETTER[np.frombuffer(data, dtype=np.uint8)]
        edges = np.diff(letters.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
        starts = np.flatnonzero(edges == 1)
        words = data.translate(_LETTERS_ONLY).split()
        # One C-level dict lookup per word occurrence; new words are numbered on the way and segmented after.
        occurrence = np.fromiter(map(self._ids.__getitem__, words), dtype=np.int64, count=len(words))
        if self._ids.new:
            self._segment_new_words()
        affixes = self._affixes.gather(occurrence, starts)
        return TextMorphology(self._boundaries.gather(occurrence, starts)[:, 0], affixes[:, 0], affixes[:, 1])
