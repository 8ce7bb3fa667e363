"""Which environment variables may cross into jobs and containers, and which of them are secrets."""

from __future__ import annotations

from functools import cache

from morphcpt.config import REPO_ROOT

ALLOWLIST_FILE = REPO_ROOT / "containers" / "env_allowlist.txt"


@cache
def _allowlist() -> tuple[tuple[str, bool], ...]:
    entries = []
    for line in ALLOWLIST_FILE.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            entries.append((fields[0], "secret" in fields[1:]))
    return tuple(entries)


def secret_names() -> list[str]:
    return [name for name, secret in _allowlist() if secret]


def passes_into_container(name: str) -> bool:
    for pattern, _ in _allowlist():
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return True
    return False
