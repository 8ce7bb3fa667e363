"""Toyish ("xx"): a made-up language pack for the tests, built like a third-party pack would be, to show
that the generic layers take everything language-specific from the pack.

`PACK` is registered by the tests with morphcpt.languages.register_language; `xy_pack` is the same pack
under the code "xy", for the entry-point test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from morphcpt.languages import BenchmarkSource, CorpusSource, LanguagePack
from toy_language import rules

HERE = Path(__file__).parent


def _makers():  # type: ignore[no-untyped-def]
    from toy_language.benchmarks import makers

    return makers()


def _words(count: int) -> tuple[list[str], np.ndarray]:
    words = rules.derived_words()[:count]
    return words, np.full(len(words), 1 / len(words))


def make_pack(code: str = "xx") -> LanguagePack:
    return LanguagePack(
        code=code,
        name="Toyish",
        affixes=rules.affixes(),
        segment=rules.segment,
        syllables=rules.syllables,
        prompt_languages=("en", "xx"),
        answer_cues={"en": "Answer:", "xx": "Respondo:"},
        benchmarks=BenchmarkSource(makers=_makers, noise_letters="bdgkortuz"),
        annotated_words=HERE / "annotated_words.tsv",
        corpus=CorpusSource(sentences=lambda: ["Zotobun vekgorat telobun.", "Rudix goratoz quhurek."], words=_words),
    )


PACK = make_pack()


def xy_pack() -> LanguagePack:
    return make_pack("xy")
