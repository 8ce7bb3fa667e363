"""Language packs and where they are found: `get_language(code)` for the experiment's `language:`.

A pack is found, in this order, among
1. packs registered in this process with `register_language` (tests, notebooks, an embedding program);
2. built-in packs: the subpackages of `morphcpt.languages` (`tl/`), each exposing `PACK`;
3. third-party packs: entry points of the group `morphcpt.languages`, named by the code, whose object is a
   LanguagePack or a function returning one, e.g. in the pack's pyproject.toml:
       [project.entry-points."morphcpt.languages"]
       ceb = "morphcpt_cebuano:PACK"
Nothing is imported before it is asked for, so naming a language costs only its own pack.
"""

from __future__ import annotations

import importlib
from importlib.resources import files
from typing import TYPE_CHECKING

from morphcpt.errors import ConfigError
from morphcpt.languages.affixes import AffixInventory, EdgeAffixes, load_affixes
from morphcpt.languages.pack import BenchmarkSource, CorpusSource, LanguagePack, Segmentation, Segmenter

if TYPE_CHECKING:
    from importlib.metadata import EntryPoints

__all__ = [
    "ENTRY_POINT_GROUP",
    "AffixInventory",
    "BenchmarkSource",
    "CorpusSource",
    "EdgeAffixes",
    "LanguagePack",
    "Segmentation",
    "Segmenter",
    "builtin_languages",
    "get_language",
    "known_languages",
    "load_affixes",
    "register_language",
    "resolve_language",
    "unregister_language",
]

ENTRY_POINT_GROUP = "morphcpt.languages"
_registered: dict[str, LanguagePack] = {}
_loaded: dict[str, LanguagePack] = {}  # built-in and entry-point packs, once imported


def builtin_languages() -> tuple[str, ...]:
    """Codes of the packs shipped in this package: its subpackages."""
    here = files(__name__)
    return tuple(sorted(d.name for d in here.iterdir() if d.is_dir() and (d / "__init__.py").is_file()))


def _entry_points(**select: str) -> EntryPoints:
    # importlib.metadata costs ~50 ms to import: only when a code is not built in, or to list the known ones.
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP, **select)


def known_languages() -> tuple[str, ...]:
    """Every code get_language can resolve now: registered, built-in and entry-point packs."""
    third_party = {ep.name for ep in _entry_points()}
    return tuple(sorted(set(_registered) | set(builtin_languages()) | third_party))


def register_language(pack: LanguagePack, *, replace: bool = False) -> LanguagePack:
    """Make `pack` resolvable by its code in this process; another pack under the same code is an error
    unless `replace`. Returns the pack, so a module can write `PACK = register_language(LanguagePack(...))`."""
    if not isinstance(pack, LanguagePack):
        raise ConfigError(f"register_language needs a LanguagePack, not {type(pack).__name__}")
    current = _registered.get(pack.code)
    if current is not None and current is not pack and not replace:
        raise ConfigError(f"language {pack.code!r} is already registered ({current.name}); pass replace=True")
    _registered[pack.code] = pack
    return pack


def unregister_language(code: str) -> None:
    """Forget a pack registered with register_language (built-in and entry-point packs stay findable)."""
    _registered.pop(code, None)


def _checked(pack: object, code: str, origin: str) -> LanguagePack:
    if callable(pack) and not isinstance(pack, LanguagePack):
        pack = pack()
    if not isinstance(pack, LanguagePack):
        raise ConfigError(f"language {code!r}: {origin} is a {type(pack).__name__}, not a LanguagePack")
    if pack.code != code:
        raise ConfigError(f"language {code!r}: {origin} holds the pack for {pack.code!r}")
    return pack


def _load(code: str) -> LanguagePack | None:
    if code in builtin_languages():
        module = importlib.import_module(f"{__name__}.{code}")
        return _checked(getattr(module, "PACK", None), code, f"{module.__name__}.PACK")
    for ep in _entry_points(name=code):
        try:
            found = ep.load()
        except Exception as exc:  # an installed plugin's import error: name the plugin, keep the cause
            raise ConfigError(f"language {code!r}: cannot load entry point {ep.value}: {exc}") from exc
        return _checked(found, code, f"entry point {ep.value}")
    return None


def get_language(code: str) -> LanguagePack:
    """The pack for `code`; an unknown code is a ConfigError naming the codes that are known."""
    if code in _registered:
        return _registered[code]
    if code not in _loaded:
        pack = _load(code) if isinstance(code, str) and code.isidentifier() else None
        if pack is None:
            known = ", ".join(known_languages()) or "none"
            raise ConfigError(f"unknown language {code!r} (experiment `language:`); known language packs: {known}")
        _loaded[code] = pack
    return _loaded[code]


def resolve_language(language: LanguagePack | str) -> LanguagePack:
    """A pack given as itself or by its code: what the generic layers accept."""
    return language if isinstance(language, LanguagePack) else get_language(language)
