"""Material for the offline Tagalog demo corpus, from packaged text (no hub access):

- Firefox's Tagalog language pack (Debian `firefox-esr-l10n-tl` 153.8.0esr, MPL-2.0): UI strings, real
  Tagalog sentences, shipped in firefox_strings.txt (scripts/extract_firefox_strings.py wrote it) so the demo
  corpus is the same on every machine, whatever Firefox is or is not installed.
- wordfreq's `fil` word list (PyPI `wordfreq`, CC-BY-SA 4.0 data): real words with their frequencies, from
  which the generic builder (morphcpt.data.offline_corpus) draws extra sentences with a seeded generator.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from morphcpt.languages.tl.files import HERE

if TYPE_CHECKING:
    import numpy as np

FIREFOX_STRINGS = HERE / "firefox_strings.txt"
SENTENCES_SOURCE = "Firefox's Tagalog UI strings (Debian firefox-esr-l10n-tl 153.8.0esr, MPL-2.0, shipped)"
WORDS_SOURCE = "wordfreq's 'fil' list (CC-BY-SA 4.0)"
WORDFREQ_LANGUAGE = "fil"
_PLACEABLE = re.compile(r"\{[^}]*\}|<[^>]*>|&[a-z]+;")
_FTL_VALUE = re.compile(r"^[A-Za-z0-9_.-]+\s*=\s*(.+)$|^\s+\.[a-z-]+\s*=\s*(.+)$")


def firefox_strings() -> list[str]:
    """The shipped Firefox sentences, in file order."""
    lines = FIREFOX_STRINGS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def strings_from_langpack(path: Path) -> list[str]:
    """Sentences of three or more words from a Firefox language pack's .ftl files (placeables removed)."""
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


def frequent_words(count: int = 5000) -> tuple[list[str], np.ndarray]:
    """The `count` most frequent alphabetic ASCII words and their probabilities (summing to 1)."""
    import numpy as np
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list(WORDFREQ_LANGUAGE, count * 2) if w.isalpha() and w.isascii()][:count]
    weights = np.asarray([word_frequency(w, WORDFREQ_LANGUAGE) for w in words], dtype=np.float64)
    return words, weights / weights.sum()
