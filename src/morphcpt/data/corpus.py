"""Reading corpus records. Every line is either a document or a rejection with a reason; nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from morphcpt.errors import MorphcptError

# A document past this size is rejected rather than tokenized: it is almost always a dump, not prose.
DEFAULT_MAX_DOCUMENT_BYTES = 8 * 1024 * 1024

REJECT_REASONS = (
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "missing_text",
    "text_not_a_string",
    "empty_text",
    "unencodable_text",
)
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Record:
    line: int
    text: str


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    detail: str


def parse_line(raw: bytes, line: int, text_key: str, max_bytes: int) -> Record | Rejected:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(line, "invalid_utf8", f"byte {exc.start}: {exc.reason}")
    if len(raw) > max_bytes:
        return Rejected(line, "too_long", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        value = json.loads(decoded)
    except json.JSONDecodeError as exc:
        return Rejected(line, "invalid_json", exc.msg)
    if not isinstance(value, dict):
        return Rejected(line, "not_an_object", type(value).__name__)
    if text_key not in value:
        return Rejected(line, "missing_text", f"no {text_key!r} key")
    text = value[text_key]
    if not isinstance(text, str):
        return Rejected(line, "text_not_a_string", type(text).__name__)
    if not text.strip():
        return Rejected(line, "empty_text", "")
    try:
        # JSON may escape a lone surrogate ("\ud800") that no tokenizer can encode: reject it here, by line.
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return Rejected(line, "unencodable_text", f"character {exc.start}: {exc.reason} ({text[exc.start]!r})")
    return Record(line, text)


def read_records(
    path: Path, text_key: str = "text", max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
) -> Iterator[Record | Rejected]:
    """Stream `path` (JSONL) line by line; blank lines are rejected too, so line counts always add up."""
    number = 0
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                body = raw.rstrip(b"\r\n")
                if number == 1 and body.startswith(UTF8_BOM):
                    body = body[len(UTF8_BOM) :]  # a BOM marks the file's encoding, not the first record
                if not body.strip():
                    yield Rejected(number, "blank_line", "")
                    continue
                yield parse_line(body, number, text_key, max_bytes)
    except OSError as exc:
        raise MorphcptError(f"cannot read {path} after line {number}: {exc.strerror or exc}") from None
