"""Morpheme boundaries and affix spans of running text, from a language pack's word segmenter.

The pack's segmenter sees one word at a time; this module finds a text's words (maximal ASCII letter runs),
segments each distinct word once, and turns the per-word offsets into byte offsets of the whole text with
vectorized gathers: the part of Patok's analysis that is the same in every language.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from morphcpt.data.ragged import GrowingRagged
from morphcpt.languages.pack import Segmenter


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
    """Segmentations (by `segment`, a pack's segmenter) of every distinct word seen so far, as ragged tables,
    so that a text's morphology costs one dict lookup per word and vectorized gathers for the rest."""

    def __init__(self, segment: Segmenter) -> None:
        self._segment = segment
        self._ids = _WordIds()
        self._boundaries = GrowingRagged(columns=1)
        self._affixes = GrowingRagged(columns=2)

    def _segment_new_words(self) -> None:
        segments = [self._segment(w.decode("ascii")) for w in self._ids.new]
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
