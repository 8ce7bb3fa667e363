"""Morpheme boundaries of Tagalog words, from the pack's affix inventory (affixes.yaml).

Prefixes that start the word (longest first, leaving a root of at least three letters), suffixes that end
it, the infixes -um-/-in- after the first consonant, and CV reduplication after the prefix
("gaganda" -> ga|ganda, "aalis" -> a|alis).
"""

from __future__ import annotations

from functools import cache, lru_cache

from morphcpt.languages.affixes import EdgeAffixes
from morphcpt.languages.pack import Segmentation
from morphcpt.languages.tl.files import affixes

VOWELS = frozenset("aeiou")
MIN_ROOT = 3


@cache
def _edges() -> EdgeAffixes:
    return EdgeAffixes(affixes())


@lru_cache(maxsize=1 << 18)
def segment_word(word: str) -> Segmentation:
    """Morpheme boundaries of one word (any case). Pure and bounded: every loop is over the word's letters."""
    w = word.lower()
    n = len(w)
    boundaries: set[int] = set()
    spans: list[tuple[int, int]] = []
    prefix_end = 0
    prefixes, suffixes = _edges().find(w)
    for affix in sorted(prefixes, key=len, reverse=True):
        if n - len(affix) >= MIN_ROOT:
            prefix_end = len(affix)
            break
    if prefix_end:
        boundaries.add(prefix_end)
        spans.append((0, prefix_end))
    root = prefix_end
    infix_length = 0
    # Infix -um-/-in- after the root's first consonant (sumulat = s|um|ulat), only with no prefix before it.
    if not prefix_end and n >= MIN_ROOT + 3 and w[0] not in VOWELS and w[1:3] in affixes().infixes:
        boundaries.update((1, 3))
        spans.append((1, 3))
        root, infix_length = 3, 2
    for affix in sorted(suffixes, key=len, reverse=True):
        if n - len(affix) - prefix_end - infix_length >= MIN_ROOT:
            suffix_start = n - len(affix)
            boundaries.add(suffix_start)
            spans.append((suffix_start, n))
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
    return Segmentation(tuple(sorted(boundaries)), tuple(sorted(spans)))
