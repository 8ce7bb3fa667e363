"""PBS Pro for submitit: an executor and job environment registered as a submitit plugin (entry-point group
`submitit`, see pyproject.toml), plus the backend the controller uses.

qsub submits (arrays with `-J`, dependencies with `-W depend=afterok:`), `qstat -x -f -F json -t` reads every
job's state in one call, qdel cancels. Ids: qsub prints `1234.server` or, for an array, `1234[].server`;
submitit's convention for array task 3 is `1234.server_3` (PBS itself calls it `1234[3].server`).

What real servers do that the backend absorbs (OpenPBS 23.06 and master; tests/fixtures/pbs/NOTES.md):
- qstat asks the server once per id and prints what it found; an unknown id costs one stderr line
  (`qstat: Unknown Job Id 999.server`) and the exit status 153 (PBSE_UNKJOBID 15001 & 0xff), not the poll.
- `-F json` on OpenPBS master prints only the first of several ids (openpbs issue #2672, exit 0); `-F dsv`
  and plain `-f` list them all. A job missing from an answer is asked again on its own; only "Unknown Job
  Id" to `qstat -x` (no history either) says the scheduler has forgotten it.
- Without `job_history_enable`, `-x` is refused ("PBS is not configured to maintain job history", exit 0):
  the backend then asks without -x, and a finished job is simply unknown (its markers decide).
- qdel of a running job can end it with Exit_status 0: substate 91 and the comment "... and terminated by
  user@host" say it was deleted. A walltime kill is Exit_status -29, "... and exceeded resource walltime".
- When an afterok dependency fails, PBS deletes the dependent: state F, no Exit_status, no stime.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from submitit.core import core, job_environment, utils

from morphcpt.cluster.base import Scheduler
from morphcpt.config import Resources
from morphcpt.controller.executors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    NO_ANSWER,
    PENDING,
    RUNNING,
    TIMEOUT,
    Backend,
    CommandResult,
    JobState,
    SchedulerError,
    ScriptSubmission,
    SubmititBackend,
    SubmitUnit,
    run_scheduler_command,
    scheduler_result,
)
from morphcpt.render.scripts import RenderTarget

# PBS Pro job_state letters. F/X are finished jobs and subjobs, whose Exit_status says how they ended.
_WAITING = {"Q", "H", "W", "T", "S", "U", "M"}
_ACTIVE = {"R", "E", "B"}
# PBS's own negative exit statuses (JOB_EXEC_*): -29 is a walltime kill; the rest mean PBS could not run it.
PBS_WALLTIME_EXIT = -29
# job substates of finished jobs (OGSA-BES): deleted (qdel), finished, failed.
SUBSTATE_TERMINATED, SUBSTATE_FINISHED, SUBSTATE_FAILED = 91, 92, 93
# qstat/qdel messages (src/lib/Liblog/pbs_messages.c) and the exit status of an unknown id (15001 & 0xff).
UNKNOWN_JOB = "Unknown Job Id"
FINISHED_JOB = "Job has finished"
NO_HISTORY = "not configured to maintain job history"
UNKNOWN_EXIT = 153
# qsub's refusals whose own words do not say what to do, and what to do.
QSUB_HINTS = {
    "Bad UID for job execution": (
        "PBS runs no job as root (or another administrator account) unless the server allows it: submit as "
        "an ordinary user, or have the PBS administrator add the account to the server's acl_roots "
        "(`qmgr -c 'set server acl_roots += root'`)"
    ),
    "illegal -J value": "PBS Pro refuses an array of one subjob (-J 0-0): submit a single task without -J",
    "cannot submit non-rerunable Array Job": "PBS Pro arrays must be rerunnable: use -r y with -J",
}
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


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def job_state(fields: dict[str, Any]) -> JobState:
    letter = str(fields.get("job_state", ""))
    started, ended = _time(fields.get("stime")), _time(fields.get("obittime") or fields.get("mtime"))
    if letter in _WAITING:
        return JobState(PENDING, reason=f"PBS state {letter}")
    if letter in _ACTIVE:
        return JobState(RUNNING, started=started)
    code = _int(fields.get("Exit_status")) if fields.get("Exit_status") is not None else None
    comment = str(fields.get("comment", ""))
    deleted = _int(fields.get("substate")) == SUBSTATE_TERMINATED or " terminated" in comment
    if code is None and started is None:
        # Deleted before it ran: by qdel, or by PBS itself because an afterok dependency failed.
        depend = str(fields.get("depend", ""))
        if depend.startswith("afterok:"):
            waited = ", ".join(job.split("@")[0] for job in depend.removeprefix("afterok:").split(":"))
            reason = f"never ran: deleted while it waited on {waited} (a dependency failed or was deleted)"
        else:
            reason = comment or "deleted before it ran"
        return JobState(CANCELLED, reason=reason, ended=ended)
    if code == PBS_WALLTIME_EXIT or "exceeded resource walltime" in comment or "walltime" in comment.lower():
        return JobState(TIMEOUT, code, reason=comment or "walltime exceeded", started=started, ended=ended)
    if deleted or code is None:
        # qdel of a running job: its exit status is whatever the killed script returned, often 0.
        who = re.search(r"terminated by (\S+)", comment)
        reason = f"deleted while running (qdel by {who.group(1)})" if who else "deleted while running (qdel)"
        return JobState(CANCELLED, code, reason=reason, started=started, ended=ended)
    if code == 0:
        return JobState(COMPLETED, 0, started=started, ended=ended)
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


def _dsv_fields(line: str, delimiter: str = "|") -> list[str]:
    """Split one dsv line at the delimiters qstat did not escape (it writes `\\|` for one inside a value)."""
    fields, current, chars = [], [], iter(line)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == delimiter:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def parse_qstat_dsv(text: str) -> dict[str, dict[str, Any]]:
    """`qstat -x -f -F dsv [-t]` -> {submitit id: fields}: one line per job, `Job Id: ID|name=value|...`,
    resources as `Resource_List.ncpus=1` (the same values as the json, as strings)."""
    jobs: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if not line.startswith("Job Id: "):
            continue
        head, *pairs = _dsv_fields(line)
        fields: dict[str, Any] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if sep:
                fields[name] = value
        jobs[submitit_id(head.removeprefix("Job Id: ").strip())] = fields
    return jobs


class PBSInfoWatcher(core.InfoWatcher):
    """One `qstat -x -f -F dsv -t` for every registered job (finished ones too, thanks to -x). dsv, not json:
    OpenPBS master's json lists only the first of several ids (openpbs issue #2672)."""

    def _make_command(self) -> list[str] | None:
        ids = sorted({pbs_id(i, parent=True) for i in self._registered - self._finished})
        return ["qstat", "-x", "-f", "-F", "dsv", "-t", *ids] if ids else None

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        return {job_id: {"State": job_state(fields).state} for job_id, fields in parse_qstat_dsv(text).items()}

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


def _with_job_id(path: Path) -> str:
    """A submitit path pattern as a shell word: %j is the job's id ($PBS_JOBID), %t task 0."""
    parts = str(path).replace("%t", "0").split("%j")
    return '"$PBS_JOBID"'.join(shlex.quote(part) if part else "" for part in parts)


def qsub_hint(message: str) -> str:
    """qsub's refusal, with what to do when its own words do not say it."""
    hints = [hint for words, hint in QSUB_HINTS.items() if words in message]
    return "; ".join([message, *hints])


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
        # As submitit's Slurm executor: the job runs the interpreter that submitted it, which has submitit.
        self.python = python or sys.executable

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
        # The job's output goes where submitit reads it (<folder>/<job id>_0_log.out); PBS's own copy of
        # the (then empty) stream lands in the folder too, as <job id>.OU (a -o without a file name).
        paths = utils.JobPaths(self.folder)
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        lines += [f"#PBS -l walltime={p.get('walltime', '01:00:00')}", "#PBS -j oe", f"#PBS -o {folder}/"]
        lines += [f"#PBS -q {p['queue']}"] if p.get("queue") else []
        lines += [f"#PBS -P {p['project']}"] if p.get("project") else []
        lines += ['cd "$PBS_O_WORKDIR"', f"mkdir -p {_with_job_id(paths.folder)}"]
        lines += [f"exec >{_with_job_id(paths.stdout)} 2>{_with_job_id(paths.stderr)}"]
        lines += [*p.get("setup", []), "export SUBMITIT_EXECUTOR=pbs", command]
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
        try:
            output = run_scheduler_command(self.submission_command(self.write_script()))
        except SchedulerError as error:
            raise SchedulerError(qsub_hint(str(error))) from None
        return self._get_job_id_from_submission_command(output)

    @property
    def _submitit_command_str(self) -> str:
        if self._unit is not None:
            return ScriptSubmission._submitit_command_str.fget(self)  # type: ignore[attr-defined,no-any-return]
        return " ".join([shlex.quote(self.python), "-u -m submitit.core._submit", shlex.quote(str(self.folder))])


class PBSBackend(SubmititBackend):
    """The controller's PBS Pro backend. Status: one batched qstat per poll where the server answers it
    (json; dsv once json is seen to drop ids), then one qstat per id still missing, so that a job left out
    of an answer is never taken for a job the scheduler has forgotten."""

    name = "pbs"

    def __init__(self, target: RenderTarget, folder: Path) -> None:
        super().__init__(target, PBSExecutor(folder, python=target.profile.python))
        self.run: Callable[[list[str]], CommandResult] = scheduler_result  # replaced by tests
        self.history = True  # qstat -x works (the server's job_history_enable); learnt at the first refusal
        self.batch_format = "json"  # "dsv" once this server's json has left out ids it was asked for
        self._cancelled: set[str] = set()  # ids this controller deleted (qdel)

    def adopt(self, unit: SubmitUnit) -> tuple[str, list[str]] | None:
        result = self._history_aware(["qselect", "-x", "-N", unit.job_name])
        found = result.stdout.split()
        return self._adopted(unit, found[0]) if found else None

    def _history_aware(self, argv: list[str]) -> CommandResult:
        """Run a qstat/qselect; without job history on the server, -x is refused: run it again without."""
        if not self.history:
            argv = [a for a in argv if a != "-x"]
        result = self.run(argv)
        if NO_HISTORY in result.stderr and "-x" in argv:
            self.history = False
            return self._history_aware(argv)
        return result

    def _qstat(self, ids: list[str], output: str) -> tuple[dict[str, dict[str, Any]], CommandResult]:
        result = self._history_aware(["qstat", "-x", "-f", "-F", output, "-t", *ids])
        try:
            return (parse_qstat_json if output == "json" else parse_qstat_dsv)(result.stdout), result
        except ValueError:
            return {}, result  # unreadable json (openpbs issue #2541): the ids count as not answered

    def _batch(self, asked: list[str]) -> dict[str, dict[str, Any]]:
        """All asked ids in one qstat, in this server's working format; json that left ids out (exit 0, no
        complaint: openpbs issue #2672) or could not be parsed switches this backend to dsv."""
        jobs, result = self._qstat(asked, self.batch_format)
        if self.batch_format == "json" and len(asked) > 1:
            missing = [i for i in asked if submitit_id(i) not in jobs]
            if missing and UNKNOWN_JOB not in result.stderr:
                self.batch_format = "dsv"
                jobs |= self._qstat(missing, "dsv")[0]
        return jobs

    def _one(self, pbs_job_id: str) -> JobState | dict[str, dict[str, Any]] | None:
        """One id on its own: its jobs (an array parent brings its subjobs), None when the server says it does
        not know it (with -x: no history either), or a NO_ANSWER state when it says nothing clear."""
        jobs, result = self._qstat([pbs_job_id], "json")
        if jobs:
            return jobs
        if UNKNOWN_JOB in result.stderr or result.returncode == UNKNOWN_EXIT:
            return None
        said = (result.stderr or result.stdout).strip() or f"exit {result.returncode}, nothing printed"
        return JobState(NO_ANSWER, reason=f"qstat {pbs_job_id}: {said}")

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        if not job_ids:
            return {}
        # Array parents are asked for once; -t lists their subjobs.
        jobs = self._batch(sorted({pbs_id(i, parent=True) for i in job_ids}))
        states: dict[str, JobState] = {}
        alone: dict[str, JobState | dict[str, dict[str, Any]] | None] = {}
        for job_id in job_ids:
            if job_id not in jobs:
                parent = submitit_id(pbs_id(job_id, parent=True))
                # Missing from the answer is not gone: ask for it alone (its array when the array is missing).
                ask = pbs_id(job_id) if parent in jobs else pbs_id(job_id, parent=True)
                if ask not in alone:
                    alone[ask] = self._one(ask)
                answer = alone[ask]
                if isinstance(answer, JobState):
                    states[job_id] = answer
                    continue
                if answer is None:
                    inherited = self._from_parent(jobs.get(parent))
                    if inherited is not None:
                        states[job_id] = inherited
                    continue  # unknown to the scheduler, history included: the engine asks the disk
                jobs |= answer
                if job_id not in jobs:
                    states[job_id] = JobState(NO_ANSWER, reason=f"qstat {pbs_id(job_id)}: not in its answer")
                    continue
            states[job_id] = self._own(job_id, job_state(jobs[job_id]))
        return states

    @staticmethod
    def _from_parent(fields: dict[str, Any] | None) -> JobState | None:
        """A subjob PBS no longer lists, of an array that finished without ever starting: as its array."""
        if fields is None:
            return None
        state = job_state(fields)
        return state if state.state == CANCELLED and state.started is None else None

    def _own(self, job_id: str, state: JobState) -> JobState:
        """A job this controller deleted ended as cancelled, whatever exit status the killed script left."""
        if job_id in self._cancelled and state.state in (COMPLETED, FAILED, CANCELLED):
            return JobState(CANCELLED, state.exit_code, "cancelled by morphcpt (qdel)", state.started, state.ended)
        return state

    def cancel(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        self._cancelled.update(job_ids)
        result = self.run(["qdel", *[pbs_id(i) for i in job_ids]])
        # qdel deletes what it can and names the rest; a job that ended or was purged meanwhile is no error.
        complaints = [
            line
            for line in (result.stderr + result.stdout).splitlines()
            if line.strip() and UNKNOWN_JOB not in line and FINISHED_JOB not in line
        ]
        if result.returncode and complaints:
            raise SchedulerError(f"`qdel` failed: {' '.join(complaints)}")


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

    def submit_line(
        self,
        var: str,
        job_name: str,
        script: str,
        depends: list[str],
        array_size: int | None,
        after_any: tuple[str, ...] | list[str] = (),
    ) -> str:
        # One -W depend with comma-separated types, all of which must hold: depend=afterok:A:B,afterany:C.
        kinds = [f"{kind}:{':'.join(ids)}" for kind, ids in (("afterok", depends), ("afterany", after_any)) if ids]
        depend = f"-W depend={','.join(kinds)} " if kinds else ""
        return f'{var}=$(qsub {depend}{script}); echo "{job_name}: ${var}"'

    def node_list(self) -> str:
        return "awk 'NF && !seen[$1]++ {print $1}' \"${PBS_NODEFILE:?PBS_NODEFILE is not set: submit with qsub}\""

    def remote_launch(self) -> str:
        return 'pbs_tmrsh "${MORPHCPT_NODES[$rank]}"'

    def backend(self, target: RenderTarget, folder: Path) -> Backend:
        return PBSBackend(target, folder)


SCHEDULER = PbsScheduler
