"""Completion markers and atomic writes: a killed task never leaves something that looks complete.

A task writes its outputs under temporary names, renames them into place, and only then writes
`<output>.done.json`. A marker is valid when its outputs exist with the recorded sizes and its parameters
match the ones asked for now; a valid marker means the task is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARKER_SUFFIX = ".done.json"


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename, on failure it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def marker_path(output: Path) -> Path:
    return output.with_name(output.name + MARKER_SUFFIX)


def write_marker(output: Path, outputs: list[Path], parameters: dict[str, Any], **facts: Any) -> None:
    record = {
        "parameters": parameters,
        "outputs": {p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in outputs},
        **facts,
    }
    write_json_atomic(marker_path(output), record)


def read_valid_marker(output: Path, outputs: list[Path], parameters: dict[str, Any]) -> dict[str, Any] | None:
    """The marker's record if it is complete and was made with `parameters`; None means redo the task."""
    path = marker_path(output)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("parameters") != json.loads(json.dumps(parameters)):
        return None
    recorded = record.get("outputs", {})
    for out in outputs:
        if out.name not in recorded or not out.exists() or out.stat().st_size != recorded[out.name]["bytes"]:
            return None
    return record


def remove_marker(output: Path) -> None:
    marker_path(output).unlink(missing_ok=True)
