"""The pack's data files (affixes.yaml, roots.tsv, annotated_words.tsv), read with importlib.resources so
they ship inside the package and are found wherever it is installed, not only in a checkout."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from morphcpt.languages.affixes import AffixInventory, load_affixes

HERE: Traversable = files(__package__)
AFFIXES_FILE = HERE / "affixes.yaml"
ROOTS_FILE = HERE / "roots.tsv"
ANNOTATED_WORDS_FILE = HERE / "annotated_words.tsv"


@cache
def affixes() -> AffixInventory:
    return load_affixes(AFFIXES_FILE)


@cache
def roots() -> tuple[str, ...]:
    """The benchmark roots: first column of roots.tsv, after its comment lines and header."""
    text = ROOTS_FILE.read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    return tuple(row[0] for row in rows[1:] if row and row[0])
