"""The controller's one vocabulary of states. StrEnums: they compare equal to, and are stored as, their names.

TaskState   one attempt of one task, whatever the scheduler calls it (executors translate into these), plus
            the controller's own: SUBMITTING (written before the scheduler call), SKIPPED (complete on disk
            before any submission), BUDGET (a resumable stage stopped at its time budget), LOST (the scheduler
            forgot an unfinished job), SUPERSEDED (cancelled by the controller to re-wire dependencies).
StageState  what the controller last concluded for a stage (shown by status; never makes a stage done).
Verdict     what a step decides for one task.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    SUBMITTING = "SUBMITTING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"
    BUDGET = "BUDGET"
    LOST = "LOST"
    SUPERSEDED = "SUPERSEDED"


class StageState(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    DONE = "done"
    ACTIVE = "active"
    SUBMIT = "submit"
    WAIT = "wait"
    STOP = "stop"


ACTIVE_STATES = frozenset({TaskState.PENDING, TaskState.RUNNING})
DONE_STATES = frozenset({TaskState.COMPLETED, TaskState.SKIPPED})
FAILURE_STATES = frozenset({TaskState.FAILED, TaskState.TIMEOUT, TaskState.CANCELLED, TaskState.LOST, TaskState.BUDGET})
