"""The controller's resubmit decisions, one task at a time, from its attempts so far and the disk: backoff,
the attempt limit, the same error twice, time-budget resumes, cancellations that are not failures, and a
finished task whose marker is gone. The real StateStore and experiment; the history rows are written here."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, profile_data, write_yaml
from morphcpt.cluster.local import LocalBackend
from morphcpt.config import load_experiment, load_profile
from morphcpt.controller.engine import Controller, Policy
from morphcpt.controller.state import StateStore, TaskRow
from morphcpt.render.scripts import RenderTarget


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    experiment_path = write_yaml(tmp_path / "experiment.yaml", experiment)
    profile_path = write_yaml(tmp_path / "profile.yaml", profile_data("local"))
    target = RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, tmp_path
    )
    store = StateStore(tmp_path / "runs/demo/state.db")
    policy = Policy(max_attempts=3, max_resumes=4, backoff_seconds=10.0)
    return Controller(target, store, LocalBackend(target, tmp_path / "runs/demo/submitit"), policy)


def row(attempt: int, state: str, exit_code: int | None = None, reason: str = "", ended: float = 0.0, **kw) -> TaskRow:
    fields = {"stage": "split_data", "task": 0, "token": "t", "job_id": f"j{attempt}", "counted": 1}
    fields |= {"submitted": ended - 5, "started": ended - 4, "log_path": None} | kw
    return TaskRow(attempt=attempt, state=state, exit_code=exit_code, reason=reason, ended=ended, **fields)


def decide(controller: Controller, history: list[TaskRow], now: float, job: str = "split_data") -> tuple[str, str]:
    controller._disk = {}
    return controller._decide(controller.jobs[job], 0, history, now, None)


def test_a_failure_waits_for_its_backoff_then_resubmits(controller: Controller) -> None:
    history = [row(1, "FAILED", 1, "exit 1: boom", ended=1000.0)]
    assert decide(controller, history, now=1005.0) == ("wait", "backoff")
    assert decide(controller, history, now=1011.0)[0] == "submit"


def test_the_backoff_doubles_with_each_counted_failure(controller: Controller) -> None:
    history = [row(1, "FAILED", 1, "a", ended=900.0), row(2, "FAILED", 2, "b", ended=1000.0)]
    assert decide(controller, history, now=1015.0) == ("wait", "backoff")
    assert decide(controller, history, now=1021.0)[0] == "submit"


def test_the_same_error_twice_stops(controller: Controller) -> None:
    history = [row(1, "FAILED", 2, "exit 2: bad input", ended=900.0), row(2, "FAILED", 2, "exit 2: bad input")]
    verdict, why = decide(controller, history, now=time.time())
    assert verdict == "stop" and "failed twice with the same error (exit 2: bad input)" in why


def test_max_attempts_of_different_failures_stops(controller: Controller) -> None:
    history = [row(1, "FAILED", 1, "a"), row(2, "TIMEOUT", None, "walltime"), row(3, "FAILED", 9, "c")]
    verdict, why = decide(controller, history, now=time.time())
    assert verdict == "stop" and why.startswith("3 failed attempts")


def test_cancelled_before_it_started_is_not_a_failure(controller: Controller) -> None:
    history = [row(1, "CANCELLED", started=None, counted=0)]
    assert decide(controller, history, now=time.time()) == ("submit", "")


def test_time_budget_stops_resume_until_the_resume_limit(controller: Controller) -> None:
    resumes = [row(i, "BUDGET", 3, "", stage="run_cpt_baseline") for i in range(1, 5)]
    assert decide(controller, resumes, now=time.time(), job="run_cpt_baseline")[0] == "submit"
    resumes.append(row(5, "BUDGET", 3, "", stage="run_cpt_baseline"))
    verdict, why = decide(controller, resumes, now=time.time(), job="run_cpt_baseline")
    assert verdict == "stop" and "after 5 resumes" in why


def test_a_finished_task_whose_marker_is_gone_runs_again(controller: Controller) -> None:
    history = [row(1, "COMPLETED", 0)]
    verdict, why = decide(controller, history, now=time.time())
    assert verdict == "submit" and "manifest.json.done.json is missing" in why


def test_a_task_complete_on_disk_with_no_history_is_done_and_recorded_as_skipped(
    controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from morphcpt.data.split import split_corpus

    monkeypatch.chdir(controller.target.workdir)
    corpus = Path("data/corpora/demo_tl.jsonl")
    corpus.parent.mkdir(parents=True)
    corpus.write_text("".join(f'{{"text": "isa {i}"}}\n' for i in range(8)))
    split_corpus(corpus, Path("data/demo/chunks"), 4)
    assert decide(controller, [], now=time.time()) == ("done", "")
    assert [r.state for r in controller.store.tasks("split_data")] == ["SKIPPED"]
    # Changing what the split depends on makes it incomplete again, whatever the history says.
    corpus.write_text(corpus.read_text() + '{"text": "dalawa"}\n')
    verdict, why = decide(controller, controller.store.tasks("split_data"), now=time.time())
    assert verdict == "submit" and "corpus_bytes changed" in why


def test_two_attempts_without_progress_stop_with_the_no_progress_message(controller: Controller) -> None:
    stalled = "no progress in 41 s: start-up took 38 s of a 40 s budget"
    one = [row(1, "FAILED", 3, stalled, stage="run_cpt_baseline", ended=1000.0)]
    assert decide(controller, one, now=2000.0, job="run_cpt_baseline")[0] == "submit"
    two = [*one, row(2, "FAILED", 3, stalled.replace("41", "43"), stage="run_cpt_baseline", ended=1100.0)]
    verdict, why = decide(controller, two, now=2000.0, job="run_cpt_baseline")
    assert verdict == "stop" and why.startswith("no progress in 43 s: start-up took 38 s of a 40 s budget")


def test_a_budget_stop_that_did_not_advance_the_step_is_a_no_progress_failure(controller: Controller) -> None:
    job = controller.jobs["run_cpt_baseline"]
    directory = controller.ctx.layout.checkpoint_dir("baseline")
    directory.mkdir(parents=True)
    (directory / "latest").write_text("step_000050\n")
    (directory / "attempt.json").write_text('{"startup_seconds": 38.0, "budget_seconds": 40.0}')
    submitted_at_50 = row(2, "RUNNING", stage="run_cpt_baseline", ended=1000.0, progress=50)
    why = controller._no_progress(job, submitted_at_50, started=1000.0, ended=1041.0)
    assert why == "no progress in 41 s: start-up took 38 s of a 40 s budget"
    (directory / "latest").write_text("step_000060\n")
    assert controller._no_progress(job, submitted_at_50, started=1000.0, ended=1041.0) == ""


def test_a_forgotten_training_job_whose_checkpoint_advanced_is_a_budget_stop_not_lost(controller: Controller) -> None:
    job = controller.jobs["run_cpt_baseline"]
    directory = controller.ctx.layout.checkpoint_dir("baseline")
    directory.mkdir(parents=True)
    submitted_at_50 = row(2, "RUNNING", stage="run_cpt_baseline", progress=50)
    (directory / "latest").write_text("step_000050\n")
    assert controller._aged_out(job, submitted_at_50)[0] == "LOST"
    (directory / "latest").write_text("step_000100\n")
    assert controller._aged_out(job, submitted_at_50)[0] == "BUDGET"


def test_a_failure_names_the_last_line_of_the_jobs_own_log_when_the_schedulers_never_arrived(tmp_path: Path) -> None:
    from morphcpt.controller.engine import _failure_tail
    from morphcpt.render.scripts import job_log_path

    scheduler_log = tmp_path / "logs" / "tok.log"
    own = job_log_path(scheduler_log, "tok")
    assert own is not None
    own.parent.mkdir(parents=True)
    own.write_text(
        "loading\nValueError: chunk 3 is empty\n[morphcpt] split_data exit status 1 at 2026-12-02T07:15:48Z\n"
    )
    failed = row(1, "FAILED", 1, token="tok", log_path=str(scheduler_log))
    # PBS delivers -o only when the job ends (or to undelivered/): the job's own log has the error.
    assert _failure_tail(failed) == "ValueError: chunk 3 is empty"
    scheduler_log.write_text("=>> PBS: job killed: walltime 60 exceeded limit 50\n")
    assert _failure_tail(failed) == "=>> PBS: job killed: walltime 60 exceeded limit 50"
