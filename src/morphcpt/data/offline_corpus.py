"""A small real Filipino corpus built offline from packaged text, for tests, benchmarks and the demo.

Sources (both installed from package registries, no hub access):
- Firefox's Tagalog language pack (Debian `firefox-esr-l10n-tl`, MPL-2.0): UI strings, real Tagalog sentences.
- wordfreq's `fil` word list (PyPI `wordfreq`, CC-BY-SA 4.0 data): real words with their frequencies, from
  which extra sentences are drawn by frequency with a seeded generator.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from morphcpt.data.markers import atomic_output

FIREFOX_LANGPACK = Path("/usr/lib/firefox-esr/browser/extensions/langpack-tl@firefox-esr.mozilla.org.xpi")
_PLACEABLE = re.compile(r"\{[^}]*\}|<[^>]*>|&[a-z]+;")
_FTL_VALUE = re.compile(r"^[A-Za-z0-9_.-]+\s*=\s*(.+)$|^\s+\.[a-z-]+\s*=\s*(.+)$")


def firefox_tagalog_strings(path: Path = FIREFOX_LANGPACK) -> list[str]:
    """Sentences of three or more words from the language pack's .ftl files (placeables removed)."""
    if not path.exists():
        return []
    strings: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            if not name.endswith(".ftl"):
                continue
            for line in archive.read(name).decode("utf-8", "replace").splitlines():
                match = _FTL_VALUE.match(line)
                if not match:
                    continue
                value = " ".join(_PLACEABLE.sub(" ", match.group(1) or match.group(2)).split())
                if len(value.split()) >= 3 and sum(ch.isalpha() for ch in value) > len(value) // 2:
                    strings.append(value)
    return list(dict.fromkeys(strings))


def filipino_words(count: int = 5000) -> tuple[list[str], np.ndarray]:
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list("fil", count * 2) if w.isalpha() and w.isascii()][:count]
    weights = np.asarray([word_frequency(w, "fil") for w in words], dtype=np.float64)
    return words, weights / weights.sum()


def generated_sentences(count: int, seed: int, words: list[str], weights: np.ndarray) -> list[str]:
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(count):
        picked = rng.choice(len(words), size=int(rng.integers(5, 16)), p=weights)
        text = " ".join(words[i] for i in picked)
        sentences.append(text[0].upper() + text[1:] + ".")
    return sentences


def build_corpus(out: Path, documents: int, seed: int = 1234, sentences_per_doc: tuple[int, int] = (2, 8)) -> int:
    """Write `documents` JSONL records {"text": ...}; returns the bytes written. Deterministic by seed."""
    rng = np.random.default_rng(seed)
    real = firefox_tagalog_strings()
    words, weights = filipino_words()
    pool = real + generated_sentences(max(2000, documents), seed, words, weights)
    with atomic_output(out) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for _ in range(documents):
            picks = rng.integers(0, len(pool), size=int(rng.integers(*sentences_per_doc)))
            handle.write(json.dumps({"text": " ".join(pool[i] for i in picks)}, ensure_ascii=False) + "\n")
    return out.stat().st_size


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
