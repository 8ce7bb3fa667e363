"""The scheduler registry: every scheduler by its profile name (`scheduler: pbs`).

Built-ins are the modules of this package that define a `SCHEDULER`; another package adds one with no edit
here, through an entry point whose value is a `morphcpt.cluster.base.Scheduler` subclass:

    [project.entry-points."morphcpt.schedulers"]
    myscheduler = "my_package.scheduler:MyScheduler"
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from importlib.metadata import entry_points

from morphcpt.cluster.base import Scheduler
from morphcpt.errors import ConfigError

__all__ = ["Scheduler", "get_scheduler", "scheduler_names"]

ENTRY_POINT_GROUP = "morphcpt.schedulers"
# The order schedulers are listed in (and their variables are tried in by the job prologue).
ORDER = ("pbs", "slurm", "sge", "local")


@cache
def _schedulers() -> dict[str, type[Scheduler]]:
    found: dict[str, type[Scheduler]] = {}
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"]
    for name in sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "SCHEDULER"):
            found[module.SCHEDULER.name] = module.SCHEDULER
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin must name itself
            raise ConfigError(f"scheduler plugin {point.name} ({point.value}) failed to load: {exc}") from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Scheduler)):
            raise ConfigError(f"scheduler plugin {point.name} ({point.value}) is not a morphcpt Scheduler subclass")
        found.setdefault(loaded.name, loaded)
    return found


def scheduler_names() -> list[str]:
    return list(_schedulers())


@cache
def get_scheduler(name: str) -> Scheduler:
    schedulers = _schedulers()
    if name not in schedulers:
        raise ConfigError(f"unknown scheduler {name!r} (known: {', '.join(schedulers)})")
    return schedulers[name]()
