"""What a language pack is: everything the generic layers ask of one language, in one object.

The data path (Patok's morpheme boundaries, the gold words of data-stats, the offline demo corpus) and the
benchmarks (question makers, syllabification, answer cues) are written once; whatever is true of one
language only lives in its pack, so a new language is a new pack, not an edit of those layers. The
dataclass holds values and callables, not files, so a pack can be built in a test as easily as shipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from morphcpt.errors import ConfigError
from morphcpt.languages.affixes import AffixInventory

if TYPE_CHECKING:
    import numpy as np

    from morphcpt.evaluation.generate import Maker

CODE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Segmentation:
    """Morpheme boundaries of one word as offsets inside it; affix spans are (start, end) of each affix."""

    boundaries: tuple[int, ...]
    affixes: tuple[tuple[int, int], ...]


Segmenter = Callable[[str], Segmentation]
"""Morpheme boundaries of one word (ASCII letters, any case). Called once per distinct word of the corpus, so
it must be pure: same word, same answer."""


@dataclass(frozen=True)
class BenchmarkSource:
    """The pack's question makers, one per (benchmark, suite) it supports, built on first use (word lists
    may need wordfreq); `noise_letters` are the letters a one-letter edit draws from to fill distractors."""

    makers: Callable[[], Mapping[tuple[str, str], Maker]]
    noise_letters: str


@dataclass(frozen=True)
class CorpusSource:
    """Material for the offline demo corpus: real sentences (may be empty when not installed), and a
    frequency word list (`words(count)` -> words, probabilities summing to 1) that extra sentences are drawn from."""

    sentences: Callable[[], list[str]]
    words: Callable[[int], tuple[list[str], np.ndarray]]
    # Where each part comes from, printed by demo-data so a reader knows what the corpus is made of.
    sentences_source: str = "real sentences"
    words_source: str = "a frequency word list"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per language
class LanguagePack:
    """One language. `prompt_languages` are the languages benchmark questions are asked in (always "en",
    which the item format requires, then the pack's own); each has an `answer_cues` entry ("Answer:")."""

    code: str
    name: str
    affixes: AffixInventory
    segment: Segmenter
    syllables: Callable[[str], list[str]]
    prompt_languages: tuple[str, ...]
    answer_cues: Mapping[str, str]
    benchmarks: BenchmarkSource | None = None
    annotated_words: Traversable | Path | None = None
    corpus: CorpusSource | None = None

    def __post_init__(self) -> None:
        if not CODE.match(self.code):
            raise ConfigError(f"language pack code {self.code!r}: use lower-case letters, digits and _")
        if "en" not in self.prompt_languages:
            raise ConfigError(f"language pack {self.code}: prompt_languages must include 'en' (the item format's)")
        missing = [lang for lang in self.prompt_languages if not self.answer_cues.get(lang)]
        if missing:
            raise ConfigError(f"language pack {self.code}: no answer cue for prompt language(s) {', '.join(missing)}")

    def check_prompt_languages(self, langs: Iterable[str]) -> None:
        unknown = [lang for lang in langs if lang not in self.prompt_languages]
        if unknown:
            raise ConfigError(
                f"prompt language(s) {', '.join(unknown)} not offered by language pack {self.code} "
                f"(it has: {', '.join(self.prompt_languages)})"
            )

    def answer_cue(self, lang: str) -> str:
        """What follows a question to ask for the answer, in the question's language."""
        self.check_prompt_languages([lang])
        return self.answer_cues[lang]
