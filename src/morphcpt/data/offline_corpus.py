"""A small real corpus built offline from a language pack's packaged text, for tests, benchmarks and the demo.

The pack's CorpusSource gives real sentences (installed from package registries, no hub access) and a word
list with frequencies; extra sentences are drawn from the list by frequency with a seeded generator, and
documents are drawn from the pool of both, so the corpus is deterministic by seed for a given pack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from morphcpt.data.markers import atomic_output
from morphcpt.errors import MorphcptError
from morphcpt.languages import LanguagePack, resolve_language

WORD_LIST_SIZE = 5000


def generated_sentences(count: int, seed: int, words: list[str], weights: np.ndarray) -> list[str]:
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(count):
        picked = rng.choice(len(words), size=int(rng.integers(5, 16)), p=weights)
        text = " ".join(words[i] for i in picked)
        sentences.append(text[0].upper() + text[1:] + ".")
    return sentences


@dataclass(frozen=True)
class CorpusReport:
    """What a built corpus is made of: printed by demo-data, so a reader knows where its text comes from."""

    path: Path
    documents: int
    bytes: int
    real_sentences: int
    real_source: str
    generated_sentences: int
    words: int
    words_source: str

    def lines(self) -> list[str]:
        return [
            f"corpus: {self.path} ({self.documents} documents, {self.bytes / 1e6:.1f} MB), drawn from",
            f"  {self.real_sentences} real sentences: {self.real_source}",
            f"  {self.generated_sentences} sentences generated from the {self.words} most frequent words of "
            f"{self.words_source}",
        ]


def build_corpus(
    out: Path,
    documents: int,
    seed: int = 1234,
    sentences_per_doc: tuple[int, int] = (2, 8),
    *,
    language: LanguagePack | str,
) -> CorpusReport:
    """Write `documents` JSONL records {"text": ...} in `language`. Deterministic by seed."""
    pack = resolve_language(language)
    if pack.corpus is None:
        raise MorphcptError(f"language pack {pack.code} has no offline corpus; give data.source another source")
    rng = np.random.default_rng(seed)
    real = pack.corpus.sentences()
    words, weights = pack.corpus.words(WORD_LIST_SIZE)
    generated = generated_sentences(max(2000, documents), seed, words, weights)
    pool = real + generated
    with atomic_output(out) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for _ in range(documents):
            picks = rng.integers(0, len(pool), size=int(rng.integers(*sentences_per_doc)))
            handle.write(json.dumps({"text": " ".join(pool[i] for i in picks)}, ensure_ascii=False) + "\n")
    source = pack.corpus
    return CorpusReport(
        out,
        documents,
        out.stat().st_size,
        len(real),
        source.sentences_source,
        len(generated),
        len(words),
        source.words_source,
    )


def train_bytelevel_tokenizer(corpus: Path, out: Path, vocab_size: int = 4000) -> Path:
    """A byte-level BPE tokenizer trained on `corpus` (seconds), saved as tokenizer.json with <eos>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<eos>", "<bos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def texts():  # type: ignore[no-untyped-def]
        with corpus.open(encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)["text"]

    tokenizer.train_from_iterator(texts(), trainer=trainer)
    with atomic_output(out) as tmp:
        tokenizer.save(str(tmp))
    return out
