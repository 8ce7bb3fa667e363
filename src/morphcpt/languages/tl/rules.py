"""Tagalog morphophonemic and orthographic rules the benchmarks compute their answers with.

Sources: Schachter & Otanes, "Tagalog Reference Grammar" (1972) for affix placement, infixation after the
first consonant (sumulat), vowel-initial roots taking -um-/-in- as prefixes (umalis), CV reduplication for
the contemplated aspect (kakain) and o -> u before a suffix (inom -> inumin); Komisyon sa Wikang Filipino,
"Ortograpiyang Pambansa" (2014) for the hyphen after a consonant-final prefix before a vowel (mag-aral)
and for syllabification; nasal assimilation of pang- (pambansa, pantulog, pangkain) from both.
"""

from __future__ import annotations

import itertools

VOWELS = frozenset("aeiou")
# Consonant-final prefixes are hyphenated before a vowel-initial root (KWF 2014: mag-aral, pag-asa).
CLUSTERS = frozenset({"bl", "br", "dr", "gr", "kl", "kr", "pl", "pr", "tr", "fl", "fr", "gl"})


def letters(word: str) -> list[str]:
    """Tagalog letters: `ng` is one letter (ngiti = ng-i-t-i), everything else one character."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if word[i : i + 2] == "ng":
            out.append("ng")
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def first_consonant(root: str) -> str:
    return "ng" if root.startswith("ng") else root[0]


def apply_prefix(prefix: str, root: str) -> str:
    if prefix == "pang":
        if root[0] in "bp":
            prefix = "pam"
        elif root[0] in "dlrst":
            prefix = "pan"
    if prefix[-1] not in VOWELS and root[0] in VOWELS:
        return f"{prefix}-{root}"
    return prefix + root


def apply_infix(infix: str, root: str) -> str:
    """-um-/-in- after the first consonant; a vowel-initial root takes it as a prefix."""
    if root[0] in VOWELS:
        return infix + root
    onset = first_consonant(root)
    return onset + infix + root[len(onset) :]


def suffix_stem(root: str) -> str:
    """o -> u in the root's last syllable before a suffix (inom -> inum-in, tulong -> tulung-an)."""
    last = max(root.rfind(v) for v in VOWELS)
    return root[:last] + "u" + root[last + 1 :] if root[last] == "o" else root


def apply_suffix(suffix: str, root: str) -> str:
    """-in/-an on a consonant-final root; vowel-final roots are not suffixed by the benchmarks (see roots.tsv)."""
    if root[-1] in VOWELS:
        raise ValueError(f"{root}: vowel-final roots are not suffixed here (-in/-hin depends on a glottal stop)")
    return suffix_stem(root) + suffix


def apply_circumfix(prefix: str, suffix: str, root: str) -> str:
    return apply_prefix(prefix, apply_suffix(suffix, root))


def first_syllable_copy(root: str) -> str:
    """The CV (or V) a reduplication copies: kain -> ka, alis -> a, ngiti -> ngi, trabaho -> ta."""
    if root[0] in VOWELS:
        return root[0]
    onset = first_consonant(root)
    vowel = next(ch for ch in root[len(onset) :] if ch in VOWELS)
    return onset + vowel


def reduplicate(root: str) -> str:
    return first_syllable_copy(root) + root


def contemplated_um(root: str) -> str:
    """Future of an -um- verb: CV reduplication without the infix (kain -> kakain)."""
    return reduplicate(root)


def progressive_um(root: str) -> str:
    """Progressive of an -um- verb: the infix goes into the reduplicated form (kain -> kumakain)."""
    return apply_infix("um", reduplicate(root))


def syllables(word: str) -> list[str]:
    """KWF syllabification: one vowel per syllable; one consonant between vowels starts the next syllable,
    two are split, of three or more the last one (or a cluster such as tr) starts the next syllable."""
    units = letters(word.lower())
    nuclei = [i for i, u in enumerate(units) if u in VOWELS]
    if not nuclei:
        return [word]
    cuts = []
    for left, right in itertools.pairwise(nuclei):
        between = right - left - 1
        if between <= 1:
            cuts.append(left + 1)
        elif between == 2:
            cuts.append(left + 2)
        else:
            tail = "".join(units[right - 2 : right])
            cuts.append(right - 2 if tail in CLUSTERS else right - 1)
    bounds = [0, *cuts, len(units)]
    return ["".join(units[a:b]) for a, b in itertools.pairwise(bounds)]
