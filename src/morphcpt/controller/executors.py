"""submitit executors that submit morphcpt's own job scripts: shared parts for Slurm, PBS Pro and local.

submitit pickles the task (`tasks.run_task`) and provides the command that runs it; these executors wrap that
command in the same Jinja header, prologue and container wrapper as the hand-submitted scripts, submit arrays
of any subset of tasks, add native dependencies, and retry transient scheduler errors.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from submitit.core import core, utils

from morphcpt.controller.states import TaskState
from morphcpt.controller.tasks import TaskSpec, run_task
from morphcpt.errors import MorphcptError
from morphcpt.render.scripts import ControllerBody, RenderTarget, render_job

# Scheduler messages that mean "try again": the controller or server was briefly unreachable or busy.
TRANSIENT = re.compile(
    r"socket timed out|connection refused|connection timed out|resource temporarily unavailable|"
    r"unable to contact slurm controller|slurm_load_jobs error|try again|temporar(il)?y|"
    r"cannot connect to server|pbs_iff|communication failure|server busy",
    re.IGNORECASE,
)
SUBMIT_RETRIES = 4


class SchedulerError(MorphcptError):
    """The scheduler refused a command; the message holds its own words."""


class TransientSchedulerError(SchedulerError):
    """The scheduler could not be reached; the same command may work a little later."""


# The states the controller reasons about, whatever the scheduler calls them.
# (The one vocabulary is morphcpt.controller.states; these names are what the executors translate into.)
PENDING, RUNNING, COMPLETED = TaskState.PENDING, TaskState.RUNNING, TaskState.COMPLETED
FAILED, TIMEOUT, CANCELLED = TaskState.FAILED, TaskState.TIMEOUT, TaskState.CANCELLED
# Not a state: a status query that gave no answer for this id (neither a state nor "unknown job"). The engine
# keeps what it recorded and asks again at the next poll; a job missing from an answer is not a job gone.
NO_ANSWER = "NO_ANSWER"


@dataclass(frozen=True)
class JobState:
    state: str
    exit_code: int | None = None
    reason: str = ""
    started: float | None = None
    ended: float | None = None


@dataclass
class SubmitUnit:
    """One scheduler submission: a stage's tasks (an array when more than one), after `depends` succeed."""

    specs: list[TaskSpec]
    token: str
    depends: list[str] = field(default_factory=list)

    @property
    def job(self):  # type: ignore[no-untyped-def]
        return self.specs[0].job

    @property
    def job_name(self) -> str:
        # The token makes the submission findable after a controller crash (see Backend.adopt).
        return f"{self.job.name}.{self.token}"


def new_token() -> str:
    return uuid.uuid4().hex[:10]


def run_scheduler_command(argv: list[str], retries: int = SUBMIT_RETRIES, delay: float = 1.0) -> str:
    """Run a scheduler command; transient failures are retried with backoff, permanent ones raise at once."""
    for attempt in range(retries + 1):
        try:
            return utils.CommandFunction(argv, verbose=False)()  # type: ignore[no-any-return]
        except utils.FailedJobError as error:
            message = str(error).strip()
            if TRANSIENT.search(message) and attempt < retries:
                time.sleep(delay * 2**attempt)
                continue
            kind = TransientSchedulerError if TRANSIENT.search(message) else SchedulerError
            raise kind(f"`{' '.join(argv[:1])}` failed: {message}") from None
        except FileNotFoundError:
            raise SchedulerError(f"`{argv[0]}` not found: is this a {argv[0]} cluster login node?") from None
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class CommandResult:
    """What a scheduler command printed and how it exited, for callers that read its failures themselves."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def scheduler_result(argv: list[str], retries: int = SUBMIT_RETRIES, delay: float = 1.0) -> CommandResult:
    """Run a scheduler command and return its exit status and output, whatever the status: the caller decides
    what a non-zero exit means (qstat exits non-zero when one of several ids is unknown). Transient failures
    are retried with backoff and then raise TransientSchedulerError."""
    for attempt in range(retries + 1):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        except FileNotFoundError:
            raise SchedulerError(f"`{argv[0]}` not found: is this a {argv[0]} cluster login node?") from None
        except subprocess.TimeoutExpired:
            done = subprocess.CompletedProcess(argv, 1, "", f"{argv[0]} timed out: try again")
        result = CommandResult(argv, done.returncode, done.stdout, done.stderr)
        if result.returncode == 0 or not TRANSIENT.search(result.stderr):
            return result
        if attempt < retries:
            time.sleep(delay * 2**attempt)
    raise TransientSchedulerError(f"`{' '.join(argv[:1])}` failed: {result.stderr.strip()}")


class ScriptSubmission:
    """Mixin for a submitit PicklingExecutor: our script around submitit's command, arrays, dependencies."""

    folder: Path
    job_class: type[core.Job[Any]]
    scheduler_name: str = ""
    script_suffix: str = ".sh"
    # How an array task's log is named: `<token><separator><index>.log`, the index filled in by the scheduler.
    array_log_separator: str = "_"
    array_log_placeholder: str = "%a"
    _target: RenderTarget | None = None
    _unit: SubmitUnit | None = None

    def prepare(self, target: RenderTarget, unit: SubmitUnit) -> None:
        self._target, self._unit = target, unit

    def log_path(self, index: int | None) -> str:
        """Where a task logs; `None` gives the pattern the scheduler fills in (per array task)."""
        assert self._target is not None and self._unit is not None
        directory = self._target.logs_dir / self._unit.job.name
        if len(self._unit.specs) == 1:
            return str(directory / f"{self._unit.token}.log")
        shown = self.array_log_placeholder if index is None else str(index)
        return str(directory / f"{self._unit.token}{self.array_log_separator}{shown}.log")

    def write_script(self) -> Path:
        """The submission's script in the submitit folder (its log directory made too), ready to submit."""
        assert self._unit is not None
        Path(self.log_path(0)).parent.mkdir(parents=True, exist_ok=True)
        script = Path(self.folder) / f"{self._unit.job.name}.{self._unit.token}{self.script_suffix}"
        script.write_text(self.script_text(self._submitit_command_str), encoding="utf-8")
        return script

    def controller_body(self, command: str) -> ControllerBody:
        assert self._unit is not None
        return ControllerBody(
            command=command,
            executor=self.scheduler_name,
            token=self._unit.token,
            job_name=self._unit.job_name,
            tasks=len(self._unit.specs),
            log_path=self.log_path(None),
        )

    def script_text(self, command: str) -> str:
        assert self._target is not None and self._unit is not None
        return render_job(self._unit.job, self._target, controller=self.controller_body(command))

    def dependency_ids(self) -> list[str]:
        return list(self._unit.depends) if self._unit else []

    def _submit_unit_ids(self, base_id: str, count: int) -> list[str]:
        return [base_id] if count == 1 else [f"{base_id}_{i}" for i in range(count)]

    def submit_unit(self) -> tuple[str, list[core.Job[Any]]]:
        """Pickle every task, submit once, and return the scheduler's id and one submitit Job per task."""
        assert self._unit is not None
        delayed = [utils.DelayedSubmission(run_task, spec) for spec in self._unit.specs]
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        pickles = []
        for item in delayed:
            path = folder / f".{uuid.uuid4().hex}.pkl"
            item.dump(path)
            pickles.append(path)
        raw_id = self._submit_script()
        fault_hook()
        ids = self._submit_unit_ids(self.base_id(raw_id), len(delayed))
        jobs = [self.job_class(folder=self.folder, job_id=job_id) for job_id in ids]
        for job, path in zip(jobs, pickles, strict=True):
            job.paths.move_temporary_file(path, "submitted_pickle")
        return raw_id, jobs

    def write_pickles(self, raw_id: str) -> None:
        """Re-create the pickles of a submission adopted after a controller crash (jobs wait 60 s for them)."""
        assert self._unit is not None
        ids = self._submit_unit_ids(self.base_id(raw_id), len(self._unit.specs))
        for job_id, spec in zip(ids, self._unit.specs, strict=True):
            paths = utils.JobPaths(self.folder, job_id=job_id)
            if not paths.submitted_pickle.exists():
                paths.folder.mkdir(parents=True, exist_ok=True)
                utils.DelayedSubmission(run_task, spec).dump(paths.submitted_pickle)

    def base_id(self, raw_id: str) -> str:
        return raw_id

    @property
    def _submitit_command_str(self) -> str:
        # Relative to the workdir when inside it: containers mount the workdir elsewhere.
        folder = Path(self.folder).absolute()
        if self._target is not None and folder.is_relative_to(self._target.workdir):
            folder = folder.relative_to(self._target.workdir)
        python = self._target.profile.python if self._target else "python3"
        return " ".join([shlex.quote(python), "-u -m submitit.core._submit", shlex.quote(str(folder))])

    @abstractmethod
    def _submit_script(self) -> str:
        """Write the script, submit it, return the scheduler's job id."""


class Backend(ABC):
    """What the controller needs from a scheduler. Status queries are one command for all jobs."""

    name: str
    native_dependencies: bool = True

    @abstractmethod
    def submit(self, unit: SubmitUnit) -> tuple[str, list[str]]:
        """Submit; return the id dependents wait on, and one job id per task (in the unit's order)."""

    @abstractmethod
    def adopt(self, unit: SubmitUnit) -> tuple[str, list[str]] | None:
        """The ids of a submission of this unit that reached the scheduler before a crash, if any."""

    @abstractmethod
    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        """Current state of each job id the scheduler still knows; raises TransientSchedulerError."""

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None: ...

    @abstractmethod
    def script(self, unit: SubmitUnit) -> str:
        """The script that `submit` would send (for --dry-run)."""

    @abstractmethod
    def log_path(self, unit: SubmitUnit, index: int) -> str: ...

    def submission_command(self, unit: SubmitUnit, script: str) -> list[str]:
        """The exact command line that submits `script` (for --dry-run and tests)."""
        raise NotImplementedError


class SubmititBackend(Backend):
    """A Backend whose submissions go through one of the ScriptSubmission executors above."""

    executor: Any

    def __init__(self, target: RenderTarget, executor: ScriptSubmission) -> None:
        self.target = target
        self.executor = executor

    def _prepared(self, unit: SubmitUnit) -> Any:
        self.executor.prepare(self.target, unit)
        return self.executor

    def submit(self, unit: SubmitUnit) -> tuple[str, list[str]]:
        raw_id, jobs = self._prepared(unit).submit_unit()
        return raw_id, [job.job_id for job in jobs]

    def _adopted(self, unit: SubmitUnit, raw_id: str) -> tuple[str, list[str]]:
        executor = self._prepared(unit)
        executor.write_pickles(raw_id)
        return raw_id, executor._submit_unit_ids(executor.base_id(raw_id), len(unit.specs))

    def script(self, unit: SubmitUnit) -> str:
        return self._prepared(unit).script_text(self.executor._submitit_command_str)  # type: ignore[no-any-return]

    def submission_command(self, unit: SubmitUnit, script: str) -> list[str]:
        return self._prepared(unit).submission_command(script)  # type: ignore[no-any-return]

    def log_path(self, unit: SubmitUnit, index: int) -> str:
        return self._prepared(unit).log_path(index)  # type: ignore[no-any-return]


def fault_hook() -> None:
    """Test hook: MORPHCPT_FAULT_EXIT_AFTER_SUBMITS=N kills the controller right after its Nth submission
    reached the scheduler, before its pickles are in place or the store recorded it (the worst moment)."""
    limit = os.environ.get("MORPHCPT_FAULT_EXIT_AFTER_SUBMITS")
    if not limit:
        return
    count = int(os.environ.get("_MORPHCPT_SUBMITS", "0")) + 1
    os.environ["_MORPHCPT_SUBMITS"] = str(count)
    if count >= int(limit):
        os._exit(137)
