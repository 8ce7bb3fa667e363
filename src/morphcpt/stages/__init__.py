"""The stage registry: every stage type by its `uses:` name.

Built-in stage types are the modules of this package; each registers its class with `@register_stage`.
Another package adds stage types with no edit here, through an entry point:

    [project.entry-points."morphcpt.stages"]
    count_words = "my_package.count_words:CountWords"
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from importlib.metadata import entry_points
from typing import TypeVar

from morphcpt.errors import ConfigError
from morphcpt.stages.base import Completion, Stage, StageParams

__all__ = ["Completion", "Stage", "StageParams", "get_stage", "register_stage", "stage_types"]

ENTRY_POINT_GROUP = "morphcpt.stages"
_REGISTERED: dict[str, type[Stage]] = {}
StageT = TypeVar("StageT", bound=type[Stage])


def register_stage(cls: StageT) -> StageT:
    """Class decorator: make `cls` available to experiments as `uses: <cls.name>`."""
    existing = _REGISTERED.get(cls.name)
    if existing is not None and existing is not cls:
        raise ConfigError(f"stage type {cls.name!r} is registered twice: {existing.__module__} and {cls.__module__}")
    _REGISTERED[cls.name] = cls
    return cls


@cache
def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin must name itself, not break with a bare traceback
            raise ConfigError(f"stage plugin {point.name} ({point.value}) failed to load: {exc}") from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Stage)):
            raise ConfigError(f"stage plugin {point.name} ({point.value}) is not a morphcpt.stages.Stage subclass")
        register_stage(loaded)


def stage_types() -> dict[str, type[Stage]]:
    _load_all()
    return dict(sorted(_REGISTERED.items()))


@cache
def get_stage(name: str) -> Stage:
    types = stage_types()
    if name not in types:
        raise ConfigError(f"unknown stage type {name!r} (known: {', '.join(types)})")
    return types[name]()
