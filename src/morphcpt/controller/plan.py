"""Which jobs of the graph must run, and why, from the disk alone: what `submit --dry-run` prints.

The controller makes the same decision with its submission history added (controller/engine.py): a task runs
when its own marker says it is not done for the parameters and inputs asked for now, or when a job upstream of
it runs; the reason names the root cause ("expand_prop changed (0.1 -> 0.2) (in preprocess_data_stochastok)").
"""

from __future__ import annotations

from morphcpt.context import RunContext
from morphcpt.graph import Graph


def rerun_plan(graph: Graph, ctx: RunContext, names: list[str]) -> dict[str, dict[int, str]]:
    """For each named job (in graph order): task -> why it runs; an empty mapping means complete."""
    plan: dict[str, dict[int, str]] = {}
    cause: dict[str, tuple[str, str]] = {}
    for name in names:
        job = graph.jobs[name]
        upstream = next((cause[u] for u in job.after if u in cause), None)
        todo: dict[int, str] = {}
        for task in job.tasks():
            disk = job.stage.completion(ctx, job, task)
            if not disk.done:
                todo[task] = disk.why
            elif upstream is not None:
                todo[task] = f"{upstream[1]} (in {upstream[0]})"
        plan[name] = todo
        if todo:
            own = [why for why in todo.values() if upstream is None or not why.endswith(f"(in {upstream[0]})")]
            cause[name] = (name, own[0]) if own else upstream  # type: ignore[assignment]
    return plan
