"""The controller's memory: SQLite at runs/<experiment>/state.db.

One row per (stage, task, attempt). A submission is written as SUBMITTING before the scheduler is called and
updated with its ids after, so a controller killed in between finds the row on restart and asks the
scheduler (by the submission's unique job name) instead of submitting again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from morphcpt.controller.states import TaskState
from morphcpt.errors import MorphcptError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stages (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, position INTEGER NOT NULL, array_size INTEGER,
    after TEXT NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'waiting', message TEXT);
CREATE TABLE IF NOT EXISTS submissions (
    token TEXT PRIMARY KEY, stage TEXT NOT NULL, attempt INTEGER NOT NULL, job_name TEXT NOT NULL,
    tasks TEXT NOT NULL, depends TEXT NOT NULL, scheduler_id TEXT, state TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    stage TEXT NOT NULL, task INTEGER NOT NULL, attempt INTEGER NOT NULL, token TEXT, job_id TEXT,
    state TEXT NOT NULL, exit_code INTEGER, reason TEXT, counted INTEGER NOT NULL DEFAULT 1,
    submitted REAL, started REAL, ended REAL, log_path TEXT, progress INTEGER,
    PRIMARY KEY (stage, task, attempt));
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state);
CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks (job_id);
"""

# Task states beyond the scheduler's: SUBMITTING (written before the scheduler call), SKIPPED (complete before
# submission), BUDGET (training stopped at its time budget), LOST (the scheduler forgot an unfinished job),
# SUPERSEDED (cancelled by the controller to re-wire dependencies; not a failure).
SUBMITTING, SKIPPED, BUDGET = TaskState.SUBMITTING, TaskState.SKIPPED, TaskState.BUDGET
LOST, SUPERSEDED = TaskState.LOST, TaskState.SUPERSEDED


@dataclass(frozen=True)
class TaskRow:
    stage: str
    task: int
    attempt: int
    token: str | None
    job_id: str | None
    state: str
    exit_code: int | None
    reason: str | None
    counted: int
    submitted: float | None
    started: float | None
    ended: float | None
    log_path: str | None
    progress: int | None = None  # a resumable task's progress (training step) when the attempt was submitted


@dataclass(frozen=True)
class StageRow:
    name: str
    kind: str
    position: int
    array_size: int | None
    after: tuple[str, ...]
    params: dict[str, str]
    state: str
    message: str | None


SCHEMA_VERSION = 2  # PRAGMA user_version; 1 = before tasks.progress
# Filesystems where SQLite's WAL (shared memory between processes) is unsafe: the rollback journal is used there.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "smbfs", "ceph", "fuse.sshfs"}


def filesystem_type(path: Path) -> str:
    """The type of the filesystem `path` is on, from /proc/mounts (longest mount point that contains it)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    target, best = str(path.resolve()), ("", "")
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")):
            if len(parts[1]) > len(best[0]):
                best = (parts[1], parts[2])
    return best[1]


def journal_mode(path: Path, setting: str = "auto") -> str:
    """WAL on local disks; the rollback journal (DELETE) on network filesystems, or as the profile says."""
    if setting != "auto":
        return setting.upper()
    return "DELETE" if filesystem_type(path.parent) in NETWORK_FILESYSTEMS else "WAL"


class StateStore:
    def __init__(self, path: Path, read_only: bool = False, journal: str = "auto") -> None:
        self.path = path
        if read_only:
            # `status` beside a running controller: reads only, never creates or migrates anything.
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute(f"PRAGMA journal_mode={journal_mode(path, journal)}")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise MorphcptError(
                f"{self.path} was written by a newer morphcpt (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        existing = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "tasks" in existing:
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(tasks)")}
            if "progress" not in columns:  # schema 1 -> 2
                self.db.execute("ALTER TABLE tasks ADD COLUMN progress INTEGER")
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---------------------------------------------------------------- meta and stages

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def sync_stages(self, stages: list[tuple[str, str, int | None, tuple[str, ...], dict[str, str]]]) -> None:
        with self.transaction() as db:
            for position, (name, kind, array_size, after, params) in enumerate(stages):
                db.execute(
                    "INSERT INTO stages (name, kind, position, array_size, after, params) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, position=excluded.position, "
                    "array_size=excluded.array_size, after=excluded.after, params=excluded.params",
                    (name, kind, position, array_size, json.dumps(list(after)), json.dumps(params)),
                )

    def stages(self) -> list[StageRow]:
        rows = self.db.execute("SELECT * FROM stages ORDER BY position").fetchall()
        return [
            StageRow(
                r["name"],
                r["kind"],
                r["position"],
                r["array_size"],
                tuple(json.loads(r["after"])),
                json.loads(r["params"]),
                r["state"],
                r["message"],
            )
            for r in rows
        ]

    def set_stage_state(self, name: str, state: str, message: str | None = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE stages SET state = ?, message = ? WHERE name = ?", (state, message, name))

    # ---------------------------------------------------------------- tasks and submissions

    def tasks(self, stage: str | None = None) -> list[TaskRow]:
        query = "SELECT * FROM tasks" + (" WHERE stage = ?" if stage else "") + " ORDER BY stage, task, attempt"
        return [TaskRow(**dict(row)) for row in self.db.execute(query, (stage,) if stage else ())]

    def latest_tasks(self) -> dict[tuple[str, int], TaskRow]:
        latest: dict[tuple[str, int], TaskRow] = {}
        for row in self.tasks():
            latest[(row.stage, row.task)] = row  # ordered by attempt, so the last one wins
        return latest

    def record_skipped(self, stage: str, tasks: list[int]) -> None:
        now = time.time()
        with self.transaction() as db:
            for task in tasks:
                db.execute(
                    "INSERT OR IGNORE INTO tasks (stage, task, attempt, state, counted, submitted, ended) "
                    "VALUES (?, ?, 0, ?, 0, ?, ?)",
                    (stage, task, SKIPPED, now, now),
                )

    def begin_submission(
        self,
        token: str,
        stage: str,
        attempts: dict[int, int],
        job_name: str,
        depends: list[str],
        progress: dict[int, int | None] | None = None,
    ) -> None:
        """Record a submission before the scheduler sees it; `attempts` is each task's attempt number."""
        now = time.time()
        tasks = list(attempts)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (
                    token,
                    stage,
                    max(attempts.values()),
                    job_name,
                    json.dumps(tasks),
                    json.dumps(depends),
                    SUBMITTING,
                    now,
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO tasks (stage, task, attempt, token, state, counted, submitted, progress) "
                "VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                [
                    (stage, task, attempt, token, SUBMITTING, now, (progress or {}).get(task))
                    for task, attempt in attempts.items()
                ],
            )

    def finish_submission(self, token: str, scheduler_id: str, job_ids: list[str], logs: list[str]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE submissions SET scheduler_id = ?, state = 'SUBMITTED' WHERE token = ?", (scheduler_id, token)
            )
            rows = db.execute("SELECT stage, tasks FROM submissions WHERE token = ?", (token,)).fetchone()
            stage, tasks = rows[0], json.loads(rows[1])
            db.executemany(
                "UPDATE tasks SET job_id = ?, log_path = ?, state = 'PENDING' "
                "WHERE stage = ? AND task = ? AND token = ?",
                [(job_id, log, stage, task, token) for job_id, log, task in zip(job_ids, logs, tasks, strict=True)],
            )

    def drop_submission(self, token: str) -> None:
        """Forget a submission that never reached the scheduler."""
        with self.transaction() as db:
            db.execute("DELETE FROM tasks WHERE token = ? AND state = ?", (token, SUBMITTING))
            db.execute("DELETE FROM submissions WHERE token = ?", (token,))

    def pending_submissions(self) -> list[tuple[str, str, list[int], list[str]]]:
        """(token, stage, tasks, depends) of each submission whose scheduler id was never recorded."""
        rows = self.db.execute(
            "SELECT token, stage, tasks, depends FROM submissions WHERE state = ?", (SUBMITTING,)
        ).fetchall()
        return [(r[0], r[1], json.loads(r[2]), json.loads(r[3])) for r in rows]

    def submission_ids(self, stage: str) -> dict[str, str]:
        """token -> scheduler id of the stage's submissions."""
        rows = self.db.execute(
            "SELECT token, scheduler_id FROM submissions WHERE stage = ? AND scheduler_id IS NOT NULL", (stage,)
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def update_tasks(
        self, updates: list[tuple[str, int | None, str | None, float | None, float | None, str, int, int]]
    ) -> None:
        """(state, exit_code, reason, started, ended, stage, task, attempt) for each changed task."""
        if not updates:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE tasks SET state = ?, exit_code = ?, reason = ?, started = COALESCE(?, started), "
                "ended = COALESCE(?, ended) WHERE stage = ? AND task = ? AND attempt = ?",
                updates,
            )

    def mark(self, rows: list[TaskRow], state: str, counted: int | None = None, reason: str | None = None) -> None:
        with self.transaction() as db:
            db.executemany(
                "UPDATE tasks SET state = ?, counted = COALESCE(?, counted), reason = COALESCE(?, reason) "
                "WHERE stage = ? AND task = ? AND attempt = ?",
                [(state, counted, reason, r.stage, r.task, r.attempt) for r in rows],
            )
