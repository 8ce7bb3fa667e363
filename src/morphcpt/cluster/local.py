"""This machine as a scheduler, on submitit's LocalExecutor and LocalJobEnvironment.

submitit's own local controller loses each task's exit status and kills at the timeout without SIGTERM, so
this executor starts the rendered script itself under coreutils `timeout` (SIGTERM at the walltime, like a
cluster) and records the exit status in a file, which outlives the controller process.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from submitit.local.local import LocalExecutor

from morphcpt.cluster.base import Scheduler
from morphcpt.controller.executors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    RUNNING,
    TIMEOUT,
    Backend,
    JobState,
    ScriptSubmission,
    SubmititBackend,
    SubmitUnit,
)
from morphcpt.processes import alive
from morphcpt.render.scripts import RenderTarget

# $1 script, $2 exit-status file, $3 walltime in seconds. `timeout` exits 124 when the walltime struck.
_WRAPPER = 'timeout -s TERM -k 30 "$3" bash "$1"; s=$?; echo "$s" > "$2.tmp" && mv "$2.tmp" "$2"'
TIMEOUT_STATUS = 124


class MorphcptLocalExecutor(ScriptSubmission, LocalExecutor):
    scheduler_name = "local"

    def __init__(self, folder: Path, target: RenderTarget) -> None:
        super().__init__(folder, python=target.profile.python)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _submit_script(self) -> str:
        assert self._target is not None and self._unit is not None
        if len(self._unit.specs) != 1:
            raise ValueError("the local executor runs one task per process")
        job_id = f"local-{self._unit.token}"
        folder = Path(self.folder)
        script = self.write_script()
        log = Path(self.log_path(0))
        walltime = self._target.resources(self._unit.job).walltime_seconds
        env = {
            **os.environ,
            "SUBMITIT_EXECUTOR": "local",
            "SUBMITIT_LOCAL_JOB_ID": job_id,
            "MORPHCPT_TASK_INDEX": str(self._unit.specs[0].task),
        }
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["bash", "-c", _WRAPPER, "morphcpt-local", str(script), str(exit_file(folder, job_id)), str(walltime)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._target.workdir,
                env=env,
                start_new_session=True,  # the job survives the controller, like a batch job
            )
        pid_file(folder, job_id).write_text(str(process.pid))
        self.processes[job_id] = process
        return job_id


def exit_file(folder: Path, job_id: str) -> Path:
    return folder / f"{job_id}.exit"


def pid_file(folder: Path, job_id: str) -> Path:
    return folder / f"{job_id}.pid"


class LocalBackend(SubmititBackend):
    name = "local"
    native_dependencies = False

    def __init__(self, target: RenderTarget, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        super().__init__(target, MorphcptLocalExecutor(folder, target))

    def adopt(self, unit: SubmitUnit) -> tuple[str, list[str]] | None:
        job_id = f"local-{unit.token}"
        return self._adopted(unit, job_id) if pid_file(self.folder, job_id).exists() else None

    def _state(self, job_id: str) -> JobState | None:
        process = self.executor.processes.get(job_id)
        if process is not None:
            process.poll()  # reaps the child, so a finished job is not mistaken for a live zombie
        done, pids = exit_file(self.folder, job_id), pid_file(self.folder, job_id)
        started = pids.stat().st_mtime if pids.exists() else None
        if done.exists():
            code = int(done.read_text().strip() or 1)
            times = {"started": started, "ended": done.stat().st_mtime}
            if code == 0:
                return JobState(COMPLETED, 0, **times)
            if code == TIMEOUT_STATUS:
                return JobState(TIMEOUT, code, reason="walltime reached (timeout)", **times)
            if code >= 128 and code - 128 in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
                return JobState(CANCELLED, code, reason=f"killed by signal {code - 128}", **times)
            return JobState(FAILED, code, **times)
        if started is not None and alive(int(pids.read_text())):
            return JobState(RUNNING, started=started)
        return None

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        found = {job_id: self._state(job_id) for job_id in job_ids}
        return {job_id: state for job_id, state in found.items() if state is not None}

    def cancel(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            pids = pid_file(self.folder, job_id)
            if pids.exists():
                try:
                    os.killpg(int(pids.read_text()), signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def submission_command(self, unit: SubmitUnit, script: str) -> list[str]:
        return ["bash", script]


class LocalScheduler(Scheduler):
    """This machine: jobs run as processes, one after another by hand, in parallel under the controller."""

    name = "local"
    script_suffix = ".sh"
    header_template = "local/header.j2"
    native_dependencies = False
    tools = ()

    def submit_preamble(self) -> list[str]:
        return ["# The local profile runs each job in turn; array tasks one after another."]

    def submit_line(
        self,
        var: str,
        job_name: str,
        script: str,
        depends: list[str],
        array_size: int | None,
        after_any: tuple[str, ...] | list[str] = (),
    ) -> str:
        # The jobs run one after another in listing order, which respects dependencies and turns alike.
        if array_size:
            return f"for i in $(seq 1 {array_size}); do MORPHCPT_TASK_INDEX=$i bash {script}; done"
        return f"bash {script}"

    def remote_launch(self) -> str:
        return ""  # one node: the command runs here

    def backend(self, target: RenderTarget, folder: Path) -> Backend:
        return LocalBackend(target, folder)


SCHEDULER = LocalScheduler
