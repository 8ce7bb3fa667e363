"""What a running task says about itself: `done` of `total` in some unit (training steps, items scored,
documents processed), written atomically to a small JSON file that `morphcpt status` reads.

A report is never a completion marker: a stage is done when its own marker says so, and a report of a task
that has ended only says how far its last attempt got. Jobs find the folder in MORPHCPT_PROGRESS_DIR (the
controller's run folder, exported by the job prologue) and name their file after MORPHCPT_JOB_NAME and the
task; outside a job (no MORPHCPT_JOB_NAME) a reporter writes nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROGRESS_DIR = "progress"  # in the controller's run folder, beside its state database
PROGRESS_DIR_VARIABLE = "MORPHCPT_PROGRESS_DIR"
JOB_NAME_VARIABLE = "MORPHCPT_JOB_NAME"


def progress_file(directory: Path, job_name: str, task: int) -> Path:
    return directory / f"{job_name}.{task}.json"


@dataclass(frozen=True)
class TaskProgress:
    done: int
    total: int | None
    unit: str
    updated: float  # time.time() of the report

    def text(self) -> str:
        return f"{self.done:,}/{self.total:,} {self.unit}" if self.total else f"{self.done:,} {self.unit}"


def read_progress(path: Path) -> TaskProgress | None:
    """The last report in `path`, or None when there is none (or it cannot be read: a report is a hint)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TaskProgress(int(data["done"]), data.get("total"), str(data["unit"]), float(data["updated"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def combined(reports: list[TaskProgress]) -> TaskProgress | None:
    """Several tasks' reports as one (sums; the total only when every task knows its own)."""
    if not reports:
        return None
    totals = [r.total for r in reports]
    total = sum(t for t in totals if t) if all(totals) else None
    return TaskProgress(sum(r.done for r in reports), total, reports[0].unit, max(r.updated for r in reports))


class Reporter:
    """Writes `done`/`total` at most every `interval` seconds (and always on `finish`), so that reporting
    from an inner loop costs nothing measurable."""

    def __init__(self, path: Path | None, unit: str, total: int | None = None, interval: float = 5.0) -> None:
        self.path, self.unit, self.total, self.interval = path, unit, total, interval
        self.done = 0
        self._written: float | None = None  # the first update is written at once

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        due = self._written is None or time.monotonic() - self._written >= self.interval
        if self.path is not None and due:
            self._write()

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)

    def finish(self) -> None:
        if self.path is not None:
            self._write()

    def _write(self) -> None:
        assert self.path is not None
        report = TaskProgress(self.done, self.total, self.unit, time.time())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed: a reader never sees half a report.
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(asdict(report)), encoding="utf-8")
        tmp.replace(self.path)
        self._written = time.monotonic()


def task_reporter(task: int, unit: str, total: int | None = None, interval: float = 5.0) -> Reporter:
    """The reporter of this job's `task`; one that writes nothing outside a job."""
    job = os.environ.get(JOB_NAME_VARIABLE)
    directory = os.environ.get(PROGRESS_DIR_VARIABLE)
    path = progress_file(Path(directory), job, task) if job and directory else None
    return Reporter(path, unit, total, interval)
