"""Preprocess one chunk for one variant into a Megatron indexed dataset, and merge a variant's chunks.

Edited token ids are written as ids: nothing is decoded and re-tokenized, which would undo the edits.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from morphcpt.config import Experiment
from morphcpt.context import Layout
from morphcpt.data.corpus import DEFAULT_MAX_DOCUMENT_BYTES, Rejected, read_records
from morphcpt.data.indexed import merge_prefixes, prefix_files, write_documents
from morphcpt.data.markers import (
    atomic_output,
    file_sha256,
    read_valid_marker,
    remove_marker,
    write_marker,
)
from morphcpt.data.processors import EditCounts, expansion_record, make_processor
from morphcpt.data.seeds import task_rng
from morphcpt.data.split import chunk_name, source_lines
from morphcpt.data.tokenizer import load_tokenizer
from morphcpt.errors import MorphcptError
from morphcpt.languages import get_language
from morphcpt.stages.preprocess import preprocess_settings

DEFAULT_CACHE = Path(".cache/morphcpt")
T = TypeVar("T")
R = TypeVar("R")


def chunk_prefix(experiment: Experiment, variant: str, chunk: int) -> Path:
    return Layout(experiment).chunk_prefix(variant, chunk)


def merged_prefix(experiment: Experiment, variant: str) -> Path:
    return Layout(experiment).merged_prefix(variant)


def _readable_checksum(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise MorphcptError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_request(experiment: Experiment, variant: str, chunk: int) -> Path:
    if variant not in experiment.variants:
        raise MorphcptError(f"unknown variant {variant!r}; the experiment has {', '.join(experiment.variants)}")
    if not 1 <= chunk <= experiment.data.num_chunks:
        raise MorphcptError(f"chunk {chunk} is outside 1-{experiment.data.num_chunks} (data.num_chunks)")
    path = Path(experiment.data.chunks_dir) / chunk_name(chunk)
    if not path.exists():
        raise MorphcptError(f"{path} not found; run the split stage first (morphcpt split)")
    return path


def prefetched(pool: Executor, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """function(item) for each item, in order, the next one always already running in `pool`."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) > 1:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def preprocess_chunk(
    experiment: Experiment,
    variant: str,
    chunk: int,
    strict: bool = False,
    cache_dir: Path = DEFAULT_CACHE,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
) -> dict[str, Any]:
    chunk_path = _check_request(experiment, variant, chunk)
    language = get_language(experiment.language)  # an unknown language fails even where the chunk is done
    prefix = chunk_prefix(experiment, variant, chunk)
    bin_path, idx_path = prefix_files(prefix)
    rejects_path = prefix.with_name(prefix.name + ".rejects.jsonl")
    tokenizer = load_tokenizer(experiment.data.tokenizer)
    parameters = {
        # The configured settings, defined once with the stage (the controller checks the same ones) ...
        **preprocess_settings(experiment, variant),
        # ... and what only the job can compute or is given.
        "chunk_sha256": _readable_checksum(chunk_path),
        "tokenizer_fingerprint": tokenizer.fingerprint,
        "strict": strict,
        "max_document_bytes": max_document_bytes,
    }
    done = read_valid_marker(prefix, [bin_path, idx_path, rejects_path], parameters)
    if done is not None:
        return {**done, "skipped": True}
    remove_marker(prefix)
    processor = make_processor(experiment.variants[variant], tokenizer, cache_dir, language=language)
    rng = task_rng(experiment.seed, variant, chunk)
    rejects: list[Rejected] = []
    edits = EditCounts()
    lines = 0

    def text_batches() -> Iterator[list[str]]:
        nonlocal lines
        batch: list[str] = []
        chars = 0
        for item in read_records(chunk_path, experiment.data.text_key, max_document_bytes):
            lines += 1
            if isinstance(item, Rejected):
                if strict:
                    source = source_lines(chunk_path, {item.line}).get(item.line)
                    where = f" ({experiment.data.corpus}:{source})" if source else ""
                    raise MorphcptError(f"{chunk_path}:{item.line}{where}: {item.reason} {item.detail}".rstrip())
                rejects.append(item)
                continue
            batch.append(item.text)
            chars += len(item.text)
            if len(batch) >= experiment.data.batch_size or chars >= experiment.data.batch_chars:
                yield batch
                batch, chars = [], 0
        if batch:
            yield batch

    def encode(texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(ids, dtype=np.int64) for ids in tokenizer.encode_batch(texts)]

    def documents() -> Iterator[np.ndarray]:
        # The tokenizer releases the GIL: the next batch is read and tokenized while this one is edited and
        # written. Edits stay in batch order, so the random draws, and the output, do not change.
        with ThreadPoolExecutor(max_workers=1) as pool:
            for encoded in prefetched(pool, encode, text_batches()):
                edited, counts = processor.process_batch(encoded, rng)
                edits.add(counts)
                for ids in edited:
                    yield np.append(ids, tokenizer.eod_id)

    try:
        docs, tokens = write_documents(prefix, documents(), tokenizer.vocab_size)
        sources = source_lines(chunk_path, {r.line for r in rejects})
        with atomic_output(rejects_path) as tmp, tmp.open("w", encoding="utf-8") as handle:
            for r in rejects:
                record = {"line": r.line, "reason": r.reason, "detail": r.detail}
                if r.line in sources:
                    # The chunk is an interleaving of the corpus: name the corpus line too.
                    record["source"] = f"{experiment.data.corpus}:{sources[r.line]}"
                handle.write(json.dumps(record) + "\n")
        if docs + len(rejects) != lines:
            raise MorphcptError(f"{chunk_path}: {lines} lines but {docs} written + {len(rejects)} rejected")
        facts = {
            "lines": lines,
            "documents": docs,
            "tokens": tokens,
            "rejected": len(rejects),
            "rejects_by_reason": dict(sorted(Counter(r.reason for r in rejects).items())),
            "edits": edits.as_dict(),
            # Which definition of expand_prop made these edits and what it realised (None for vanilla).
            "expansion": expansion_record(experiment.variants[variant], edits.as_dict()),
        }
        write_marker(prefix, [bin_path, idx_path, rejects_path], parameters, **facts)
    except OSError as exc:
        # Outputs renamed before the failure stay without a marker, so nothing looks complete.
        raise MorphcptError(f"cannot write {prefix}: {exc.strerror or exc}") from None
    return {"parameters": parameters, **facts, "skipped": False}


def merge_variant(experiment: Experiment, variant: str) -> dict[str, Any]:
    if variant not in experiment.variants:
        raise MorphcptError(f"unknown variant {variant!r}; the experiment has {', '.join(experiment.variants)}")
    prefixes = [chunk_prefix(experiment, variant, i) for i in range(1, experiment.data.num_chunks + 1)]
    missing = [p for p in prefixes if not p.with_name(p.name + ".done.json").exists()]
    if missing:
        names = ", ".join(p.name for p in missing)
        raise MorphcptError(f"variant {variant}: chunks not preprocessed yet: {names}")
    out = merged_prefix(experiment, variant)
    bin_path, idx_path = prefix_files(out)
    parameters = {"chunks": [json.loads(p.with_name(p.name + ".done.json").read_text())["outputs"] for p in prefixes]}
    done = read_valid_marker(out, [bin_path, idx_path], parameters)
    if done is not None:
        return {**done, "skipped": True}
    remove_marker(out)
    tokenizer = load_tokenizer(experiment.data.tokenizer)
    docs, tokens = merge_prefixes(prefixes, out, tokenizer.vocab_size)
    write_marker(out, [bin_path, idx_path], parameters, documents=docs, tokens=tokens)
    return {"documents": docs, "tokens": tokens, "skipped": False}
