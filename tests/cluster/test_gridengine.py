"""Grid Engine (Son of Grid Engine 8.1.9) as a scheduler, for real: SgeBackend submits morphcpt's rendered
scripts with submitit pickles to the single-node Grid Engine of tests/cluster/local_gridengine.sh and reads
their states back from qstat and qacct. The first tests need no cluster: they parse output captured from it.

Not covered here (one node, no parallel environment): multi-node jobs ($PE_HOSTFILE, `qrsh -inherit`),
`-pe`, GPUs, and a site's own complexes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from submitit.core import utils

from conftest import REPO, profile_data, write_yaml
from morphcpt.cluster import get_scheduler
from morphcpt.cluster.sge import (
    SgeBackend,
    SgeJobEnvironment,
    parse_qacct,
    parse_qstat_xml,
    qacct_state,
    qstat_state,
)
from morphcpt.config import load_experiment, load_profile
from morphcpt.controller.executors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    JobState,
    SubmitUnit,
    new_token,
)
from morphcpt.controller.tasks import task_spec
from morphcpt.graph import build_graph
from morphcpt.render.scripts import RenderTarget, render_job

ACTIVE_STATES = {PENDING, RUNNING}

# ---------------------------------------------------------------- output captured from the test cluster

QSTAT_XML = """<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>11</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>rng</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-12-02T03:24:54</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
      <tasks>1</tasks>
    </job_list>
    <job_list state="running">
      <JB_job_number>20</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>x</JB_name>
      <JB_owner>root</JB_owner>
      <state>dr</state>
      <JAT_start_time>2026-12-02T03:26:40</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>10</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>eqw</JB_name>
      <JB_owner>root</JB_owner>
      <state>Eqw</state>
      <JB_submission_time>2026-12-02T03:24:54</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>11</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>rng</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-12-02T03:24:54</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
      <tasks>2-5:1</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>19</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>fd</JB_name>
      <JB_owner>root</JB_owner>
      <state>hqw</state>
      <JB_submission_time>2026-12-02T03:26:07</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
  </job_info>
</job_info>
"""


def _qacct_record(**fields: str) -> str:
    base = {
        "qname": "all.q",
        "hostname": "vm",
        "jobname": "x",
        "jobnumber": "6",
        "taskid": "undefined",
        "qsub_time": "Wed Dec  2 03:24:11 2026",
        "start_time": "Wed Dec  2 03:24:12 2026",
        "end_time": "Wed Dec  2 03:24:15 2026",
        "failed": "0    ",
        "exit_status": "0                   ",
        "ru_wallclock": "3s",
        "category": "NONE",
    }
    base.update(fields)
    return "==============================================================\n" + "".join(
        f"{key:<13}{value}\n" for key, value in base.items()
    )


def test_qstat_xml_lists_jobs_and_every_array_task() -> None:
    jobs = parse_qstat_xml(QSTAT_XML)
    assert sorted(jobs) == ["10", "11_1", "11_2", "11_3", "11_4", "11_5", "19", "20"]
    states = {job_id: qstat_state(fields).state for job_id, fields in jobs.items()}
    assert states == {
        "10": FAILED,  # Eqw: could not start, never will on its own
        "11_1": RUNNING,
        "11_2": PENDING,
        "11_3": PENDING,
        "11_4": PENDING,
        "11_5": PENDING,
        "19": PENDING,  # hqw: held by -hold_jid
        "20": CANCELLED,  # dr: qdel of a running job, under way
    }
    assert qstat_state(jobs["11_1"]).started is not None
    assert "can't chdir" in qstat_state(jobs["10"], "error: can't chdir to /nonexistent").reason
    assert parse_qstat_xml("") == {}


def test_qacct_records_give_how_each_job_ended() -> None:
    text = "".join(
        [
            _qacct_record(jobnumber="1", taskid="1"),
            _qacct_record(jobnumber="1", taskid="2", exit_status="3"),
            _qacct_record(
                jobnumber="7", failed="100 : assumedly after job", exit_status="137                  (Killed)"
            ),
            _qacct_record(
                jobnumber="8",
                failed="37  : qmaster enforced h_rt, h_cpu, or h_vmem limit",
                exit_status="137                  (Killed)",
                category="-l h_rt=3",
            ),
            _qacct_record(
                jobnumber="9",
                failed="37  : qmaster enforced h_rt, h_cpu, or h_vmem limit",
                exit_status="137",
                category="-l h_rt=3600,h_vmem=1G",
            ),
            _qacct_record(jobnumber="18", failed="30  : application error returned", exit_status="100"),
        ]
    )
    records = parse_qacct(text)
    got = {job_id: (qacct_state(r).state, qacct_state(r).exit_code) for job_id, r in records.items()}
    assert got == {
        "1_1": (COMPLETED, 0),
        "1_2": (FAILED, 3),
        "7": (CANCELLED, 137),  # qdel of a running job (or any SIGKILL of the job script)
        "8": (TIMEOUT, 137),  # ran into h_rt
        "9": (FAILED, 137),  # the same failed code, far from h_rt: the memory or CPU limit
        "18": (FAILED, 100),  # exit 100: Grid Engine's error state
    }
    done = qacct_state(records["1_1"])
    assert done.ended is not None and done.started is not None and done.ended - done.started == 3
    assert "h_rt" in qacct_state(records["8"]).reason


def test_job_environment_names_the_task_like_the_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "sge")
    monkeypatch.setenv("JOB_ID", "77")
    monkeypatch.setenv("SGE_TASK_ID", "2")
    env = SgeJobEnvironment()
    assert env.job_id == "77_2" and env.global_rank == 0 and env.num_tasks == 1 and env.activated()
    monkeypatch.setenv("SGE_TASK_ID", "undefined")  # what Grid Engine sets in a job that is not an array
    assert SgeJobEnvironment().job_id == "77"


def _target(tmp_path: Path, **resources: str) -> RenderTarget:
    default = {"nodes": 1, "ncpus": 1, "mem": "1GB", "walltime": "00:10:00", **resources}
    profile_path = write_yaml(tmp_path / "sge.yaml", profile_data("sge", queue="all.q", resources={"default": default}))
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    experiment["evaluation"]["items_per_suite"] = 5
    experiment_path = write_yaml(tmp_path / "experiment.yaml", experiment)
    return RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, tmp_path
    )


def _unit(target: RenderTarget, tasks: int = 1, depends: list[str] | None = None) -> SubmitUnit:
    """A submission of `tasks` tasks of the demo's benchmark stage (cheap: 5 items per suite)."""
    job = next(j for j in build_graph(target.experiment) if j.kind == "benchmarks")
    return SubmitUnit([task_spec(target.context, job, 0)] * tasks, token=new_token(), depends=depends or [])


def test_scheduler_renders_arrays_from_one_and_hold_jid(tmp_path: Path) -> None:
    target = _target(tmp_path)
    backend = SgeBackend(target, tmp_path / "runs/demo/submitit")
    unit = _unit(target, 3, depends=["12", "13_2"])
    assert backend.submission_command(unit, "s.sge") == ["qsub", "-terse", "-hold_jid", "12,13", "s.sge"]
    script = backend.script(unit).splitlines()
    assert script[0] == "#!/bin/bash"
    assert f"#$ -N {unit.job_name}" in script and "#$ -t 1-3" in script and "#$ -S /bin/bash" in script
    assert f"#$ -wd {tmp_path}" in script and "#$ -l h_vmem=1G" in script and "#$ -l h_rt=00:10:00" in script
    log = tmp_path / "logs" / unit.job.name / unit.token
    assert f"#$ -o '{log}.$TASK_ID.log'" in script
    assert [backend.log_path(unit, i) for i in range(3)] == [f"{log}.{i}.log" for i in (1, 2, 3)]
    assert any(line.endswith("-u -m morphcpt.cluster.sge runs/demo/submitit") for line in script)
    single = _unit(target)
    assert "#$ -t" not in backend.script(single) and backend.submission_command(single, "s") == ["qsub", "-terse", "s"]
    sge = get_scheduler("sge")
    line = sge.submit_line("b", "merge", "jobs/merge.sge", ['"$a1"', '"$a2"'], None)
    assert line == 'b=$(qsub -terse -hold_jid "$a1","$a2" jobs/merge.sge | cut -d. -f1); echo "merge: $b"'
    assert sge.log_path(Path("/l"), "prep", True) == "/l/prep.$JOB_ID.$TASK_ID.log"


def test_multi_node_launch_survives_qrsh_parsing_the_command_again(tmp_path: Path) -> None:
    """Grid Engine's builtin `qrsh -inherit` joins the command's words with spaces and has a shell on the node
    parse them again (measured on 8.1.9 in a PE with control_slaves): the header's morphcpt_qrsh quotes each
    word so that the training template's `bash -c "$node_cmd"` arrives whole. Here qrsh is a stand-in that
    does just that; a real PE run needs more than one host."""
    resources = {"default": {"mem": "1GB"}, "train": {"nodes": 2, "ngpus": 1, "mem": "8GB"}}
    profile = profile_data("sge", resources=resources, extra_directives=["-pe mpi 2"])
    profile_path = write_yaml(tmp_path / "sge.yaml", profile)
    experiment_path = write_yaml(
        tmp_path / "e.yaml", yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    )
    target = RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, tmp_path
    )
    script = render_job(next(j for j in build_graph(target.experiment) if j.kind == "train"), target)
    assert '  morphcpt_qrsh "${MORPHCPT_NODES[$rank]}" bash -c "$node_cmd" &' in script.splitlines()
    function = re.search(r"^morphcpt_qrsh\(\) \{\n.*?^\}\n", script, re.MULTILINE | re.DOTALL)
    assert function is not None
    fake = tmp_path / "bin/qrsh"
    fake.parent.mkdir()
    fake.write_text('#!/bin/bash\n[[ $1 == -inherit ]] || exit 9\nshift 2\nexec bash -c "$*"\n')
    fake.chmod(0o755)
    node_cmd = 'declare -x X="it\'s \\$HOME \\"q\\""\nprintf \'<%s>\' "$X" \'two words\''
    probe = f'{function.group(0)}node_cmd={shlex.quote(node_cmd)}\nmorphcpt_qrsh node1 bash -c "$node_cmd"\n'
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env, timeout=30)
    assert result.stdout == '<it\'s $HOME "q"><two words>', result.stdout + result.stderr


# ---------------------------------------------------------------- on the running Grid Engine


def _submit(backend: SgeBackend, unit: SubmitUnit, *calls: tuple[Any, ...]) -> tuple[str, list[str]]:
    """Submit the unit's rendered script with one pickled call per task in place of the stage's own (what
    submit_unit does with run_task), so that a task can write a file, exit 3 or sleep."""
    executor = backend._prepared(unit)
    Path(executor.folder).mkdir(parents=True, exist_ok=True)
    raw = executor._submit_script()
    ids = executor._submit_unit_ids(executor.base_id(raw), len(unit.specs))
    for job_id, (function, *args) in zip(ids, calls, strict=True):
        paths = utils.JobPaths(executor.folder, job_id=job_id)
        paths.folder.mkdir(parents=True, exist_ok=True)
        utils.DelayedSubmission(function, *args).dump(paths.submitted_pickle)
    return raw, ids


def _shell(command: str) -> tuple[Any, ...]:
    return (subprocess.check_call, ["bash", "-c", command])


def _wait(backend: SgeBackend, ids: list[str], timeout: float = 240) -> dict[str, JobState]:
    """Poll like the controller until every id has a final state."""
    deadline = time.monotonic() + timeout
    while True:
        states = backend.states(ids)
        if all(i in states and states[i].state not in ACTIVE_STATES for i in ids):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"still active after {timeout} s: {states}")
        time.sleep(0.5)


def _wait_running(backend: SgeBackend, job_id: str, timeout: float = 120) -> JobState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = backend.states([job_id]).get(job_id)
        if state is not None and state.state == RUNNING and state.started is not None:
            return state
        time.sleep(0.3)
    raise AssertionError(f"{job_id} did not start in {timeout} s")


@pytest.mark.usefixtures("gridengine")
def test_array_tasks_each_run_their_own_pickle(tmp_path: Path) -> None:
    target = _target(tmp_path)
    backend = SgeBackend(target, tmp_path / "runs/demo/submitit")
    unit = _unit(target, 3)
    out = tmp_path / "out"
    out.mkdir()
    calls = [_shell(f'echo "$JOB_ID $SGE_TASK_ID" > {out}/{i}') for i in range(3)]
    raw, ids = _submit(backend, unit, *calls)
    assert ids == [f"{raw}_1", f"{raw}_2", f"{raw}_3"]
    states = _wait(backend, ids)
    assert [(states[i].state, states[i].exit_code) for i in ids] == [(COMPLETED, 0)] * 3
    assert all(states[i].started is not None and states[i].ended >= states[i].started for i in ids)
    # Pickle i ran in array task i + 1: submitit's job id inside the job is `<job>_<SGE_TASK_ID>`.
    assert [(out / str(i)).read_text().split() for i in range(3)] == [[raw, str(t)] for t in (1, 2, 3)]
    for index, job_id in enumerate(ids):
        log = Path(backend.log_path(unit, index))
        assert f"job {raw} " in log.read_text(), log.read_text()
        assert (Path(backend.executor.folder) / f"{job_id}_0_result.pkl").exists()


@pytest.mark.usefixtures("gridengine")
def test_hold_jid_starts_a_job_after_its_dependency(tmp_path: Path) -> None:
    target = _target(tmp_path)
    backend = SgeBackend(target, tmp_path / "runs/demo/submitit")
    first, second = tmp_path / "first", tmp_path / "second"
    raw_a, (a,) = _submit(backend, _unit(target), _shell(f"sleep 4; echo done > {first}"))
    dependent = _unit(target, depends=[raw_a])
    assert "-hold_jid" in backend.submission_command(dependent, "s")
    _, (b,) = _submit(backend, dependent, (shutil.copyfile, first, second))
    seen = backend.states([a, b])
    if seen[a].state in ACTIVE_STATES and "accounting" not in seen[a].reason:
        assert seen[b].state == PENDING and "hqw" in seen[b].reason, seen
    states = _wait(backend, [a, b])
    assert states[a].state == states[b].state == COMPLETED, states
    # The copy found the first job's file: it ran after the first job ended.
    assert second.read_text() == "done\n"
    assert states[b].started >= states[a].ended


@pytest.mark.usefixtures("gridengine")
def test_hold_jid_also_releases_after_a_failed_dependency(tmp_path: Path) -> None:
    """Grid Engine's semantics, measured: -hold_jid waits for the dependency to end, not to succeed (unlike
    Slurm's and PBS's afterok), so a dependent runs after a failed dependency."""
    target = _target(tmp_path)
    backend = SgeBackend(target, tmp_path / "runs/demo/submitit")
    raw_a, (a,) = _submit(backend, _unit(target), (sys.exit, 1))
    _, (b,) = _submit(backend, _unit(target, depends=[raw_a]), _shell("true"))
    states = _wait(backend, [a, b])
    assert (states[a].state, states[b].state) == (FAILED, COMPLETED), states


@pytest.mark.usefixtures("gridengine")
def test_failed_tasks_report_their_exit_codes(tmp_path: Path) -> None:
    target = _target(tmp_path)
    backend = SgeBackend(target, tmp_path / "runs/demo/submitit")
    _, ids = _submit(backend, _unit(target, 2), (sys.exit, 3), _shell("exit 1"))
    states = _wait(backend, ids)
    assert [(states[i].state, states[i].exit_code) for i in ids] == [(FAILED, 3), (FAILED, 1)], states


@pytest.mark.usefixtures("gridengine")
def test_walltime_kill_is_a_timeout(tmp_path: Path) -> None:
    target = _target(tmp_path, walltime="00:00:03")
    backend = SgeBackend(target, tmp_path / "runs/demo/submitit")
    _, (job_id,) = _submit(backend, _unit(target), (time.sleep, 600))
    state = _wait(backend, [job_id])[job_id]
    assert state.state == TIMEOUT, state


@pytest.mark.usefixtures("gridengine")
def test_qdel_of_running_and_queued_jobs_is_cancelled(tmp_path: Path) -> None:
    target = _target(tmp_path)
    folder = tmp_path / "runs/demo/submitit"
    backend = SgeBackend(target, folder)
    raw, (running,) = _submit(backend, _unit(target), (time.sleep, 600))
    _, (queued,) = _submit(backend, _unit(target, depends=[raw]), _shell("true"))
    _wait_running(backend, running)
    backend.cancel([running, queued])
    states = _wait(backend, [running, queued])
    # While qdel kills it, qstat shows the running job as `dr`; the queued one is gone at once.
    assert states[running].state == CANCELLED and states[running].started is not None, states
    assert states[queued].state == CANCELLED and states[queued].started is None, states
    deadline = time.monotonic() + 120
    while (ended := backend.states([running])[running]).exit_code is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (ended.state, ended.exit_code, ended.reason) == (CANCELLED, 137, "cancelled (qdel)"), ended
    # A controller that restarts knows only what Grid Engine says: the running job's accounting record
    # (killed by SIGKILL), and nothing of the queued one, which never ran (left to the markers at once).
    fresh = SgeBackend(target, folder)
    fresh.accounting_grace = 0
    again = fresh.states([running, queued])
    assert again[running].state == CANCELLED and queued not in again, again
    backend.cancel([running])  # ended already: not an error


@pytest.mark.usefixtures("gridengine")
def test_adopt_finds_a_submission_by_its_name(tmp_path: Path) -> None:
    """After a controller crash: the unit's job, held in the queue and then finished, found by its unique
    name; it runs the real stage (run_task) through submitit's pickle."""
    target = _target(tmp_path)
    folder = tmp_path / "runs/demo/submitit"
    backend = SgeBackend(target, folder)
    blocker, (blocker_id,) = _submit(backend, _unit(target), (time.sleep, 3))
    unit = _unit(target, depends=[blocker])
    raw, ids = backend.submit(unit)
    assert SgeBackend(target, folder).adopt(unit) == (raw, ids)  # still queued: from qstat
    states = _wait(backend, [blocker_id, *ids])
    assert states[ids[0]].state == COMPLETED, states
    assert (tmp_path / "data/demo/benchmarks/manifest.json").exists()
    assert SgeBackend(target, folder).adopt(unit) == (raw, ids)  # finished: from qacct
    assert SgeBackend(target, folder).adopt(_unit(target)) is None


@pytest.mark.usefixtures("gridengine")
def test_controller_runs_a_stage_on_grid_engine(tmp_path: Path) -> None:
    """`morphcpt submit --watch` with a `scheduler: sge` profile: the registry, the controller and the backend."""
    target = _target(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "morphcpt", "submit", "experiment.yaml", "-p", "sge.yaml", "--stage",
         "generate_benchmarks", "--watch", "--interval", "1", "--timeout", "300"],
        cwd=tmp_path, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target.workdir / "data/demo/benchmarks/manifest.json").exists()
    logs = list((tmp_path / "logs/generate_benchmarks").glob("*.log"))
    assert logs and "[morphcpt] generate_benchmarks job " in logs[0].read_text()
