"""PBS Pro for submitit: an executor and job environment registered as a submitit plugin (entry-point group
`submitit`, see pyproject.toml), plus the backend the controller uses.

qsub submits (arrays with `-J`, dependencies with `-W depend=afterok:`), `qstat -x -f -F json` reads every
job's state in one call, qdel cancels. Ids: qsub prints `1234.server` or, for an array, `1234[].server`;
submitit's convention for array task 3 is `1234.server_3` (PBS itself calls it `1234[3].server`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from submitit.core import core, job_environment

from morphcpt.cluster.base import Scheduler
from morphcpt.config import Resources
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

# PBS Pro job_state letters. F/X are finished jobs and subjobs, whose Exit_status says how they ended.
_WAITING = {"Q", "H", "W", "T", "S", "U", "M"}
_ACTIVE = {"R", "E", "B"}
# PBS's own negative exit statuses (JOB_EXEC_*): -29 is a walltime kill; the rest mean PBS could not run it.
PBS_WALLTIME_EXIT = -29
_SUBJOB = re.compile(r"^(?P<num>\d+)\[(?P<index>\d*)\](?P<server>\..*)?$")


def submitit_id(pbs_id: str) -> str:
    """`1234[3].srv` -> `1234.srv_3`, `1234[].srv` -> `1234.srv`, `1234.srv` unchanged."""
    match = _SUBJOB.match(pbs_id)
    if not match:
        return pbs_id
    base = match.group("num") + (match.group("server") or "")
    return f"{base}_{match.group('index')}" if match.group("index") else base


def pbs_id(submitit_job_id: str, parent: bool = False) -> str:
    """The inverse of submitit_id: `1234.srv_3` -> `1234[3].srv`, or with `parent` its array `1234[].srv`."""
    base, _, index = submitit_job_id.partition("_")
    if not index:
        return base
    number, dot, server = base.partition(".")
    return f"{number}[{'' if parent else index}]{dot}{server}"


def _time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%a %b %d %H:%M:%S %Y").timestamp()
    except ValueError:
        return None


def job_state(fields: dict[str, Any]) -> JobState:
    letter = str(fields.get("job_state", ""))
    started, ended = _time(fields.get("stime")), _time(fields.get("obittime") or fields.get("mtime"))
    if letter in _WAITING:
        return JobState(PENDING, reason=f"PBS state {letter}")
    if letter in _ACTIVE:
        return JobState(RUNNING, started=started)
    status = fields.get("Exit_status")
    comment = str(fields.get("comment", ""))
    if status is None:
        # Finished without an exit status: deleted (qdel) before it ran.
        return JobState(CANCELLED, reason=comment or "deleted before it ran", started=started, ended=ended)
    code = int(status)
    if code == 0:
        return JobState(COMPLETED, 0, started=started, ended=ended)
    if code == PBS_WALLTIME_EXIT or "walltime" in comment.lower():
        return JobState(TIMEOUT, code, reason=comment or "walltime exceeded", started=started, ended=ended)
    if code >= 256:
        # 256 + signal: killed by a signal, as qdel does to a running job.
        return JobState(
            CANCELLED,
            128 + code - 256,
            reason=comment or f"killed by signal {code - 256}",
            started=started,
            ended=ended,
        )
    if code < 0:
        return JobState(
            FAILED,
            code,
            reason=f"PBS could not run the job (JOB_EXEC {code}) {comment}".strip(),
            started=started,
            ended=ended,
        )
    return JobState(FAILED, code, reason=comment, started=started, ended=ended)


def parse_qstat_json(text: str) -> dict[str, dict[str, Any]]:
    """`qstat -x -f -F json [-t]` -> {submitit id: fields}. PBS writes bad JSON for some attribute values
    (unescaped control characters), so the parser is lenient about those."""
    data = json.loads(text, strict=False) if text.strip() else {}
    return {submitit_id(job_id): fields for job_id, fields in data.get("Jobs", {}).items()}


class PBSInfoWatcher(core.InfoWatcher):
    """One `qstat -x -f -F json -t` for every registered job (finished ones too, thanks to -x)."""

    def _make_command(self) -> list[str] | None:
        ids = sorted({pbs_id(i, parent=True) for i in self._registered - self._finished})
        return ["qstat", "-x", "-f", "-F", "json", "-t", *ids] if ids else None

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        return {job_id: {"State": job_state(fields).state} for job_id, fields in parse_qstat_json(text).items()}

    def get_state(self, job_id: str, mode: str = "standard") -> str:
        return self.get_info(job_id, mode=mode).get("State") or "UNKNOWN"


class PBSJob(core.Job[core.R]):
    _cancel_command = "qdel"
    watcher = PBSInfoWatcher(delay_s=60)


class PBSJobEnvironment(job_environment.JobEnvironment):
    _env: ClassVar[dict[str, str]] = {
        "job_id": "PBS_JOBID",
        "array_job_id": "PBS_ARRAY_ID",
        "array_task_id": "PBS_ARRAY_INDEX",
        "num_tasks": "MORPHCPT_PBS_NTASKS",
        "num_nodes": "MORPHCPT_PBS_NNODES",
        "node": "PBS_NODENUM",
        "global_rank": "PBS_TASKNUM_ZERO",
        "local_rank": "PBS_TASKNUM_ZERO",
    }

    @property
    def job_id(self) -> str:
        if self.array_job_id and self.array_task_id:
            return f"{submitit_id(self.array_job_id)}_{self.array_task_id}"
        return self.raw_job_id

    @property
    def hostnames(self) -> list[str]:
        nodefile = os.environ.get("PBS_NODEFILE")
        if not nodefile or not Path(nodefile).exists():
            return [self.hostname]
        return list(dict.fromkeys(line.strip() for line in Path(nodefile).read_text().splitlines() if line.strip()))

    def _requeue(self, countdown: int) -> None:
        subprocess.check_call(["qrerun", os.environ["PBS_JOBID"]], timeout=60)


class PBSExecutor(ScriptSubmission, core.PicklingExecutor):
    """PBS Pro executor. Used by the controller with morphcpt's templates; also usable on its own through
    submitit (`submitit.AutoExecutor(folder, cluster="pbs")`), then with a minimal script of its own."""

    job_class = PBSJob
    scheduler_name = "pbs"
    script_suffix = ".pbs"
    # PBS Pro substitutes ^array_index^ in -o for each subjob; it has no job-id placeholder.
    array_log_separator = "."
    array_log_placeholder = "^array_index^"

    def __init__(self, folder: str | Path, python: str | None = None, max_num_timeout: int = 3) -> None:
        super().__init__(folder, max_num_timeout=max_num_timeout)
        self.python = python or "python3"

    @classmethod
    def _valid_parameters(cls) -> set[str]:
        return {"job_name", "queue", "project", "ncpus", "ngpus", "mem", "walltime", "setup"}

    @classmethod
    def affinity(cls) -> int:
        return 2 if shutil.which("qsub") and shutil.which("qstat") else -1

    def _num_tasks(self) -> int:
        return 1

    def base_id(self, raw_id: str) -> str:
        return submitit_id(raw_id)

    def submission_command(self, script: Path | str) -> list[str]:
        command = ["qsub"]
        if self.dependency_ids():
            command += ["-W", f"depend=afterok:{':'.join(self.dependency_ids())}"]
        return [*command, str(script)]

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        if self._unit is not None:
            return self.script_text(command)
        # Standalone submitit use: a minimal PBS script from update_parameters().
        p = self.parameters
        select = f"select=1:ncpus={p.get('ncpus', 1)}" + (f":ngpus={p['ngpus']}" if p.get("ngpus") else "")
        lines = [
            "#!/bin/bash",
            f"#PBS -N {p.get('job_name', 'submitit')}",
            f"#PBS -l {select}:mem={p.get('mem', '4gb')}",
        ]
        lines += [f"#PBS -l walltime={p.get('walltime', '01:00:00')}", "#PBS -j oe"]
        lines += [f"#PBS -q {p['queue']}"] if p.get("queue") else []
        lines += [f"#PBS -P {p['project']}"] if p.get("project") else []
        lines += ['cd "$PBS_O_WORKDIR"', *p.get("setup", []), "export SUBMITIT_EXECUTOR=pbs", command]
        return "\n".join(lines) + "\n"

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return self.submission_command(submission_file_path)

    @staticmethod
    def _get_job_id_from_submission_command(string: bytes | str) -> str:
        text = string.decode() if isinstance(string, bytes) else string
        match = re.search(r"^\s*(\d+(\[\])?(\.\S+)?)\s*$", text, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"could not read a job id from qsub's output {text!r}")
        return match.group(1)

    def _submit_script(self) -> str:
        return self._get_job_id_from_submission_command(
            run_scheduler_command(self.submission_command(self.write_script()))
        )

    @property
    def _submitit_command_str(self) -> str:
        if self._unit is not None:
            return ScriptSubmission._submitit_command_str.fget(self)  # type: ignore[attr-defined,no-any-return]
        return " ".join([shlex.quote(self.python), "-u -m submitit.core._submit", shlex.quote(str(self.folder))])


class PBSBackend(SubmititBackend):
    name = "pbs"

    def __init__(self, target: RenderTarget, folder: Path) -> None:
        super().__init__(target, PBSExecutor(folder, python=target.profile.python))

    def adopt(self, unit: SubmitUnit) -> tuple[str, list[str]] | None:
        found = run_scheduler_command(["qselect", "-x", "-N", unit.job_name]).split()
        return self._adopted(unit, found[0]) if found else None

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        if not job_ids:
            return {}
        # Array parents are asked for once; -t lists their subjobs.
        asked = sorted({pbs_id(i, parent=True) for i in job_ids})
        jobs = parse_qstat_json(run_scheduler_command(["qstat", "-x", "-f", "-F", "json", "-t", *asked]))
        return {job_id: job_state(jobs[job_id]) for job_id in job_ids if job_id in jobs}

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            run_scheduler_command(["qdel", *[pbs_id(i) for i in job_ids]])


class PbsScheduler(Scheduler):
    name = "pbs"
    script_suffix = ".pbs"
    header_template = "pbs/header.j2"
    index_variable = "PBS_ARRAY_INDEX"
    job_id_variable = "PBS_JOBID"
    min_array_size = 2  # PBS Pro rejects an array of one subjob
    tools = ("qsub", "qstat", "qdel")

    def memory(self, resources: Resources) -> str:
        mb = resources.mem_mb
        return f"{mb // 1024}gb" if mb % 1024 == 0 else f"{mb}mb"

    def log_path(self, logs: Path, job_name: str, array: bool) -> str:
        return str(logs / f"{job_name}{'.^array_index^' if array else ''}.log")

    def submit_line(self, var: str, job_name: str, script: str, depends: list[str], array_size: int | None) -> str:
        depend = f"-W depend=afterok:{':'.join(depends)} " if depends else ""
        return f'{var}=$(qsub {depend}{script}); echo "{job_name}: ${var}"'

    def node_list(self) -> str:
        return "awk 'NF && !seen[$1]++ {print $1}' \"${PBS_NODEFILE:?PBS_NODEFILE is not set: submit with qsub}\""

    def remote_launch(self) -> str:
        return 'pbs_tmrsh "${MORPHCPT_NODES[$rank]}"'

    def backend(self, target: RenderTarget, folder: Path) -> Backend:
        return PBSBackend(target, folder)


SCHEDULER = PbsScheduler
