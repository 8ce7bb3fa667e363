"""Split a corpus into N chunks balanced by bytes: streaming, deterministic, constant memory.

Lines are copied verbatim (bad ones too: preprocessing counts and reports them), each to the chunk with
the fewest bytes so far, so chunk sizes differ by at most one line. Parquet input is read batch by batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from morphcpt.context import SPLIT_MANIFEST, chunk_name
from morphcpt.data.markers import atomic_output, file_sha256, read_valid_marker, write_json_atomic, write_marker
from morphcpt.errors import MorphcptError

MANIFEST = SPLIT_MANIFEST


def _parquet_lines(path: Path, text_key: str, keep: list[str]) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    columns = [text_key, *keep]
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024, columns=columns):
        for row in batch.to_pylist():
            yield json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"


def corpus_lines(path: Path, text_key: str = "text", keep: list[str] | None = None) -> Iterator[bytes]:
    if path.suffix == ".parquet":
        yield from _parquet_lines(path, text_key, keep or [])
        return
    with path.open("rb") as handle:
        for raw in handle:
            yield raw if raw.endswith(b"\n") else raw + b"\n"


def source_lines_path(chunk: Path) -> Path:
    """Beside each chunk: the corpus line of each of its lines (one number a line), for reject reports."""
    return chunk.with_name(chunk.name.removesuffix(".jsonl") + ".source-lines")


def source_lines(chunk: Path, wanted: set[int]) -> dict[int, int]:
    """The corpus line of each wanted chunk line ({} for a chunk split before the map existed)."""
    found: dict[int, int] = {}
    if not wanted:
        return found
    try:
        with source_lines_path(chunk).open(encoding="ascii") as handle:
            for number, value in enumerate(handle, start=1):
                if number in wanted:
                    found[number] = int(value)
    except (OSError, ValueError):
        return {}
    return found


def split_corpus(corpus: Path, out_dir: Path, num_chunks: int, text_key: str = "text") -> dict[str, Any]:
    """Write chunk_0001.jsonl ... and manifest.json; skip when a valid manifest for this input exists."""
    if not corpus.exists():
        raise MorphcptError(f"corpus {corpus} not found; run the download stage first (morphcpt download)")
    chunks = [out_dir / chunk_name(i) for i in range(1, num_chunks + 1)]
    maps = [source_lines_path(path) for path in chunks]
    parameters = {"corpus": str(corpus), "corpus_bytes": corpus.stat().st_size, "num_chunks": num_chunks}
    manifest_path = out_dir / MANIFEST
    done = read_valid_marker(manifest_path, [*chunks, *maps], parameters)
    if done is not None and manifest_path.exists():
        return json.loads(manifest_path.read_text())
    sizes = [0] * num_chunks
    lines = [0] * num_chunks
    digests = [hashlib.sha256() for _ in range(num_chunks)]
    total_lines = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        temps = [stack.enter_context(atomic_output(path)) for path in chunks]
        handles = [stack.enter_context(tmp.open("wb")) for tmp in temps]
        map_temps = [stack.enter_context(atomic_output(path)) for path in maps]
        map_handles = [stack.enter_context(tmp.open("w", encoding="ascii")) for tmp in map_temps]
        for source_line, raw in enumerate(corpus_lines(corpus, text_key), start=1):
            target = min(range(num_chunks), key=sizes.__getitem__)
            handles[target].write(raw)
            map_handles[target].write(f"{source_line}\n")
            digests[target].update(raw)
            sizes[target] += len(raw)
            lines[target] += 1
            total_lines += 1
        for handle in [*handles, *map_handles]:
            handle.close()
    manifest = {
        "corpus": str(corpus),
        "corpus_sha256": file_sha256(corpus),
        "lines": total_lines,
        "chunks": [
            {"file": path.name, "lines": lines[i], "bytes": sizes[i], "sha256": digests[i].hexdigest()}
            for i, path in enumerate(chunks)
        ],
    }
    write_json_atomic(manifest_path, manifest)
    write_marker(manifest_path, [*chunks, *maps], parameters, lines=total_lines)
    return manifest
