"""What real PBS servers print, replayed: each fixture under tests/fixtures/pbs/ is one command and its exact
output (OpenPBS 23.06.06, or OpenPBS master where it differs; see NOTES.md there), and a fake qstat/qdel
answers the backend with them. The controller's decisions are driven through Controller.step()/poll(), so
each test pins what the controller does with the answer, not only what the parser reads from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, profile_data, write_yaml
from morphcpt.cluster import pbs
from morphcpt.cluster.pbs import PBSBackend, PBSExecutor, job_state, parse_qstat_dsv, parse_qstat_json
from morphcpt.config import load_experiment, load_profile
from morphcpt.controller.engine import Controller, Policy
from morphcpt.controller.executors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    CommandResult,
    SchedulerError,
    SubmitUnit,
)
from morphcpt.controller.state import StateStore
from morphcpt.controller.status import stage_rows
from morphcpt.render.scripts import RenderTarget

FIXTURES = Path(__file__).parent / "fixtures/pbs"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text())
    return data


class FakePBS:
    """Answers each command with the fixture recorded for exactly that command line; any other command fails
    the test (the backend asked something no real server was shown to answer)."""

    def __init__(self, *names: str) -> None:
        self.answers = {tuple(fixture(n)["command"]): fixture(n) for n in names}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> CommandResult:
        self.calls.append(list(argv))
        answer = self.answers.get(tuple(argv))
        assert answer is not None, f"no fixture for {argv}"
        return CommandResult(list(argv), answer["exit"], answer["stdout"], answer["stderr"])


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    experiment_path = write_yaml(tmp_path / "experiment.yaml", experiment)
    profile_path = write_yaml(tmp_path / "profile.yaml", profile_data("pbs", queue="workq"))
    target = RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, tmp_path
    )
    store = StateStore(tmp_path / "runs/demo/state.db")
    backend = PBSBackend(target, tmp_path / "runs/demo/submitit")
    made = Controller(target, store, backend, Policy(max_attempts=3, backoff_seconds=0.0))
    made.register()
    return made


def backend_of(controller: Controller) -> PBSBackend:
    assert isinstance(controller.backend, PBSBackend)
    return controller.backend


def submitted(controller: Controller, stage: str, job_id: str, state: str = PENDING, depends: list[str] = ()) -> None:
    """A task of `stage` the controller submitted earlier as `job_id`, last seen in `state`."""
    token = f"t{job_id.split('.')[0]}"
    controller.store.begin_submission(token, stage, {0: 1}, f"{stage}.{token}", list(depends))
    controller.store.finish_submission(token, job_id, [job_id], [str(controller.target.workdir / "none.log")])
    row = controller.store.latest_tasks()[(stage, 0)]
    started = time.time() - 60 if state == RUNNING else None
    controller.store.update_tasks([(state, None, "", started, None, stage, 0, row.attempt)])


def record_submissions(controller: Controller, monkeypatch: pytest.MonkeyPatch) -> list[SubmitUnit]:
    """qsub stands in: each submission gets the next id (201.pbs01, ...) and is recorded."""
    units: list[SubmitUnit] = []

    def submit(unit: SubmitUnit) -> tuple[str, list[str]]:
        units.append(unit)
        job_id = f"{200 + len(units)}.pbs01"
        return job_id, [job_id]

    monkeypatch.setattr(controller.backend, "submit", submit)
    return units


def test_json_answering_only_the_first_of_three_ids_resubmits_nothing(
    controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenPBS master (openpbs #2672): the json names 101 only. The two others are still queued: nothing is
    LOST or resubmitted, and from then on the poll is one dsv query that lists all three."""
    submitted(controller, "download_data", "101.pbs01", RUNNING)
    submitted(controller, "split_data", "102.pbs01", PENDING, depends=["101.pbs01"])
    submitted(controller, "generate_benchmarks", "103.pbs01", PENDING)
    controller.select(["split_data", "generate_benchmarks"])
    fake = FakePBS(
        "qstat_json_three_ids_master.yaml", "qstat_dsv_two_ids_master.yaml", "qstat_dsv_three_ids_master.yaml"
    )
    backend_of(controller).run = fake
    units = record_submissions(controller, monkeypatch)

    report = controller.step()

    assert units == [] and report.submitted == [] and not report.failed
    latest = controller.store.latest_tasks()
    got = {stage: (latest[(stage, 0)].state, latest[(stage, 0)].attempt) for stage, _ in latest}
    assert got == {"download_data": (RUNNING, 1), "split_data": (PENDING, 1), "generate_benchmarks": (PENDING, 1)}
    assert [call[4] for call in fake.calls] == ["json", "dsv"]

    fake.calls.clear()
    assert controller.step().submitted == []
    assert fake.calls == [["qstat", "-x", "-f", "-F", "dsv", "-t", "101.pbs01", "102.pbs01", "103.pbs01"]]


def test_one_purged_id_among_three_costs_only_that_job(controller: Controller) -> None:
    """OpenPBS 23.06: 999 is unknown (exit 153, one stderr line). The poll goes on; 999, asked alone with -x,
    is unknown to the scheduler and its history, so its markers decide (none: LOST); the others keep their
    state."""
    submitted(controller, "download_data", "101.pbs01", RUNNING)
    submitted(controller, "generate_benchmarks", "103.pbs01", PENDING)
    submitted(controller, "split_data", "999.pbs01", RUNNING)
    fake = FakePBS("qstat_json_one_purged_2306.yaml", "qstat_unknown_alone_2306.yaml")
    backend_of(controller).run = fake

    controller.poll()

    latest = controller.store.latest_tasks()
    assert latest[("download_data", 0)].state == RUNNING
    assert latest[("generate_benchmarks", 0)].state == PENDING
    assert latest[("split_data", 0)].state == "LOST"
    assert [call[-1] for call in fake.calls] == ["999.pbs01", "999.pbs01"]  # the batch, then 999 alone
    assert backend_of(controller).batch_format == "json"  # an unknown id is not a server that drops ids


def test_an_id_the_server_says_nothing_clear_about_keeps_its_recorded_state(controller: Controller) -> None:
    submitted(controller, "generate_benchmarks", "103.pbs01", PENDING)

    def silent(argv: list[str]) -> CommandResult:
        return CommandResult(argv, 15, "", "qstat: Unauthorized Request  103.pbs01\n")

    backend_of(controller).run = silent
    controller.poll()
    assert controller.store.latest_tasks()[("generate_benchmarks", 0)].state == PENDING


def test_without_job_history_the_backend_asks_without_x_and_the_markers_decide(controller: Controller) -> None:
    submitted(controller, "download_data", "101.pbs01", RUNNING)
    submitted(controller, "generate_benchmarks", "103.pbs01", RUNNING)
    fake = FakePBS(
        "qstat_no_history_2306.yaml", "qstat_no_history_without_x_2306.yaml", "qstat_no_history_alone_2306.yaml"
    )
    backend_of(controller).run = fake

    controller.poll()

    latest = controller.store.latest_tasks()
    assert latest[("download_data", 0)].state == RUNNING
    # Finished and forgotten (no history): no marker on disk, so it is lost, not done.
    assert latest[("generate_benchmarks", 0)].state == "LOST"
    assert backend_of(controller).history is False
    assert all("-x" not in call for call in fake.calls[1:])


def test_a_running_job_deleted_with_qdel_is_cancelled_and_its_stage_is_not_done(controller: Controller) -> None:
    """OpenPBS 23.06: qdel of a running job leaves Exit_status 0, substate 91, "... terminated by root@pbs01"."""
    fields = parse_qstat_json(fixture("qstat_json_qdel_running_2306.yaml")["stdout"])["104.pbs01"]
    state = job_state(fields)
    assert (state.state, state.exit_code) == (CANCELLED, 0)
    assert state.reason == "deleted while running (qdel by root@pbs01)" and state.started is not None

    # Deleted outside morphcpt (by hand, or by an administrator): a killed attempt, never a completion.
    submitted(controller, "download_data", "104.pbs01", RUNNING)
    backend_of(controller).run = FakePBS("qstat_json_qdel_running_2306.yaml")
    controller.poll()
    row = controller.store.latest_tasks()[("download_data", 0)]
    assert (row.state, row.exit_code, row.counted) == (CANCELLED, 0, 1)
    download = next(r for r in stage_rows(controller) if r["stage"] == "download_data")
    # Status says what happened to it (a watch resubmits it later, as after scancel on Slurm).
    assert download["done"] == 0 and download["state"] == "cancelled"


def test_morphcpt_cancel_of_a_running_job_shows_cancelled_and_is_never_resubmitted(
    controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`morphcpt cancel` while 104 runs and 108 has just finished: qdel names 108 (exit 35), which is no
    error; both are recorded as cancelled, status says so, and later polls and steps change nothing."""
    submitted(controller, "download_data", "104.pbs01", RUNNING)
    submitted(controller, "generate_benchmarks", "108.pbs01", RUNNING)
    backend_of(controller).run = FakePBS("qdel_finished_2306.yaml", "qstat_json_qdel_running_2306.yaml")
    units = record_submissions(controller, monkeypatch)

    assert sorted(controller.cancel(["download_data", "generate_benchmarks"])) == ["104.pbs01", "108.pbs01"]
    controller.select(["download_data"])
    controller.step()

    rows = {r["stage"]: r for r in stage_rows(controller)}
    assert rows["download_data"]["state"] == "cancelled" and rows["download_data"]["done"] == 0
    assert rows["generate_benchmarks"]["state"] == "cancelled"
    assert controller.store.latest_tasks()[("download_data", 0)].state == CANCELLED
    assert units == []
    # A poll that does see 104 (this controller deleted it) reads it as cancelled, whatever its exit status.
    assert backend_of(controller).states(["104.pbs01"])["104.pbs01"].reason == "cancelled by morphcpt (qdel)"


def test_qdel_complaints_other_than_finished_or_unknown_jobs_are_errors(controller: Controller) -> None:
    def refused(argv: list[str]) -> CommandResult:
        return CommandResult(argv, 159, "", "qdel: Unauthorized Request  104.pbs01\n")

    backend_of(controller).run = refused
    with pytest.raises(SchedulerError, match="Unauthorized Request"):
        controller.backend.cancel(["104.pbs01"])


def test_a_walltime_kill_is_a_timeout() -> None:
    """OpenPBS 23.06: Exit_status -29, substate 93, "... and exceeded resource walltime"."""
    state = job_state(parse_qstat_json(fixture("qstat_json_walltime_2306.yaml")["stdout"])["105.pbs01"])
    assert (state.state, state.exit_code) == (TIMEOUT, -29)
    assert state.reason.endswith("and exceeded resource walltime")


def test_a_dependent_pbs_deleted_after_its_afterok_parent_failed_reruns_with_the_parent(
    controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenPBS 23.06: 106 failed; PBS deleted 107 (state F, no Exit_status, no stime). 107 is not a failure of
    its own: uncounted, and resubmitted after the parent's new job (afterok on it) when the parent is retried."""
    jobs = parse_qstat_json(fixture("qstat_json_afterok_failed_2306.yaml")["stdout"])
    dependent = job_state(jobs["107.pbs01"])
    assert (dependent.state, dependent.exit_code, dependent.started) == (CANCELLED, None, None)
    assert "never ran" in dependent.reason and "106.pbs01" in dependent.reason
    assert job_state(jobs["106.pbs01"]).state == FAILED

    submitted(controller, "download_data", "106.pbs01", RUNNING)
    submitted(controller, "split_data", "107.pbs01", PENDING, depends=["106.pbs01"])
    controller.select(["split_data"])
    backend_of(controller).run = FakePBS("qstat_json_afterok_failed_2306.yaml")
    units = record_submissions(controller, monkeypatch)

    report = controller.step()

    assert [u.job.name for u in units] == ["download_data", "split_data"] and not report.failed
    assert units[1].depends == ["201.pbs01"]  # the parent's new job
    history = controller.store.tasks("split_data")
    assert [(r.attempt, r.state, r.counted) for r in history] == [(1, CANCELLED, 0), (2, PENDING, 1)]
    assert "never ran" in (history[0].reason or "")
    parent = controller.store.tasks("download_data")
    assert [(r.attempt, r.state, r.exit_code) for r in parent] == [(1, FAILED, 1), (2, PENDING, None)]


def test_dsv_lines_are_split_at_unescaped_delimiters_only() -> None:
    text = fixture("qstat_dsv_three_ids_master.yaml")["stdout"]
    jobs = parse_qstat_dsv(text)
    assert sorted(jobs) == ["101.pbs01", "102.pbs01", "103.pbs01"]
    assert {job_id: job_state(fields).state for job_id, fields in jobs.items()} == {
        "101.pbs01": RUNNING,
        "102.pbs01": PENDING,
        "103.pbs01": PENDING,
    }
    assert jobs["102.pbs01"]["depend"] == "afterok:101.pbs01@pbs01"
    assert jobs["103.pbs01"]["Resource_List.ncpus"] == "1"
    # qstat escapes the delimiter and its escape character inside values.
    line = r"Job Id: 7[2].s|comment=a\|b \\ c|job_state=X|Exit_status=0"
    assert parse_qstat_dsv(line) == {"7.s_2": {"comment": r"a|b \ c", "job_state": "X", "Exit_status": "0"}}
    assert job_state(parse_qstat_dsv(line)["7.s_2"]).state == COMPLETED


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("qsub_bad_uid_2306.yaml", "acl_roots"),
        ("qsub_illegal_J_2306.yaml", "one subjob"),
        ("qsub_norerun_array_2306.yaml", "-r y"),
    ],
)
def test_qsub_refusals_say_what_to_do(
    controller: Controller, monkeypatch: pytest.MonkeyPatch, name: str, hint: str
) -> None:
    words = fixture(name)["stderr"].strip()

    def qsub(argv: list[str]) -> str:
        raise SchedulerError(f"`qsub` failed: {words}")

    monkeypatch.setattr(pbs, "run_scheduler_command", qsub)
    (controller.target.workdir / "runs/demo/submitit").mkdir(parents=True)
    job = controller.jobs["download_data"]
    executor = backend_of(controller)._prepared(controller.unit(job, [0], [], "tokq"))
    with pytest.raises(SchedulerError) as raised:
        executor._submit_script()
    assert words in str(raised.value) and hint in str(raised.value)


def test_the_renderer_never_writes_what_qsub_refuses(controller: Controller) -> None:
    """-J 0-0 ("illegal -J value") and -r n on an array ("cannot submit non-rerunable Array Job")."""
    backend = backend_of(controller)
    single = backend.script(controller.unit(controller.jobs["download_data"], [0], [], "tok1")).splitlines()
    array = backend.script(controller.unit(controller.jobs["preprocess_data_vanilla"], [1, 2], [], "tok2"))
    assert not any(line.startswith("#PBS -J") for line in single)
    assert "#PBS -J 0-1" in array.splitlines() and "#PBS -r y" in array.splitlines()
    assert "#PBS -r n" not in array


def test_standalone_submitit_jobs_run_the_submitting_python_and_log_into_submitits_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sub it"
    executor = PBSExecutor(folder)
    assert executor.python == sys.executable
    assert executor._submitit_command_str.startswith(sys.executable)
    executor.update_parameters(job_name="probe")
    script = tmp_path / "job.pbs"
    script.write_text(executor._make_submission_file_text("echo out; echo err >&2", "uid"))
    assert f"#PBS -o {folder}/" in script.read_text()
    env = {**os.environ, "PBS_JOBID": "77.pbs01", "PBS_O_WORKDIR": str(tmp_path)}
    subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, check=True, timeout=60)
    # Where submitit's Job.stdout()/stderr() read them for job 77.pbs01.
    assert (folder / "77.pbs01_0_log.out").read_text() == "out\n"
    assert (folder / "77.pbs01_0_log.err").read_text() == "err\n"
