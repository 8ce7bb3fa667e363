"""Megatron indexed datasets (.bin/.idx) written with megatron-core's IndexedDatasetBuilder, atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from morphcpt.errors import MorphcptError
from morphcpt.processes import alive

# megatron-core picks uint16 for vocabularies under 65,500 tokens; larger ones (Gemma 3: 262k) need int32.
UINT16_LIMIT = 65_500


def token_dtype(vocab_size: int) -> type[np.number]:
    return np.uint16 if vocab_size < UINT16_LIMIT else np.int32


def prefix_files(prefix: Path) -> tuple[Path, Path]:
    return prefix.with_name(prefix.name + ".bin"), prefix.with_name(prefix.name + ".idx")


def remove_dead_temporaries(prefix: Path) -> list[Path]:
    """Delete the temporaries (`.<prefix>.tmp-<pid>.bin/.idx`) that a killed writer left behind. Only writers
    that are certainly dead go: a process of this host with that pid no longer exists. (A task killed on
    another node of a shared filesystem leaves its temporary until a rerun there, or `rm .*.tmp-*`.)"""
    removed = []
    for path in prefix.parent.glob(f".{prefix.name}.tmp-*"):
        pid = path.name.removeprefix(f".{prefix.name}.tmp-").split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def atomic_prefix(prefix: Path) -> Iterator[tuple[Path, Path]]:
    """Temporary .bin/.idx paths; on success both are renamed over `prefix` (.idx last), else removed."""
    bin_path, idx_path = prefix_files(prefix)
    tmp_bin, tmp_idx = prefix_files(prefix.with_name(f".{prefix.name}.tmp-{os.getpid()}"))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(prefix)
    try:
        yield tmp_bin, tmp_idx
        # .idx last: a reader that sees the .idx finds a complete .bin beside it.
        os.replace(tmp_bin, bin_path)
        os.replace(tmp_idx, idx_path)
    finally:
        tmp_bin.unlink(missing_ok=True)
        tmp_idx.unlink(missing_ok=True)


def _builder_class():  # type: ignore[no-untyped-def]
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    return IndexedDatasetBuilder


def write_documents(prefix: Path, documents: Iterable[np.ndarray], vocab_size: int) -> tuple[int, int]:
    """Write documents under a temporary prefix, then rename .bin and .idx into place; (docs, tokens)."""
    docs = tokens = 0
    with atomic_prefix(prefix) as (tmp_bin, tmp_idx):
        builder = _builder_class()(str(tmp_bin), dtype=token_dtype(vocab_size))
        for ids in documents:
            builder.add_document(ids, [len(ids)])
            docs += 1
            tokens += len(ids)
        builder.finalize(str(tmp_idx))
    return docs, tokens


def merge_prefixes(prefixes: list[Path], out_prefix: Path, vocab_size: int) -> tuple[int, int]:
    """Concatenate chunk datasets with add_index, then check the merged document count adds up."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    expected_docs = 0
    expected_tokens = 0
    for prefix in prefixes:
        for path in prefix_files(prefix):
            if not path.exists():
                raise MorphcptError(f"{path} missing: preprocess that chunk first")
        dataset = IndexedDataset(str(prefix))
        expected_docs += len(dataset.document_indices) - 1
        expected_tokens += int(dataset.sequence_lengths.sum())
    with atomic_prefix(out_prefix) as (tmp_bin, tmp_idx):
        builder = _builder_class()(str(tmp_bin), dtype=token_dtype(vocab_size))
        for prefix in prefixes:
            builder.add_index(str(prefix))
        builder.finalize(str(tmp_idx))
        merged = IndexedDataset(str(tmp_bin.with_suffix("")))
        docs = len(merged.document_indices) - 1
        tokens = int(merged.sequence_lengths.sum())
        if (docs, tokens) != (expected_docs, expected_tokens):
            raise MorphcptError(
                f"merged {out_prefix}: {docs} documents / {tokens} tokens, expected {expected_docs} / {expected_tokens}"
            )
        del merged
    return docs, tokens
