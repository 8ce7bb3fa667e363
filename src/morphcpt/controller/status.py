"""The status table: one row per stage, from the state store (after one batched scheduler poll)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from rich.table import Table

from morphcpt.controller.engine import Controller
from morphcpt.controller.executors import CANCELLED, PENDING, RUNNING
from morphcpt.controller.state import BUDGET, SUBMITTING, TaskRow
from morphcpt.progress import PROGRESS_DIR, combined


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def stage_rows(controller: Controller) -> list[dict[str, Any]]:
    now = time.time()
    by_stage: dict[str, list[TaskRow]] = defaultdict(list)
    for row in controller.store.tasks():
        by_stage[row.stage].append(row)
    rows = []
    progress_dir = controller.store.path.parent / PROGRESS_DIR
    for stage in controller.store.stages():
        history = by_stage[stage.name]
        latest = {t.task: t for t in history}
        total = stage.array_size or 1
        job = controller.jobs.get(stage.name)
        if job is None:
            continue  # a stage of an earlier version of the experiment's graph
        # Done is what the disk says (each task's own marker), not what the database remembers.
        done = sum(1 for task in job.tasks() if controller.completion(job, task).done)
        states = {t.state for t in latest.values()}
        unfinished = [t for t in job.tasks() if not controller.completion(job, t).done]
        last_of_unfinished = {latest[t].state for t in unfinished if t in latest}
        if stage.state in ("failed", "blocked", "cancelled"):
            state = stage.state
        elif done == total:
            state = "done"
        elif RUNNING in states:
            state = "running"
        elif states & {PENDING, SUBMITTING}:
            state = "queued"
        elif last_of_unfinished == {CANCELLED}:
            # Ended by the scheduler's cancel (a qdel / scancel by hand): what happened, until a watch resubmits.
            state = "cancelled"
        elif history:
            state = "resubmitting"
        else:
            state = "waiting"
        # What the unfinished tasks report about themselves (steps, items, documents): a hint, not a state.
        reports = [job.stage.report(progress_dir, controller.ctx, job, t) for t in unfinished] if history else []
        progress = combined([r for r in reports if r is not None])
        spans = [(t.ended or now) - t.started for t in history if t.started]
        active = sorted({t.job_id for t in latest.values() if t.job_id and t.state in (PENDING, RUNNING)})
        recent = sorted({t.job_id for t in latest.values() if t.job_id})
        rows.append(
            {
                "stage": stage.name,
                "kind": stage.kind,
                "done": done,
                "total": total,
                "progress": progress.text() if progress and state in ("running", "queued", "resubmitting") else "",
                "state": state,
                "attempts": max((t.attempt for t in history), default=0),
                "resumes": sum(1 for t in history if t.state == BUDGET),
                "elapsed_seconds": round(sum(spans), 1),
                "job_ids": active or recent,
                "message": stage.message or "",
            }
        )
    return rows


_STYLE = {"done": "green", "failed": "bold red", "blocked": "red", "cancelled": "yellow", "running": "cyan"}


def _ids(ids: list[str]) -> str:
    if len(ids) <= 3:
        return " ".join(ids)
    return f"{ids[0]} … {ids[-1]} ({len(ids)})"


def status_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("stage", "tasks", "state", "progress", "attempts", "resumes", "elapsed", "job ids", "note"):
        table.add_column(column, justify="right" if column in ("tasks", "attempts", "resumes") else "left")
    for row in rows:
        style = _STYLE.get(row["state"], "")
        table.add_row(
            row["stage"],
            f"{row['done']}/{row['total']}",
            f"[{style}]{row['state']}[/]" if style else row["state"],
            row["progress"],
            str(row["attempts"]),
            str(row["resumes"]),
            _elapsed(row["elapsed_seconds"]),
            _ids(row["job_ids"]),
            row["message"],
        )
    return table
