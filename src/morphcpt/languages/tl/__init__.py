"""Tagalog (Filipino), the built-in pack: affixes, segmenter, KWF syllabification and morphophonemic rules,
benchmark questions in English and Tagalog, the gold words of data-stats and the offline demo corpus.

Only light modules are imported here; the question makers (wordfreq) load when benchmarks are generated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from morphcpt.languages.pack import BenchmarkSource, CorpusSource, LanguagePack
from morphcpt.languages.tl import corpus, files, rules
from morphcpt.languages.tl.segmenter import segment_word

if TYPE_CHECKING:
    from morphcpt.evaluation.generate import Maker


def _makers() -> Mapping[tuple[str, str], Maker]:
    from morphcpt.languages.tl.benchmarks import makers

    return makers()


PACK = LanguagePack(
    code="tl",
    name="Tagalog",
    affixes=files.affixes(),
    segment=segment_word,
    syllables=rules.syllables,
    prompt_languages=("en", "tl"),
    answer_cues={"en": "Answer:", "tl": "Sagot:"},
    benchmarks=BenchmarkSource(makers=_makers, noise_letters="aeioubdgklmnprst"),
    annotated_words=files.ANNOTATED_WORDS_FILE,
    corpus=CorpusSource(
        sentences=corpus.firefox_strings,
        words=corpus.frequent_words,
        sentences_source=corpus.SENTENCES_SOURCE,
        words_source=corpus.WORDS_SOURCE,
    ),
)
