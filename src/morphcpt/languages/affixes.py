"""Affix inventories, and finding their prefixes and suffixes at a word's edges.

Every pack's segmenter starts the same way (which listed prefixes begin the word, which suffixes end it) and
differs in what comes after (infix placement, reduplication, minimum root length), so the edge search lives
here, shared, and the rules live in the pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from morphcpt.errors import ConfigError


@dataclass(frozen=True)
class AffixInventory:
    """A language's affixes in surface form (no hyphens); circumfixes are (prefix, suffix) pairs."""

    prefixes: tuple[str, ...]
    infixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    circumfixes: tuple[tuple[str, str], ...] = ()


def load_affixes(source: Traversable | Path) -> AffixInventory:
    """An inventory from YAML with the lists prefixes, infixes, suffixes and (optional) circumfixes."""
    import yaml

    data: Any = yaml.safe_load(source.read_text(encoding="utf-8"))
    try:
        return AffixInventory(
            prefixes=tuple(data["prefixes"]),
            infixes=tuple(data["infixes"]),
            suffixes=tuple(data["suffixes"]),
            circumfixes=tuple((a, b) for a, b in data.get("circumfixes") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: not an affix inventory (prefixes, infixes, suffixes lists): {exc}") from None


class EdgeAffixes:
    """The inventory's prefixes that start a word and suffixes that end it, in one pass of an Aho-Corasick
    automaton (pyahocorasick, imported on first use: the data path needs it, the benchmarks do not)."""

    def __init__(self, inventory: AffixInventory) -> None:
        self.inventory = inventory

    @cached_property
    def _automaton(self):  # type: ignore[no-untyped-def]
        import ahocorasick

        automaton = ahocorasick.Automaton()
        for kind, items in (("prefix", self.inventory.prefixes), ("suffix", self.inventory.suffixes)):
            for affix in items:
                _, kinds = automaton.get(affix, (affix, ()))
                automaton.add_word(affix, (affix, (*kinds, kind)))
        automaton.make_automaton()
        return automaton

    def find(self, word: str) -> tuple[list[str], list[str]]:
        """(prefixes that start `word`, suffixes that end it), each in the order the automaton meets them."""
        prefixes: list[str] = []
        suffixes: list[str] = []
        if not word or not (self.inventory.prefixes or self.inventory.suffixes):
            return prefixes, suffixes  # an automaton without words cannot be searched
        last = len(word) - 1
        for end_index, (affix, kinds) in self._automaton.iter(word):
            if "prefix" in kinds and end_index == len(affix) - 1:
                prefixes.append(affix)
            if "suffix" in kinds and end_index == last:
                suffixes.append(affix)
        return prefixes, suffixes
