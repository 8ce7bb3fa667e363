"""Slurm through submitit's SlurmExecutor, extended: our scripts, arrays of any task subset, `afterok`
dependencies, and job state from `scontrol show job` (many clusters, and the test cluster, run no `sacct`)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from submitit.core import core
from submitit.slurm.slurm import SlurmExecutor, SlurmJob

from morphcpt.cluster.base import Scheduler
from morphcpt.controller.executors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    Backend,
    JobState,
    ScriptSubmission,
    SubmititBackend,
    SubmitUnit,
    run_scheduler_command,
)
from morphcpt.render.scripts import RenderTarget

_STATES = {
    "PENDING": PENDING,
    "CONFIGURING": PENDING,
    "REQUEUED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING,
    "RESV_DEL_HOLD": PENDING,
    "RUNNING": RUNNING,
    "COMPLETING": RUNNING,
    "SUSPENDED": RUNNING,
    "STAGE_OUT": RUNNING,
    "RESIZING": RUNNING,
    "SIGNALING": RUNNING,
    "COMPLETED": COMPLETED,
    "TIMEOUT": TIMEOUT,
    "DEADLINE": TIMEOUT,
    "CANCELLED": CANCELLED,
    "PREEMPTED": CANCELLED,
    "REVOKED": CANCELLED,
}


def _expand_tasks(spec: str) -> list[str]:
    """`0-3%2` or `1,4,7-8` (an array whose tasks have not started yet) -> each index."""
    indices: list[str] = []
    for part in spec.split("%")[0].split(","):
        if "-" in part:
            low, high = part.split("-")
            indices.extend(str(i) for i in range(int(low), int(high) + 1))
        elif part:
            indices.append(part)
    return indices


def _time(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def parse_scontrol(text: str) -> dict[str, dict[str, str]]:
    """`scontrol show job -o` -> {submitit job id: fields}; array tasks are keyed `<array id>_<index>`."""
    jobs: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "JobId" not in fields:
            continue
        array_id, task = fields.get("ArrayJobId"), fields.get("ArrayTaskId")
        if array_id and task:
            for index in _expand_tasks(task):
                jobs[f"{array_id}_{index}"] = fields
        else:
            jobs[fields["JobId"]] = fields
    return jobs


def job_state(fields: dict[str, str]) -> JobState:
    raw = fields.get("JobState", "")
    code_text = fields.get("ExitCode", "0:0")
    code, _, signal = code_text.partition(":")
    exit_code = int(code) if code.isdigit() else None
    if signal.isdigit() and int(signal) and not exit_code:
        exit_code = 128 + int(signal)
    state = _STATES.get(raw, FAILED)  # FAILED, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, ...
    return JobState(
        state=state,
        exit_code=exit_code,
        reason=f"{raw} ({fields.get('Reason', 'None')})" if state not in (PENDING, RUNNING, COMPLETED) else raw,
        # A job cancelled while queued has a StartTime but never ran (RunTime 0).
        started=_time(fields.get("StartTime", ""))
        if state != PENDING and fields.get("RunTime") != "00:00:00"
        else None,
        ended=_time(fields.get("EndTime", "")) if state not in (PENDING, RUNNING) else None,
    )


class ScontrolWatcher(core.InfoWatcher):
    """submitit's watcher model (one batched call for all jobs) on `scontrol show job -o` instead of sacct."""

    def _make_command(self) -> list[str] | None:
        return ["scontrol", "show", "job", "-o"] if self._registered - self._finished else None

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        return {job_id: {**fields, "State": job_state(fields).state} for job_id, fields in parse_scontrol(text).items()}

    def get_state(self, job_id: str, mode: str = "standard") -> str:
        return self.get_info(job_id, mode=mode).get("State") or "UNKNOWN"


class MorphcptSlurmJob(SlurmJob[Any]):
    watcher = ScontrolWatcher(delay_s=60)


class MorphcptSlurmExecutor(ScriptSubmission, SlurmExecutor):
    job_class = MorphcptSlurmJob
    scheduler_name = "slurm"
    script_suffix = ".sbatch"

    def submission_command(self, script: Path | str) -> list[str]:
        command = ["sbatch", "--parsable"]
        if self.dependency_ids():
            # An afterok that can never be met cancels the dependent at once instead of leaving it pending.
            command += [f"--dependency=afterok:{':'.join(self.dependency_ids())}", "--kill-on-invalid-dep=yes"]
        return [*command, str(script)]

    def _submit_script(self) -> str:
        output = run_scheduler_command(self.submission_command(self.write_script()))
        job_id = output.strip().split(";")[0]
        if not re.fullmatch(r"\d+", job_id):
            raise RuntimeError(f"could not read a job id from sbatch's output {output!r}")
        return job_id


class SlurmBackend(SubmititBackend):
    name = "slurm"

    def __init__(self, target: RenderTarget, folder: Path) -> None:
        super().__init__(target, MorphcptSlurmExecutor(folder, python=target.profile.python))

    @staticmethod
    def _all_jobs() -> dict[str, dict[str, str]]:
        return parse_scontrol(run_scheduler_command(["scontrol", "show", "job", "-o"]))

    def adopt(self, unit: SubmitUnit) -> tuple[str, list[str]] | None:
        for fields in self._all_jobs().values():
            if fields.get("JobName") == unit.job_name:
                return self._adopted(unit, fields.get("ArrayJobId") or fields["JobId"])
        return None

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        if not job_ids:
            return {}
        jobs = self._all_jobs()
        return {job_id: job_state(jobs[job_id]) for job_id in job_ids if job_id in jobs}

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            run_scheduler_command(["scancel", *job_ids])


class SlurmScheduler(Scheduler):
    name = "slurm"
    script_suffix = ".sbatch"
    header_template = "slurm/header.j2"
    index_variable = "SLURM_ARRAY_TASK_ID"
    job_id_variable = "SLURM_JOB_ID"
    supports_pyxis = True
    tools = ("sbatch", "squeue", "scontrol", "scancel")

    def log_path(self, logs: Path, job_name: str, array: bool) -> str:
        return str(logs / (f"{job_name}_%A_%a.log" if array else f"{job_name}_%j.log"))

    def submit_line(
        self,
        var: str,
        job_name: str,
        script: str,
        depends: list[str],
        array_size: int | None,
        after_any: tuple[str, ...] | list[str] = (),
    ) -> str:
        # Comma-separated types must all hold: --dependency=afterok:A:B,afterany:C.
        kinds = [f"{kind}:{':'.join(ids)}" for kind, ids in (("afterok", depends), ("afterany", after_any)) if ids]
        depend = f"--dependency={','.join(kinds)} " if kinds else ""
        if depends:
            # As the controller submits: an afterok that can never be met cancels the job instead of leaving
            # it pending for good, which would also hold every job waiting its turn behind it (afterany).
            depend += "--kill-on-invalid-dep=yes "
        return f'{var}=$(sbatch --parsable {depend}{script}); echo "{job_name}: ${var}"'

    def node_list(self) -> str:
        return 'scontrol show hostnames "${SLURM_JOB_NODELIST:?SLURM_JOB_NODELIST is not set: submit with sbatch}"'

    def remote_launch(self) -> str:
        return 'srun --nodes=1 --ntasks=1 --nodelist="${MORPHCPT_NODES[$rank]}"'

    def backend(self, target: RenderTarget, folder: Path) -> Backend:
        return SlurmBackend(target, folder)


SCHEDULER = SlurmScheduler
