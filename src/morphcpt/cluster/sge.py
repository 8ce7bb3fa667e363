"""Grid Engine (Son of Grid Engine 8.1; the same commands as Sun/Oracle GE 6.2): the scheduler, a submitit
executor and job environment, and the backend the controller uses.

qsub submits (`-terse` prints the job number, `123.1-4:1` for an array), arrays are `-t 1-N` (Grid Engine
numbers tasks from 1), dependencies `-hold_jid 12,13`; `qstat -xml -u '*'` lists every job still queued or
running in one call; a finished job vanishes from qstat, so how it ended comes from `qacct -j` (the
accounting file, written `accounting_flush_time` after the end). Ids: a plain job is `123`, array task 2 is
`123_2` (submitit's `<job>_<index>` form, with Grid Engine's own task number).

Jobs run submitit through `python -m morphcpt.cluster.sge FOLDER` rather than `-m submitit.core._submit`:
submitit finds a job environment only through entry points named `executor`/`job_environment` in the
`submitit` group, one of each per distribution, and morphcpt's are PBS Pro's. Running this module tells
submitit that the job is a Grid Engine job (`main` below), so no entry point is needed.

Grid Engine semantics the controller should know (measured on 8.1.9):
- `-hold_jid` waits until the dependencies have *ended*, successfully or not: unlike afterok, a dependent
  starts after a failed dependency. (Only a dependency that exits 100, which puts it in error state, keeps
  its dependents held.)
- A job deleted before it ran leaves no accounting record; exit 99 makes Grid Engine requeue a job, exit 100
  puts it in error state (Eqw).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from submitit.core import core, job_environment

from morphcpt.cluster.base import Scheduler
from morphcpt.controller.executors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    TRANSIENT,
    Backend,
    JobState,
    SchedulerError,
    ScriptSubmission,
    SubmititBackend,
    SubmitUnit,
    TransientSchedulerError,
    run_scheduler_command,
)
from morphcpt.render.scripts import RenderTarget

SUBMIT_MODULE = "morphcpt.cluster.sge"
# qacct's `failed` codes (sge_status.h): 37 = qmaster enforced h_rt/h_cpu/h_vmem, 100 = the job script was
# killed by a signal ("assumedly after job": qdel, or the kernel).
FAILED_LIMIT, FAILED_SIGNALLED = 37, 100
# How long a job that left qstat may be missing from qacct before the controller is told it is gone: the
# accounting file is written `accounting_flush_time` after a job ends (15 s by default), and a job deleted
# before it ran never appears there at all.
ACCOUNTING_GRACE_SECONDS = 90.0


# ---------------------------------------------------------------- ids


def split_id(job_id: str) -> tuple[str, int | None]:
    """`123_2` -> ("123", 2); `123` -> ("123", None)."""
    number, _, task = job_id.partition("_")
    return number, int(task) if task else None


def sge_task_id(job_id: str) -> str:
    """The id qdel and qstat take: `123_2` -> `123.2`, `123` unchanged."""
    number, task = split_id(job_id)
    return number if task is None else f"{number}.{task}"


def _job_number(qsub_output: str) -> str:
    """`123` or `123.1-4:1` (qsub -terse) -> `123`."""
    match = re.search(r"^\s*(\d+)(?:\.\d+-\d+:\d+)?\s*$", qsub_output, re.MULTILINE)
    if match is None:
        raise SchedulerError(f"could not read a job id from qsub's output {qsub_output!r}")
    return match.group(1)


def _expand_tasks(spec: str) -> list[int]:
    """qstat's task list of a pending array: `2-5:1`, `1,3-7:2`, `4` -> each task number."""
    tasks: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+)(?::(\d+))?)?\s*", part)
        if match:
            first, last, step = int(match[1]), int(match[2] or match[1]), int(match[3] or 1)
            tasks.extend(range(first, last + 1, step))
    return tasks


# ---------------------------------------------------------------- qstat


def parse_qstat_xml(text: str) -> dict[str, dict[str, str]]:
    """`qstat -xml` -> {id: fields (JB_job_number, JB_name, state, JAT_start_time, tasks, ...)}, with one entry
    per array task (`123_2`) and one per plain job (`123`)."""
    if not text.strip():
        return {}
    jobs: dict[str, dict[str, str]] = {}
    for element in ET.fromstring(text).iter("job_list"):
        fields = {child.tag: (child.text or "").strip() for child in element}
        number = fields.get("JB_job_number", "")
        if not number:
            continue
        tasks = fields.get("tasks")
        if tasks:
            for task in _expand_tasks(tasks):
                jobs[f"{number}_{task}"] = fields
        else:
            jobs[number] = fields
    return jobs


def _iso_time(value: str | None) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp() if value else None
    except ValueError:
        return None


def qstat_state(fields: dict[str, str], error: str = "") -> JobState:
    """A job qstat still lists. Its state letters: qw/hqw/Rq pending, r/t/Rr running (s/S/T suspended: still
    holding its slot), d.. being deleted, E.. in error (it never ran, and will not without `qmod -cj`)."""
    letters = fields.get("state", "")
    started = _iso_time(fields.get("JAT_start_time"))
    if "E" in letters:
        return JobState(FAILED, reason=f"Grid Engine error state {letters}: {error}".rstrip(": "))
    if "d" in letters:
        return JobState(CANCELLED, reason="deleted (qdel)", started=started)
    if "q" not in letters and any(letter in letters for letter in "rtsST"):
        return JobState(RUNNING, started=started)
    return JobState(PENDING, reason=f"Grid Engine state {letters}")


# ---------------------------------------------------------------- qacct


def parse_qacct(text: str) -> dict[str, dict[str, str]]:
    """`qacct -j ID` -> {id: record}: one record per array task (`123_2`), or the plain job's (`123`). A job
    that ran more than once (requeued) has several records; the last one counts."""
    records: dict[str, dict[str, str]] = {}
    for block in re.split(r"^=+\s*$", text, flags=re.MULTILINE):
        record = {}
        for line in block.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                record[key] = value.strip()
        number, task = record.get("jobnumber"), record.get("taskid", "undefined")
        if number:
            records[f"{number}_{task}" if task.isdigit() else number] = record
    return records


def _acct_time(value: str | None) -> float | None:
    try:
        return datetime.strptime(value or "", "%a %b %d %H:%M:%S %Y").timestamp()
    except ValueError:
        return None  # "-/-": never started


def _seconds(value: str) -> float | None:
    """h_rt as Grid Engine writes it: `3600`, `1:00:00`."""
    parts = value.split(":")
    try:
        return float(sum(float(p) * 60**i for i, p in enumerate(reversed(parts))))
    except ValueError:
        return None


def _leading_int(value: str | None) -> int | None:
    match = re.match(r"\s*(-?\d+)", value or "")
    return int(match.group(1)) if match else None


def qacct_state(record: dict[str, str]) -> JobState:
    """How a finished job (or array task) ended, from its accounting record."""
    failed = _leading_int(record.get("failed")) or 0
    failed_text = record.get("failed", "").partition(":")[2].strip()
    code = _leading_int(record.get("exit_status"))
    started, ended = _acct_time(record.get("start_time")), _acct_time(record.get("end_time"))
    if failed == 0 and code == 0:
        return JobState(COMPLETED, 0, started=started, ended=ended)
    limit = re.search(r"h_rt=([\d:]+)", record.get("category", ""))
    h_rt = _seconds(limit.group(1)) if limit else None
    wallclock = _leading_int(record.get("ru_wallclock"))
    if wallclock is None and started is not None and ended is not None:
        wallclock = int(ended - started)
    killed = failed == FAILED_LIMIT or (code or 0) > 128
    if limit and h_rt is not None and wallclock is not None and wallclock >= h_rt - 1 and killed:
        reason = f"walltime h_rt={limit.group(1)} exceeded"
        return JobState(TIMEOUT, code, reason=reason, started=started, ended=ended)
    if failed == FAILED_SIGNALLED and code is not None and code > 128:
        # The job script was killed by a signal: qdel does that (SIGKILL, exit 137), as does the kernel's
        # out-of-memory killer; Grid Engine's accounting does not tell them apart.
        reason = f"killed by signal {code - 128} (qdel, or the kernel)"
        return JobState(CANCELLED, code, reason=reason, started=started, ended=ended)
    reason = f"Grid Engine failed {failed}: {failed_text}".rstrip(": ") if failed else ""
    return JobState(FAILED, code, reason=reason, started=started, ended=ended)


def _command(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """A Grid Engine command whose failures this module reads itself (qacct, qdel)."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except FileNotFoundError:
        raise SchedulerError(f"`{argv[0]}` not found: is $SGE_ROOT/bin/<arch> on PATH (a Grid Engine host)?") from None


def _failure(argv: list[str], output: str) -> SchedulerError:
    kind = TransientSchedulerError if TRANSIENT.search(output) else SchedulerError
    return kind(f"`{' '.join(argv[:1])}` failed: {output.strip()}")


def _qacct(job: str) -> dict[str, dict[str, str]]:
    """Accounting records of one job number or job name ({} when qacct knows none yet). qacct answers one
    `-j` per call (given several, it keeps the last), so this is one call per job."""
    argv = ["qacct", "-j", job]
    result = _command(argv)
    if result.returncode == 0:
        return parse_qacct(result.stdout)
    output = result.stderr + result.stdout
    if "not found" in output:
        return {}
    raise _failure(argv, output)


# ---------------------------------------------------------------- submitit


class SgeInfoWatcher(core.InfoWatcher):
    """submitit's watcher (job.state outside the controller) on the same qstat + qacct reading."""

    def _make_command(self) -> list[str] | None:
        return ["qstat", "-xml", "-u", "*"] if self._registered - self._finished else None

    def update(self) -> None:
        ids = sorted(self._registered - self._finished)
        if not ids:
            return
        self._num_calls += 1
        try:
            states = sge_states(ids, {})
        except SchedulerError as error:
            from submitit.core import logger

            logger.get_logger().warning(f"Grid Engine status query failed ({error}), status may be inaccurate.")
        else:
            self._info_dict.update({job_id: {"State": state.state} for job_id, state in states.items()})
        self._last_status_check = time.time()
        for job_id in ids:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def get_state(self, job_id: str, mode: str = "standard") -> str:
        return self.get_info(job_id, mode=mode).get("State") or "UNKNOWN"


class SgeJob(core.Job[core.R]):
    _cancel_command = "qdel"
    watcher = SgeInfoWatcher(delay_s=60)


class SgeJobEnvironment(job_environment.JobEnvironment):
    """Inside a Grid Engine job: JOB_ID, and SGE_TASK_ID (1..N in an array, "undefined" otherwise)."""

    _env: ClassVar[dict[str, str]] = {
        "job_id": "JOB_ID",
        "array_job_id": "JOB_ID",
        "array_task_id": "SGE_TASK_ID",
        "num_tasks": "MORPHCPT_SGE_NTASKS",
        "num_nodes": "NHOSTS",
        "node": "MORPHCPT_SGE_NODE",
        "global_rank": "MORPHCPT_SGE_RANK",
        "local_rank": "MORPHCPT_SGE_RANK",
    }

    @property
    def array_task_id(self) -> str | None:
        task = os.environ.get("SGE_TASK_ID", "")
        return task if task.isdigit() else None

    @property
    def job_id(self) -> str:
        # The same `<job>_<task>` the executor named the task's pickle after (task numbers from 1).
        task = self.array_task_id
        return f"{self.raw_job_id}_{task}" if task else self.raw_job_id

    @property
    def hostnames(self) -> list[str]:
        hostfile = os.environ.get("PE_HOSTFILE")
        if not hostfile or not Path(hostfile).exists():
            return [self.hostname]
        lines = Path(hostfile).read_text().splitlines()
        return list(dict.fromkeys(line.split()[0] for line in lines if line.strip()))

    def _requeue(self, countdown: int) -> None:
        subprocess.check_call(["qmod", "-rj", sge_task_id(self.job_id)], timeout=60)


def main() -> None:
    """`python -m morphcpt.cluster.sge FOLDER`, what a Grid Engine job runs: submitit's job runner, with this
    job environment (see the module docstring for why not through an entry point)."""
    from submitit.core import plugins, submission

    plugins.get_job_environment = SgeJobEnvironment  # type: ignore[assignment]
    submission.submitit_main()


class SgeExecutor(ScriptSubmission, core.PicklingExecutor):
    """Submits morphcpt's own scripts (job_templates/sge/header.j2 around submitit's command)."""

    job_class = SgeJob
    scheduler_name = "sge"
    script_suffix = ".sge"
    # Grid Engine fills in $TASK_ID in -o for each array task.
    array_log_separator = "."
    array_log_placeholder = "$TASK_ID"

    def __init__(self, folder: str | Path, python: str | None = None, max_num_timeout: int = 3) -> None:
        super().__init__(folder, max_num_timeout=max_num_timeout)
        self.python = python or "python3"

    def _num_tasks(self) -> int:
        return 1

    def _submit_unit_ids(self, base_id: str, count: int) -> list[str]:
        # Array tasks are 1..N (header `-t 1-N`); the controller's i-th task is task i + 1.
        return [base_id] if count == 1 else [f"{base_id}_{i}" for i in range(1, count + 1)]

    def log_path(self, index: int | None) -> str:
        # `index` is the task's position in the unit (0-based); Grid Engine's $TASK_ID is one more.
        multi = self._unit is not None and len(self._unit.specs) > 1
        return super().log_path(index + 1 if index is not None and multi else index)

    def submission_command(self, script: Path | str) -> list[str]:
        command = ["qsub", "-terse"]
        if self.dependency_ids():
            command += ["-hold_jid", ",".join(split_id(i)[0] for i in self.dependency_ids())]
        return [*command, str(script)]

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        if self._unit is None:
            raise RuntimeError("SgeExecutor submits morphcpt submissions (SgeBackend), not bare submitit calls")
        return self.script_text(command)

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return self.submission_command(submission_file_path)

    @staticmethod
    def _get_job_id_from_submission_command(string: bytes | str) -> str:
        return _job_number(string.decode() if isinstance(string, bytes) else string)

    def _submit_script(self) -> str:
        return _job_number(run_scheduler_command(self.submission_command(self.write_script())))

    @property
    def _submitit_command_str(self) -> str:
        command: str = ScriptSubmission._submitit_command_str.fget(self)  # type: ignore[attr-defined]
        runner = "-m submitit.core._submit"
        assert runner in command, command
        return command.replace(runner, f"-m {SUBMIT_MODULE}")


# ---------------------------------------------------------------- the controller's backend


def sge_states(
    job_ids: list[str],
    vanished: dict[str, float],
    cancelled: set[str] | None = None,
    grace: float = ACCOUNTING_GRACE_SECONDS,
) -> dict[str, JobState]:
    """The state of each id: from one `qstat -xml` for jobs still queued or running, from `qacct -j` (one call
    per job number) for the others. `vanished` remembers when an id was first missing from both; `cancelled`
    holds the ids this process deleted."""
    listed = parse_qstat_xml(run_scheduler_command(["qstat", "-xml", "-u", "*"]))
    states: dict[str, JobState] = {}
    gone: dict[str, list[str]] = {}
    errors = {}
    for job_id in job_ids:
        fields = listed.get(job_id)
        if fields is None:
            gone.setdefault(split_id(job_id)[0], []).append(job_id)
        elif "E" in fields.get("state", ""):
            errors[job_id] = fields
        else:
            states[job_id] = qstat_state(fields)
    for job_id, fields in errors.items():
        # Error state: it did not start (bad -wd or -o path, prolog failure) and never will on its own. Say
        # why, and delete it so that it cannot run later beside the task's next attempt.
        detail = run_scheduler_command(["qstat", "-j", sge_task_id(job_id)], retries=1)
        reason = "; ".join(m.strip() for m in re.findall(r"^error reason\s+\d+:\s*(.*)$", detail, re.MULTILINE))
        states[job_id] = qstat_state(fields, reason)
        _command(["qdel", sge_task_id(job_id)])
    now = time.time()
    for number, ids in gone.items():
        records = _qacct(number)
        for job_id in ids:
            record = records.get(job_id)
            if record is not None:
                vanished.pop(job_id, None)
                state = qacct_state(record)
                if cancelled and job_id in cancelled and state.state in (CANCELLED, FAILED):
                    state = JobState(CANCELLED, state.exit_code, "cancelled (qdel)", state.started, state.ended)
                states[job_id] = state
                continue
            if cancelled and job_id in cancelled:
                # Deleted by us: before it ran (such a job never gets an accounting record), or while running
                # and its record is not written yet.
                states[job_id] = JobState(CANCELLED, reason="cancelled (qdel)")
                continue
            # Neither listed nor accounted: it ended moments ago and its record is not written yet, or someone
            # deleted it before it ran (no record, ever). Reported absent at once, the controller would conclude
            # from the markers alone (COMPLETED, or LOST: a failure without its exit status), so it stays
            # active for `grace` seconds from when it was first missed; then it is left out and the markers
            # decide.
            first = vanished.setdefault(job_id, now)
            if now - first < grace:
                states[job_id] = JobState(RUNNING, reason="ended; waiting for its accounting record (qacct)")
    return states


class SgeBackend(SubmititBackend):
    name = "sge"
    # Grid Engine's -hold_jid is "after the dependency ended", not afterok (see the module docstring).
    native_dependencies = True

    def __init__(self, target: RenderTarget, folder: Path) -> None:
        super().__init__(target, SgeExecutor(folder, python=target.profile.python))
        self._vanished: dict[str, float] = {}
        self._cancelled: set[str] = set()
        self.accounting_grace = ACCOUNTING_GRACE_SECONDS

    def adopt(self, unit: SubmitUnit) -> tuple[str, list[str]] | None:
        # Job names are unique per submission (SubmitUnit.job_name); qacct finds one that has ended already.
        for fields in parse_qstat_xml(run_scheduler_command(["qstat", "-xml", "-u", "*"])).values():
            if fields.get("JB_name") == unit.job_name:
                return self._adopted(unit, fields["JB_job_number"])
        numbers = {record["jobnumber"] for record in _qacct(unit.job_name).values() if "jobnumber" in record}
        return self._adopted(unit, max(numbers, key=int)) if numbers else None

    def states(self, job_ids: list[str]) -> dict[str, JobState]:
        return sge_states(job_ids, self._vanished, self._cancelled, self.accounting_grace) if job_ids else {}

    def cancel(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        self._cancelled.update(job_ids)
        argv = ["qdel", *[sge_task_id(i) for i in job_ids]]
        result = _command(argv)
        # qdel deletes the jobs it knows and complains about those that have ended already: only other
        # complaints are errors.
        complaints = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if line.strip() and "does not exist" not in line and not re.search(r"has (registered|deleted) ", line)
        ]
        if result.returncode and complaints:
            raise _failure(argv, "\n".join(complaints))


# ---------------------------------------------------------------- the scheduler


class SgeScheduler(Scheduler):
    name = "sge"
    script_suffix = ".sge"
    header_template = "sge/header.j2"
    index_variable = "SGE_TASK_ID"
    job_id_variable = "JOB_ID"
    first_array_index = 1
    tools = ("qsub", "qstat", "qacct", "qdel")

    def log_path(self, logs: Path, job_name: str, array: bool) -> str:
        return str(logs / f"{job_name}.$JOB_ID{'.$TASK_ID' if array else ''}.log")

    def submit_line(
        self,
        var: str,
        job_name: str,
        script: str,
        depends: list[str],
        array_size: int | None,
        after_any: tuple[str, ...] | list[str] = (),
    ) -> str:
        # -hold_jid already waits for the end, whatever the outcome: a turn is one more held id.
        held = [*depends, *(i for i in after_any if i not in depends)]
        hold = f"-hold_jid {','.join(held)} " if held else ""
        # -terse prints `123` or, for an array, `123.1-4:1`: the job number is before the dot.
        return f'{var}=$(qsub -terse {hold}{script} | cut -d. -f1); echo "{job_name}: ${var}"'

    def submit_preamble(self) -> list[str]:
        return ["# Grid Engine: -hold_jid releases a job once its dependencies have ended, succeeded or not."]

    def node_list(self) -> str:
        return (
            "awk 'NF && !seen[$1]++ {print $1}' "
            '"${PE_HOSTFILE:?PE_HOSTFILE is not set: a multi-node job needs a parallel environment (-pe)}"'
        )

    def remote_launch(self) -> str:
        # The header defines morphcpt_qrsh for multi-node jobs: `qrsh -inherit` with its words quoted.
        return 'morphcpt_qrsh "${MORPHCPT_NODES[$rank]}"'

    def backend(self, target: RenderTarget, folder: Path) -> Backend:
        return SgeBackend(target, folder)


SCHEDULER = SgeScheduler

if __name__ == "__main__":
    # Run through the imported module, so that its classes are the ones the rest of morphcpt sees.
    from morphcpt.cluster.sge import main as _main

    _main()
    sys.exit(0)
