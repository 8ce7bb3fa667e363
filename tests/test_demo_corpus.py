"""The demo corpus is the same on every fresh machine, and demo-data says what it is made of."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import morphcpt
from morphcpt.languages.tl.corpus import firefox_strings

# sha256 of `morphcpt demo-data --experiment demo --documents 300` with the pins in constraints.txt (wordfreq
# 3.1.1, numpy 2.4.6) and the shipped Firefox sentences. It changes only when the corpus recipe or those
# inputs change, and then the demo's numbers change too: re-run `make demo-readme` with the new corpus.
DEMO_CORPUS_300 = "5479a308cbd4a9879c3495a505b45090d21befa319668151ee95c158de2d48cc"


def _demo_data(cwd: Path) -> tuple[str, bytes]:
    result = morphcpt("demo-data", "--experiment", "demo", "--documents", "300", "--vocab-size", "500", cwd=cwd)
    return result.stdout, (cwd / "data" / "corpora" / "demo_source.jsonl").read_bytes()


def test_demo_corpus_is_deterministic_and_names_its_sources(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out_a, corpus_a = _demo_data(tmp_path / "a")
    _, corpus_b = _demo_data(tmp_path / "b")
    assert corpus_a == corpus_b
    assert hashlib.sha256(corpus_a).hexdigest() == DEMO_CORPUS_300
    shipped = firefox_strings()
    assert f"{len(shipped)} real sentences: Firefox's Tagalog UI strings" in out_a
    assert "wordfreq's 'fil' list" in out_a and "300 documents" in out_a
    texts = [json.loads(line)["text"] for line in corpus_a.decode().splitlines()]
    assert len(texts) == 300
    # Real sentences are in it (not only sampled word lists), from the shipped file, not an installed Firefox.
    assert sum(any(sentence in text for sentence in shipped[:400]) for text in texts) > 10


def test_demo_data_keeps_an_existing_corpus_and_says_so(tmp_path: Path) -> None:
    _, first = _demo_data(tmp_path)
    again, second = _demo_data(tmp_path)
    assert first == second
    assert "exists, kept" in again
