"""An experiment's `stages:` section as a validated graph of jobs: the one graph render and controller read.

Each entry names a stage type (`uses:`) and becomes one job, or one job per value of its `foreach:`
(`preprocess_data` x {variant: [vanilla, patok]} -> preprocess_data_vanilla, preprocess_data_patok). `after:`
names jobs or entries (an entry means all of its jobs) and may use the foreach names, e.g.
`merge_data_{variant}`. Adjacent entries with the same foreach expand together, value by value, so a variant's
chain is listed (and submitted by hand) together. A cycle, an unknown stage type, an `after:` naming nothing,
or an output two jobs both write is an error naming the entry's key, before anything is submitted.

`max_concurrent: K` caps an entry's tasks at once. An array carries it as its own `%K`; between the jobs of
one entry it becomes `turn_after`: the jobs queue in as many lanes as fit in K (K plain jobs; arrays of K or
more tasks, one) and each waits for the end, whatever its outcome, of the one before it in its lane
(`run_cpt_stochastok` after `run_cpt_baseline` with K = 1), so scripts submitted by hand keep the cap. The
controller holds such jobs back itself (engine._entry_room) and does not read `turn_after`.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from morphcpt.config import Experiment, StageEntry
    from morphcpt.stages.base import Stage, StageParams


class GraphError(ValueError):
    """A problem with the `stages:` section; the message starts with the key it blames (`stages.3.after`)."""


@dataclass(frozen=True)
class StageJob:
    """One job of the graph: a stage type with its parameters, dependencies and array size."""

    name: str
    kind: str  # the stage type (`uses:`)
    after: tuple[str, ...] = ()
    array_size: int | None = None
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    entry: str = ""  # the `stages:` entry it came from
    resources: dict[str, Any] = field(default_factory=dict, hash=False)  # the entry's resource overrides
    max_concurrent: int | None = None  # at most this many of the entry's tasks at once
    # Jobs of the same entry this one waits its turn behind (their end, not their success): max_concurrent
    # as hand-submitted dependencies. Not data dependencies: a failed one does not stop this one.
    turn_after: tuple[str, ...] = ()

    @property
    def is_array(self) -> bool:
        return self.array_size is not None

    @property
    def stage(self) -> Stage:
        from morphcpt.stages import get_stage

        return get_stage(self.kind)

    @property
    def parameters(self) -> StageParams:
        return self.stage.Params(**self.params)

    def tasks(self) -> list[int]:
        """Chunks 1..N for an array job, task 0 for a plain job."""
        return list(range(1, self.array_size + 1)) if self.array_size else [0]


@dataclass
class Graph:
    jobs: dict[str, StageJob]  # in an order where each job comes after the jobs it depends on
    entries: dict[str, list[str]]  # entry name -> its jobs

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.jobs.values())

    def downstream(self, names: set[str]) -> set[str]:
        """Every job that depends, directly or not, on one of `names` (not `names` themselves)."""
        found: set[str] = set()
        frontier = set(names)
        while frontier:
            frontier = {j.name for j in self.jobs.values() if set(j.after) & frontier} - found
            found |= frontier
        return found

    def upstream(self, names: set[str]) -> set[str]:
        found: set[str] = set()
        frontier = set(names)
        while frontier:
            frontier = {u for name in frontier for u in self.jobs[name].after} - found
            found |= frontier
        return found

    def text(self, title: str = "") -> str:
        width = max(len(name) for name in self.jobs)
        tasks = sum(len(job.tasks()) for job in self.jobs.values())
        lines = [f"{title + ': ' if title else ''}{len(self.jobs)} jobs, {tasks} tasks"]
        shapes = {
            job.name: (f"array {job.array_size}" if job.array_size else "job")
            + (f", max {job.max_concurrent} at once" if job.max_concurrent else "")
            for job in self.jobs.values()
        }
        shape_width = max(18, *map(len, shapes.values()))
        for job in self.jobs.values():
            after = ", ".join(job.after) or "-"
            turn = f"; turn after: {', '.join(job.turn_after)}" if job.turn_after else ""
            # Only the experiment's own overrides: the profile's defaults are the cluster's, not the graph's.
            own = "; " + " ".join(f"{k}={v}" for k, v in job.resources.items()) if job.resources else ""
            lines.append(
                f"{job.name:<{width}}  {job.kind:<12} {shapes[job.name]:<{shape_width}} after: {after}{turn}{own}"
            )
        return "\n".join(lines)

    def dot(self) -> str:
        lines = ["digraph experiment {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
        for job in self.jobs.values():
            label = f"{job.name}\\n{job.kind}" + (f" [{job.array_size}]" if job.array_size else "")
            lines.append(f'  "{job.name}" [label="{label}"];')
        for job in self.jobs.values():
            lines.extend(f'  "{dep}" -> "{job.name}";' for dep in job.after)
            # Dashed: waits for its turn (the entry's max_concurrent), not for the other job's output.
            lines.extend(f'  "{dep}" -> "{job.name}" [style=dashed];' for dep in job.turn_after)
        lines.append("}")
        return "\n".join(lines) + "\n"


def _foreach_values(experiment: Experiment, entry: StageEntry, where: str) -> list[dict[str, str]]:
    if not entry.foreach:
        return [{}]
    axes: list[list[tuple[str, str]]] = []
    for key, values in entry.foreach.items():
        if isinstance(values, str):
            # `foreach: {variant: variants}` ranges over the names of a top-level mapping of the experiment.
            mapping = getattr(experiment, values, None)
            if not isinstance(mapping, dict):
                raise GraphError(f"{where}.foreach.{key}: {values!r} is not a mapping of the experiment")
            values = list(mapping)
        if not values:
            raise GraphError(f"{where}.foreach.{key}: needs at least one value")
        axes.append([(key, str(v)) for v in values])
    return [dict(combo) for combo in itertools.product(*axes)]


def _fill(template: str, bindings: dict[str, str], where: str) -> str:
    names = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    missing = [name for name in names if name not in bindings]
    if missing:
        known = ", ".join(sorted(bindings)) or "none: the entry has no foreach"
        raise GraphError(f"{where}: {{{missing[0]}}} is not a name this entry defines (known: {known})")
    return template.format_map(bindings)


def _resources(entry: StageEntry, values: dict[str, str], where: str) -> dict[str, Any]:
    from morphcpt.config import PartialResources

    resolved: dict[str, Any] = {}
    for key, value in entry.resources.items():
        if isinstance(value, dict):
            # Per-value resources: {walltime: {vanilla: "04:00:00", patok: "08:00:00"}}.
            picked = [value[v] for v in values.values() if v in value]
            if not picked:
                raise GraphError(f"{where}.resources.{key}: no value for {', '.join(values.values()) or 'this job'}")
            value = picked[0]
        resolved[key] = value
    try:
        return PartialResources(**resolved).model_dump(exclude_none=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"])
        raise GraphError(f"{where}.resources.{loc}: {error['msg']}") from None


def _expansion_order(entries: list[StageEntry]) -> list[list[int]]:
    """Groups of adjacent entry indices that share one foreach (expanded together, value by value)."""
    groups: list[list[int]] = []
    for index, entry in enumerate(entries):
        if groups and entry.foreach and entries[groups[-1][-1]].foreach == entry.foreach:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def build_graph(experiment: Experiment) -> Graph:
    from morphcpt.errors import ConfigError
    from morphcpt.stages import get_stage

    entries = list(experiment.stages)
    if not entries:
        raise GraphError("stages: the experiment declares no stages")
    seen_entries: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.name in seen_entries:
            raise GraphError(
                f"stages.{index}.name: {entry.name!r} is also the name of entry {seen_entries[entry.name]}"
            )
        seen_entries[entry.name] = index

    pending: list[tuple[int, StageJob, list[str]]] = []  # (entry index, job without after, after templates)
    by_entry: dict[str, list[str]] = {entry.name: [] for entry in entries}
    for group in _expansion_order(entries):
        first = entries[group[0]]
        for values in _foreach_values(experiment, first, f"stages.{group[0]}"):
            for index in group:
                entry, where = entries[index], f"stages.{index}"
                try:
                    stage = get_stage(entry.uses)
                except ConfigError as exc:
                    raise GraphError(f"{where}.uses: {exc}") from None
                try:
                    params = stage.Params(**{**entry.params, **values})
                except ValidationError as exc:
                    error = exc.errors()[0]
                    loc = ".".join(str(p) for p in error["loc"])
                    section = "foreach" if loc in values else "params"
                    message = "unknown key (check its spelling)" if error["type"] == "extra_forbidden" else error["msg"]
                    raise GraphError(f"{where}.{section}.{loc}: {message}") from None
                for problem in stage.check(experiment, params):
                    raise GraphError(f"{where}.{problem}" if ":" in problem else f"{where}: {problem}")
                bindings = {**values, **stage.bindings(experiment, params)}
                name = "_".join([entry.name, *values.values()])
                array = entry.array if entry.array is not None else stage.array_size(experiment, params)
                job = StageJob(
                    name=name,
                    kind=entry.uses,
                    array_size=array,
                    params=params.model_dump(mode="json"),
                    entry=entry.name,
                    resources=_resources(entry, values, where),
                    max_concurrent=entry.max_concurrent,
                )
                after = [_fill(item, bindings, f"{where}.after.{i}") for i, item in enumerate(entry.after)]
                pending.append((index, job, after))
                by_entry[entry.name].append(name)

    names = {job.name for _, job, _ in pending}
    for _, job, _ in pending:
        if job.name in by_entry and by_entry[job.name] != [job.name]:
            raise GraphError(f"stages.{seen_entries[job.name]}.name: {job.name!r} is also the name of a job")
    jobs: dict[str, StageJob] = {}
    for index, job, after in pending:
        resolved: list[str] = []
        for position, name in enumerate(after):
            targets = [name] if name in names else by_entry.get(name, [])
            if not targets:
                raise GraphError(f"stages.{index}.after.{position}: {name!r} names no job or entry of this experiment")
            resolved.extend(t for t in targets if t not in resolved)
        if job.name in resolved:
            raise GraphError(f"stages.{index}.after: {job.name} depends on itself")
        jobs[job.name] = StageJob(**{**job.__dict__, "after": tuple(resolved)})

    order = _topological(jobs, entries, seen_entries)
    jobs = _take_turns(jobs, order, by_entry)
    graph = Graph({name: jobs[name] for name in order}, by_entry)
    _check_outputs(experiment, graph, seen_entries)
    return graph


def _topological(jobs: dict[str, StageJob], entries: list[StageEntry], index_of: dict[str, int]) -> list[str]:
    """Listing order where it already respects the dependencies; a cycle is an error naming it."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(jobs)
    while remaining:
        ready = next((name for name in remaining if set(jobs[name].after) <= placed), None)
        if ready is None:
            cycle = _find_cycle(jobs, remaining)
            first = jobs[cycle[0]]
            raise GraphError(f"stages.{index_of[first.entry]}.after: cycle {' -> '.join(cycle)}")
        order.append(ready)
        placed.add(ready)
        remaining.remove(ready)
    return order


def _take_turns(jobs: dict[str, StageJob], order: list[str], by_entry: dict[str, list[str]]) -> dict[str, StageJob]:
    """Each capped entry's jobs in `lanes` queues, in listing order, so that at most max_concurrent of its
    tasks run at once however they are submitted. A job waits for the one `lanes` places before it; links go
    forward in the listing order, which already respects `after:`, so they can add no cycle."""
    position = {name: i for i, name in enumerate(order)}
    turns: dict[str, tuple[str, ...]] = {}
    for members in by_entry.values():
        cap = jobs[members[0]].max_concurrent if members else None
        if not cap or len(members) < 2:
            continue
        # An array runs up to min(size, cap) tasks at once by itself (its %K), a plain job one: as many such
        # jobs as fit in the cap run side by side.
        widest = max(min(jobs[name].array_size or 1, cap) for name in members)
        lanes = max(1, cap // widest)
        queue = sorted(members, key=position.__getitem__)
        for i in range(lanes, len(queue)):
            turns[queue[i]] = (queue[i - lanes],)
    return {name: StageJob(**{**job.__dict__, "turn_after": turns.get(name, ())}) for name, job in jobs.items()}


def _find_cycle(jobs: dict[str, StageJob], among: list[str]) -> list[str]:
    pool = set(among)
    start = among[0]
    path = [start]
    while True:
        nxt = next(dep for dep in jobs[path[-1]].after if dep in pool)
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


def _check_outputs(experiment: Experiment, graph: Graph, index_of: dict[str, int]) -> None:
    from morphcpt.context import RunContext

    ctx = RunContext(experiment, Path("experiment.yaml"))
    writers: dict[Path, str] = {}
    for job in graph:
        for path in job.stage.outputs(ctx, job):
            other = writers.get(path)
            if other is not None and other != job.name:
                raise GraphError(f"stages.{index_of[job.entry]}.uses: {job.name} and {other} both write {path}")
            writers[path] = job.name


# Every job body runs morphcpt's CLI (and, under the controller, submitit): these come with any stage.
JOB_CORE_MODULES = ("morphcpt", "click", "jinja2", "pydantic", "yaml", "rich", "submitit")


def job_modules(experiment: Experiment) -> list[str]:
    """The Python modules the experiment's jobs import, in a stable order: what its container must provide
    (`morphcpt job-modules`, the container smoke test and verify-setup all use this list)."""
    found = dict.fromkeys(JOB_CORE_MODULES)
    for job in build_graph(experiment):
        found.update(dict.fromkeys(job.stage.modules(experiment)))
    return list(found)
