"""The controller: submit the experiment's graph, follow it, and resubmit what walltime or failure cut short.

Every call of `step()` reconciles three things: what the state store says, what the scheduler says, and what
the completion markers on disk say. It is safe to run at any time, from any number of restarts.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from morphcpt import exit_codes
from morphcpt.config import ClusterProfile, Experiment
from morphcpt.controller.executors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    NO_ANSWER,
    PENDING,
    TIMEOUT,
    Backend,
    SubmitUnit,
    TransientSchedulerError,
    new_token,
)
from morphcpt.controller.state import BUDGET, LOST, SKIPPED, SUBMITTING, SUPERSEDED, StateStore, TaskRow
from morphcpt.controller.states import ACTIVE_STATES, DONE_STATES, FAILURE_STATES, StageState
from morphcpt.controller.tasks import TaskSpec, task_completion, task_spec
from morphcpt.graph import StageJob, build_graph
from morphcpt.progress import PROGRESS_DIR
from morphcpt.render.scripts import RenderTarget, job_log_path
from morphcpt.stages.base import Completion


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 3  # counted failures of one task before it is given up
    max_resumes: int = 50  # time-budget / walltime resubmissions of one training run
    backoff_seconds: float = 5.0  # before resubmitting a failed task; doubles with each failure


@dataclass
class StepReport:
    submitted: list[str]
    stopped: dict[str, str]  # stage -> why it was given up
    done: bool

    @property
    def failed(self) -> bool:
        return bool(self.stopped)


def _log_tail(path: str | None, lines: int = 1) -> str:
    if not path or not Path(path).exists():
        return ""
    text = Path(path).read_bytes()[-4096:].decode("utf-8", "replace")
    # The job's own bookkeeping ("[morphcpt] ... exit status 2 at <time>") is never the error, and its time
    # would make two identical failures look different.
    kept = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[morphcpt]")]
    return " | ".join(kept[-lines:])


def _failure_tail(row: TaskRow) -> str:
    """The last line of the scheduler's log, or of the job's own log when the scheduler's never arrived (PBS
    delivers -o only at the end, and to undelivered/ when it cannot)."""
    own = job_log_path(row.log_path, row.token) if row.log_path else None
    return _log_tail(row.log_path) or _log_tail(str(own) if own else None)


class Controller:
    def __init__(
        self,
        target: RenderTarget,
        store: StateStore,
        backend: Backend,
        policy: Policy | None = None,
    ) -> None:
        self.target = target
        self.store = store
        self.backend = backend
        self.policy = policy or Policy()
        self.graph = build_graph(target.experiment)
        self.jobs = self.graph.jobs
        self.order = list(self.jobs)
        self.ctx = target.context
        self._disk: dict[tuple[str, int], Completion] = {}
        self.lock: object | None = None  # the controller lock, held for the controller's lifetime
        self.read_only = False  # opened beside another controller: look, never write

    def completion(self, job: StageJob, task: int) -> Completion:
        """What the disk says of a task (asked once per step: the markers are the truth, not the database)."""
        key = (job.name, task)
        if key not in self._disk:
            self._disk[key] = task_completion(self.ctx, job, task)
        return self._disk[key]

    @property
    def experiment(self) -> Experiment:
        return self.target.experiment

    @property
    def profile(self) -> ClusterProfile:
        return self.target.profile

    # ---------------------------------------------------------------- set-up

    def register(self) -> None:
        self.store.set_meta(
            {
                "snapshot": str(self.target.experiment_path.parent),
                "workdir": str(self.target.workdir),
                "scheduler": self.profile.scheduler,
            }
        )
        self.store.sync_stages([(j.name, j.kind, j.array_size, j.after, j.params) for j in self.jobs.values()])

    def spec(self, job: StageJob, task: int) -> TaskSpec:
        progress = self.store.path.parent / PROGRESS_DIR
        return task_spec(self.ctx, job, task, ngpus=self.target.resources(job).ngpus, progress_dir=progress)

    def unit(self, job: StageJob, tasks: list[int], depends: list[str], token: str) -> SubmitUnit:
        return SubmitUnit([self.spec(job, t) for t in tasks], token=token, depends=depends)

    def _record_submitted(self, unit: SubmitUnit, raw_id: str, job_ids: list[str]) -> None:
        logs = [self.backend.log_path(unit, index) for index in range(len(job_ids))]
        self.store.finish_submission(unit.token, raw_id, job_ids, logs)

    # ---------------------------------------------------------------- crash recovery

    def recover_interrupted_submissions(self) -> None:
        """Submissions written as SUBMITTING by a controller that died: adopt the job if it reached the
        scheduler (found by its unique name), forget the row otherwise."""
        for token, stage, tasks, depends in self.store.pending_submissions():
            job = self.jobs.get(stage)
            unit = self.unit(job, tasks, depends, token) if job else None
            found = self.backend.adopt(unit) if unit else None
            if unit is None or found is None:
                self.store.drop_submission(token)
            else:
                self._record_submitted(unit, *found)

    # ---------------------------------------------------------------- polling

    def poll(self) -> None:
        """One batched scheduler query for every active task; finished ones get their final state."""
        active = [r for r in self.store.latest_tasks().values() if r.state in ACTIVE_STATES and r.job_id]
        if not active:
            return
        try:
            states = self.backend.states(sorted({r.job_id for r in active if r.job_id}))
        except TransientSchedulerError:
            return  # try again at the next poll; nothing is concluded from a failed query
        updates = []
        never_ran = []
        for row in active:
            assert row.job_id is not None
            job = self.jobs.get(row.stage)
            info = states.get(row.job_id)
            if info is not None and info.state == NO_ANSWER:
                continue  # the scheduler said nothing clear about it this time: keep what was recorded
            if info is None:
                # The scheduler no longer knows the job (it aged out, e.g. Slurm's MinJobAge): the disk decides.
                state, code, reason = self._aged_out(job, row)
                updates.append((state, code, reason, None, time.time(), row.stage, row.task, row.attempt))
                continue
            state, reason = info.state, info.reason
            if (
                job is not None
                and job.stage.resumable
                and ((state == FAILED and info.exit_code == exit_codes.TIME_BUDGET_REACHED) or state == TIMEOUT)
            ):
                state = BUDGET
                reason = self._no_progress(job, row, info.started, info.ended) or reason
                if reason.startswith("no progress"):
                    state = FAILED
            if state == COMPLETED and job is not None:
                # A job that exited 0 without leaving a valid marker did not do its work: a failure, not a loop.
                left = task_completion(self.ctx, job, row.task)
                if not left.done:
                    state, reason = FAILED, f"exited 0, but {left.why}"
            if state == FAILED and not reason.startswith(("exited 0", "no progress")):
                reason = f"exit {info.exit_code}: {_failure_tail(row)}"
            if state == CANCELLED and not (info.started or row.started):
                never_ran.append(row)  # deleted before it ran (its dependency failed): not a failure of its own
            if (state, reason) != (row.state, row.reason) or info.started != row.started:
                updates.append(
                    (state, info.exit_code, reason, info.started, info.ended, row.stage, row.task, row.attempt)
                )
        self.store.update_tasks(updates)
        self.store.mark(never_ran, CANCELLED, counted=0)

    # ---------------------------------------------------------------- decisions

    def _decide(
        self, job: StageJob, task: int, history: list[TaskRow], now: float, stale: str | None
    ) -> tuple[str, str]:
        """('done'|'active'|'submit'|'wait'|'stop', why) for one task from the disk and its attempts so far.
        `stale` says which upstream job (re)runs, when one does: then a finished task runs again."""
        last = history[-1] if history else None
        if last is None or last.state in DONE_STATES:
            disk = self.completion(job, task)
            if disk.done and stale is None:
                if last is None:
                    self.store.record_skipped(job.name, [task])
                return "done", ""
            return "submit", disk.why if not disk.done else stale or ""
        if last.state in ACTIVE_STATES or last.state == SUBMITTING:
            return "active", ""
        if last.state == SUPERSEDED or (last.state == CANCELLED and not last.started):
            return "submit", ""  # cancelled before it ran (re-wiring, or its dependency failed): not a failure
        if last.state == BUDGET:
            resumes = sum(1 for r in history if r.state == BUDGET)
            if resumes > self.policy.max_resumes:
                return "stop", f"still short of its target after {resumes} resumes"
            return "submit", ""
        counted = [r for r in history if r.counted and r.state in FAILURE_STATES and r.state != BUDGET]
        stalled = [r for r in counted[-2:] if (r.reason or "").startswith("no progress")]
        if len(stalled) == 2:
            # Twice no step forward: the budget cannot cover the start-up, and a third try would not either.
            return "stop", f"{stalled[-1].reason}; give the job more walltime (or a smaller margin)"
        if len(counted) >= 2 and counted[-1].state == counted[-2].state == FAILED:
            a, b = counted[-2], counted[-1]
            if (a.exit_code, a.reason) == (b.exit_code, b.reason):
                return "stop", f"failed twice with the same error ({b.reason})"
        if len(counted) >= self.policy.max_attempts:
            return "stop", f"{len(counted)} failed attempts, last: {last.state} {last.reason or ''}".strip()
        ready_at = (last.ended or now) + self.policy.backoff_seconds * 2 ** (len(counted) - 1)
        return ("submit", "") if now >= ready_at else ("wait", "backoff")

    def select(self, stages: list[str] | None) -> None:
        """Limit the run to these stages and what they need (None: the whole experiment); remembered."""
        self.store.set_meta({"targets": json.dumps(sorted(stages) if stages else [])})

    def selected(self) -> list[str]:
        targets = json.loads(self.store.get_meta("targets") or "[]")
        if not targets:
            return self.order
        needed = set(targets) | self.graph.upstream(set(targets))
        return [name for name in self.order if name in needed]

    def _downstream(self, names: set[str]) -> set[str]:
        return self.graph.downstream(names)

    def step(self) -> StepReport:
        """Poll, decide, (re)submit. Returns what happened; `done` once every stage is complete."""
        self.recover_interrupted_submissions()
        self.poll()
        now = time.time()
        history: dict[tuple[str, int], list[TaskRow]] = defaultdict(list)
        for row in self.store.tasks():
            history[(row.stage, row.task)].append(row)
        stages = {s.name: s for s in self.store.stages()}

        decisions: dict[str, dict[int, tuple[str, str]]] = {}
        selected = self.selected()
        self._disk = {}
        # job -> (the job where the cause lies, why it runs): carried downstream so every line names the root cause
        rerunning: dict[str, tuple[str, str]] = {}
        for name in selected:
            job = self.jobs[name]
            held = stages[name].state in (StageState.CANCELLED, StageState.FAILED)
            decisions[name] = {}
            stale = self._stale(job, rerunning, history)
            for task in job.tasks():
                verdict = self._decide(job, task, history[(name, task)], now, stale)
                if verdict[0] in ("submit", "wait", "active") and name not in rerunning:
                    upstream = next((rerunning[u] for u in job.after if u in rerunning), None)
                    rerunning[name] = upstream if upstream and verdict[1] == stale else (name, verdict[1] or "it runs")
                if held and verdict[0] == "submit":
                    verdict = ("stop", stages[name].message or stages[name].state)
                decisions[name][task] = verdict

        stopped = {
            name: next(why for v, why in d.values() if v == "stop")
            for name, d in decisions.items()
            if any(v == "stop" for v, _ in d.values())
        }
        blocked = self._downstream(set(stopped)) & set(selected)
        self._cancel_blocked(blocked, stopped)
        for name, why in stopped.items():
            if stages[name].state != StageState.CANCELLED:
                self.store.set_stage_state(name, StageState.FAILED, why)

        submitted = self._submit_ready(decisions, blocked | set(stopped))
        done = all(v == "done" for d in decisions.values() for v, _ in d.values())
        for name, d in decisions.items():
            if name not in stopped and name not in blocked and stages[name].state != StageState.CANCELLED:
                state = StageState.DONE if all(v == "done" for v, _ in d.values()) else StageState.ACTIVE
                if stages[name].state != state:
                    self.store.set_stage_state(name, state)
        return StepReport(submitted=submitted, stopped=stopped, done=done)

    def _aged_out(self, job: StageJob | None, row: TaskRow) -> tuple[str, int | None, str]:
        """The final state of a job the scheduler forgot, from its outputs: complete, or (a resumable stage)
        advanced and stopped at its budget, or lost."""
        if job is not None and task_completion(self.ctx, job, row.task).done:
            return COMPLETED, 0, ""
        if job is not None and job.stage.resumable:
            step, _ = job.stage.progress(self.ctx, job, row.task)
            if step is not None and row.progress is not None and step > row.progress:
                return BUDGET, exit_codes.TIME_BUDGET_REACHED, "left the scheduler's memory; its checkpoint advanced"
        return LOST, None, "unknown to the scheduler"

    def _no_progress(self, job: StageJob, row: TaskRow, started: float | None, ended: float | None) -> str:
        """'no progress in N s: start-up took M s of a B s budget' when a resumable attempt stopped at its
        budget without advancing: resubmitting it would only repeat the start-up (a livelock)."""
        step, note = job.stage.progress(self.ctx, job, row.task)
        if step is None or row.progress is None or step > row.progress:
            return ""
        ran = (ended or time.time()) - (started or row.submitted or time.time())
        return f"no progress in {ran:.0f} s" + (f": {note}" if note else "")

    def _stale(
        self, job: StageJob, rerunning: dict[str, tuple[str, str]], history: dict[tuple[str, int], list[TaskRow]]
    ) -> str | None:
        """Why this job must run again although its own outputs look complete: an upstream job runs now, or ran
        after this job's last run (Snakemake's "input updated by another job"). The job itself then finds out
        from its inputs' checksums whether there is anything to redo."""
        own = [r.submitted or 0.0 for t in job.tasks() for r in history.get((job.name, t), [])]
        last_own = max(own, default=None)
        for upstream in job.after:
            if upstream in rerunning:
                origin, why = rerunning[upstream]
                return f"{why} (in {origin})"
            ran = [
                r.submitted or 0.0
                for t in self.jobs[upstream].tasks()
                for r in history.get((upstream, t), [])
                if r.state != SKIPPED
            ]
            if last_own is not None and ran and max(ran) > last_own:
                return f"{upstream} ran again"
        return None

    def _cancel_active(self, stages: set[str], reason: str) -> list[str]:
        """Cancel the stages' queued and running jobs; the tasks are recorded as cancelled, not failed."""
        rows = [r for r in self.store.latest_tasks().values() if r.stage in stages and r.state in ACTIVE_STATES]
        ids = [r.job_id for r in rows if r.job_id]
        if ids:
            self.backend.cancel(ids)
        self.store.mark(rows, CANCELLED, counted=0, reason=reason)
        return ids

    def _cancel_blocked(self, blocked: set[str], stopped: dict[str, str]) -> None:
        if not blocked:
            return
        self._cancel_active(blocked, "upstream stage failed")
        for name in blocked:
            upstream = ", ".join(sorted(stopped))
            self.store.set_stage_state(name, StageState.BLOCKED, f"not run: {upstream} failed")

    def _active_ids(self, stage: str) -> list[str]:
        """Scheduler ids (one per submission) of a stage's tasks that are still queued or running."""
        tokens = {r.token for r in self.store.latest_tasks().values() if r.stage == stage and r.state in ACTIVE_STATES}
        return sorted({sid for token, sid in self.store.submission_ids(stage).items() if token in tokens})

    def _max_parallel_local(self) -> int:
        return self.profile.max_concurrent_tasks or os.cpu_count() or 1

    def _submit_ready(self, decisions: dict[str, dict[int, tuple[str, str]]], held: set[str]) -> list[str]:
        """Submit, in graph order, every task that may go now. With native dependencies a stage goes as soon
        as its upstream stages are submitted (afterok on their queued jobs); otherwise once they are done."""
        native = self.backend.native_dependencies
        submitted: list[str] = []
        latest = self.store.latest_tasks()
        running = sum(1 for r in latest.values() if r.state in ACTIVE_STATES)
        for name in decisions:
            job = self.jobs[name]
            todo = [task for task, (v, _) in decisions[name].items() if v == "submit"]
            if not todo or name in held:
                continue
            upstream = {v for u in job.after for v, _ in decisions[u].values()}
            if upstream & ({"submit", "wait", "stop"} if native else {"submit", "wait", "stop", "active"}):
                continue
            depends = [sid for u in job.after for sid in self._active_ids(u)] if native else []
            if native and any(r.stage == name for r in latest.values()):
                # Dependents still queued on this stage's old jobs would wait forever: re-wire them.
                for row in self._supersede(self._downstream({name})):
                    decisions[row.stage][row.task] = ("submit", "")
            tried = {r.task: r.attempt for r in self.store.tasks(name)}  # ordered: the last attempt wins
            size = self.profile.max_array_size if native else 1
            room = self._entry_room(job, latest, decisions)
            if room is not None:
                # The entry's max_concurrent: an array carries it as %K itself; separate jobs wait their turn.
                if room <= 0:
                    continue
                if not (native and job.is_array):
                    todo = todo[:room]
            for start in range(0, len(todo), size):
                if not native and running >= self._max_parallel_local():
                    break
                part = todo[start : start + size]
                self._submit(job, {task: tried.get(task, 0) + 1 for task in part}, depends)
                running += len(part)
                for task in part:
                    decisions[name][task] = ("active", "")
                submitted.append(f"{name}[{','.join(map(str, part))}]" if job.is_array else name)
        return submitted

    def _entry_room(
        self, job: StageJob, latest: dict[tuple[str, int], TaskRow], decisions: dict[str, dict[int, tuple[str, str]]]
    ) -> int | None:
        """How many more tasks of the job's entry may be queued or running now (None: no cap)."""
        if not job.max_concurrent:
            return None
        members = set(self.graph.entries.get(job.entry, [job.name]))
        active = sum(1 for r in latest.values() if r.stage in members and r.state in ACTIVE_STATES)
        submitted_now = sum(
            1 for name in members if name in decisions for v, _ in decisions[name].values() if v == "active"
        )
        return job.max_concurrent - max(active, submitted_now)

    def _supersede(self, stages: set[str]) -> list[TaskRow]:
        rows = [r for r in self.store.latest_tasks().values() if r.stage in stages and r.state == PENDING and r.job_id]
        if rows:
            self.backend.cancel([r.job_id for r in rows if r.job_id])
            self.store.mark(rows, SUPERSEDED, counted=0, reason="re-wired to a resubmitted upstream job")
        return rows

    def _submit(self, job: StageJob, attempts: dict[int, int], depends: list[str]) -> None:
        token = new_token()
        unit = self.unit(job, list(attempts), depends, token)
        progress = {t: job.stage.progress(self.ctx, job, t)[0] for t in attempts} if job.stage.resumable else None
        self.store.begin_submission(token, job.name, attempts, unit.job_name, depends, progress)
        self._record_submitted(unit, *self.backend.submit(unit))

    # ---------------------------------------------------------------- user actions

    def cancel(self, stages: list[str] | None = None) -> list[str]:
        names = set(stages or self.order)
        # Recorded before the scheduler is asked: a controller killed in between still holds the stages, and
        # the killed jobs (which may end with exit 0 and no marker) are never resubmitted or taken for done.
        for name in names:
            self.store.set_stage_state(name, StageState.CANCELLED, "cancelled by the user; `morphcpt retry` resumes")
        return self._cancel_active(names, "cancelled by the user")

    def retry(self, stages: list[str]) -> dict[str, str]:
        """Run the given stages again: forget their failures (and unblock their dependents); a stage that is
        complete on disk has its markers removed so that it really reruns. Returns what was done per stage;
        a stage still queued or running is left alone and says so."""
        said: dict[str, str] = {}
        latest = self.store.latest_tasks()
        for name in stages:
            job = self.jobs[name]
            if any(latest.get((name, t)) and latest[(name, t)].state in ACTIVE_STATES for t in job.tasks()):
                said[name] = "still queued or running: nothing to retry (`morphcpt cancel` it first)"
                continue
            complete = [t for t in job.tasks() if self.completion(job, t).done]
            for task in complete:
                job.stage.invalidate(self.ctx, job, task)
            said[name] = (
                f"complete on disk: removed the markers of {len(complete)} task(s), it reruns"
                if complete
                else "reruns its unfinished tasks"
            )
        names = set(stages) | self._downstream(set(stages))
        failed = [r for r in self.store.tasks() if r.stage in names and r.state in FAILURE_STATES]
        self.store.mark(failed, SUPERSEDED, counted=0)
        for name in names:
            self.store.set_stage_state(name, StageState.WAITING)
        self._disk = {}
        return said
