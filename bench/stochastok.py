"""StochasTok's definitions of expand_prop side by side: tokens/s and the rate each one realises, on the same ids.

    .venv/bin/python bench/stochastok.py [--mb 10] [--vocab-size 8000] [--expand-prop 0.1] [--workdir DIR]

For each `expansion` (attempts_per_document, the authors' definition and the default; per_token; and
splits_per_document, a target realised rate) it edits the corpus in the preprocess stage's batches and prints
tokens/s, attempts and splits per input token; then the authors' algorithm as a plain sequential loop (the
reference the vectorised one is tested against), the first-order expectation attempts x splittable share,
and Patok's last step under each definition. The corpus and tokenizer are bench/preprocess.py's (reused if
present in the work directory, /tmp/morphcpt-bench by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from morphcpt.config import PatokVariant  # noqa: E402
from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer  # noqa: E402
from morphcpt.data.processors import EditCounts, Patok, Processor, SplitTable, Stochastok, build_split_table  # noqa: E402
from morphcpt.data.tokenizer import load_tokenizer  # noqa: E402
from morphcpt.languages import get_language  # noqa: E402

DEFINITIONS = ("attempts_per_document", "per_token", "splits_per_document")
BATCH = 4096  # documents per batch, the preprocess stage's default data.batch_size


def authors_loop(documents: list[np.ndarray], expand_prop: float, table: SplitTable, seed: int) -> tuple[int, int]:
    """The authors' algorithm, one document at a time: (attempts, splits)."""
    rng = np.random.default_rng(seed)
    attempts = splits = 0
    for document in documents:
        ids = document.tolist()
        for _ in range(int(len(ids) * expand_prop)):
            attempts += 1
            index = int(rng.integers(len(ids)))
            token = ids[index]
            options = int(table.offsets[token + 1] - table.offsets[token])
            if options:
                row = int(table.offsets[token]) + int(rng.integers(options))
                ids[index : index + 1] = [int(table.left[row]), int(table.right[row])]
                splits += 1
    return attempts, splits


def run(processor: Processor, documents: list[np.ndarray], seed: int) -> tuple[EditCounts, float]:
    rng = np.random.default_rng(seed)
    total = EditCounts()
    start = time.perf_counter()
    for first in range(0, len(documents), BATCH):
        _, counts = processor.process_batch(documents[first : first + BATCH], rng)
        total.add(counts)
    return total, time.perf_counter() - start


def line(name: str, tokens: int, attempts: int, splits: int, seconds: float | None) -> str:
    speed = f"{tokens / seconds / 1e6:8.2f} M tokens/s" if seconds else " " * 19
    return f"{name:34s} {speed}   attempts {attempts / tokens:6.2%}   realised {splits / tokens:6.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=10.0, help="corpus size in MB, if it has to be built")
    parser.add_argument("--vocab-size", type=int, default=8000, help="byte-level BPE trained on the corpus")
    parser.add_argument("--expand-prop", type=float, default=0.1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/morphcpt-bench"))
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    work = options.workdir
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.jsonl"
    if not corpus.exists() or corpus.stat().st_size < options.mb * 1024 * 1024 * 0.9:
        build_corpus(corpus, documents=int(options.mb * 1024 * 1024 / 243), seed=11, language="tl")
    tokenizer_path = work / f"tokenizer_{options.vocab_size}.json"
    if not tokenizer_path.exists():
        train_bytelevel_tokenizer(corpus, tokenizer_path, vocab_size=options.vocab_size)
    tokenizer = load_tokenizer(str(tokenizer_path))
    table = build_split_table(tokenizer)
    # At most --mb of the corpus (bench/preprocess.py's may be larger), so the sequential loop stays short.
    texts: list[str] = []
    size = 0
    with corpus.open(encoding="utf-8") as handle:
        for record in handle:
            texts.append(json.loads(record)["text"])
            size += len(record.encode())
            if size >= options.mb * 1024 * 1024:
                break
    documents = [np.asarray(ids, dtype=np.int64) for ids in tokenizer.encode_batch(texts)]
    tokens = sum(len(d) for d in documents)
    p = options.expand_prop
    splittable = sum(int((table.offsets[d + 1] > table.offsets[d]).sum()) for d in documents) / tokens
    print(f"corpus: {size / 1e6:.1f} MB, {len(documents)} documents, {tokens} tokens; vocabulary {options.vocab_size}")
    print(f"expand_prop {p}; {splittable:.1%} of the tokens have a split\n")
    print("StochasTok")
    for definition in DEFINITIONS:
        counts, seconds = run(Stochastok(table, p, definition), documents, options.seed)
        print(line(f"  expansion: {definition}", tokens, counts.expansion_attempts, counts.expansions, seconds))
    start = time.perf_counter()
    attempts, splits = authors_loop(documents, p, table, options.seed)
    print(line("  authors' loop (sequential Python)", tokens, attempts, splits, time.perf_counter() - start))
    print(line("  attempts x splittable share", tokens, attempts, round(attempts * splittable), None))
    print("\nPatok (its defaults; the last step's attempts and splits)")
    segment = get_language("tl").segment
    for definition in ("attempts_per_document", "per_token"):
        config = PatokVariant(processor="patok", expand_prop=p, expansion=definition)
        counts, seconds = run(Patok(table, tokenizer.token_bytes, config, segment), documents, options.seed)
        print(line(f"  expansion: {definition}", tokens, counts.expansion_attempts, counts.expansions, seconds))


if __name__ == "__main__":
    main()
