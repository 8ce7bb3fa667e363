"""The controller on the real local Slurm: the reduced demo end to end with native afterok dependencies, and
the fault cases: array tasks killed with scancel, training cut by its time budget, the controller killed while
submitting, and a stage that fails the same way twice."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import EVIDENCE, REPO, SlurmCluster, profile_data, write_yaml
from morphcpt.config import load_experiment
from morphcpt.controller.executors import SchedulerError, run_scheduler_command

pytestmark = pytest.mark.slurm


def make_workdir(root: Path, **training: object) -> tuple[Path, Path]:
    """A workdir with a small real Filipino corpus and tokenizer, the demo experiment and a Slurm profile."""
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    experiment["training"].update({"max_steps": 40, "checkpoint_interval": 20, "val_interval": 20, **training})
    experiment["evaluation"]["items_per_suite"] = 12
    write_yaml(root / "experiment.yaml", experiment)
    resources = {
        "default": {"nodes": 1, "ncpus": 1, "mem": "1GB", "walltime": "00:10:00"},
        "train": {"mem": "2GB", "walltime": "00:01:00"},
    }
    profile = profile_data("slurm", max_concurrent_tasks=4, resources=resources, env={"OMP_NUM_THREADS": "1"})
    write_yaml(root / "profile.yaml", profile)
    run(root, "demo-data", "-e", "experiment.yaml", "--documents", "1200", "--vocab-size", "1500")
    return root / "experiment.yaml", root / "profile.yaml"


def run(
    root: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "morphcpt", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"morphcpt {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def submit_args(*extra: str) -> list[str]:
    return ["submit", "experiment.yaml", "-p", "profile.yaml", "--watch", "--interval", "1", "--backoff", "0", *extra]


def status(root: Path) -> dict[str, dict]:
    rows = json.loads(run(root, "status", "experiment.yaml", "--json").stdout)["stages"]
    return {row["stage"]: row for row in rows}


def task_attempts(root: Path, stage: str) -> dict[int, int]:
    with sqlite3.connect(root / "runs/demo/state.db") as db:
        rows = db.execute("SELECT task, MAX(attempt) FROM tasks WHERE stage = ? GROUP BY task", (stage,)).fetchall()
    return dict(rows)


def jobs_named(cluster: SlurmCluster, prefix: str, root: Path) -> list[dict[str, str]]:
    """The jobs a controller working in `root` submitted for stage `prefix` (the cluster is shared by tests)."""
    out = cluster.run("scontrol", "show", "job", "-o").stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields.get("JobName", "").startswith(prefix + ".") and fields.get("Command", "").startswith(str(root)):
            jobs.append(fields)
    return jobs


def reference_outputs(tmp_path: Path, work: Path, variant: str) -> dict[str, bytes]:
    """The variant's processed files from an undisturbed in-process run over the same corpus and tokenizer."""
    from morphcpt.data.download import download_corpus
    from morphcpt.data.preprocess import merge_variant, preprocess_chunk
    from morphcpt.data.split import split_corpus

    ref = tmp_path / "reference"
    for name in ("experiment.yaml", "data/corpora/demo_source.jsonl", "data/demo/tokenizer/tokenizer.json"):
        (ref / name).parent.mkdir(parents=True, exist_ok=True)
        (ref / name).write_bytes((work / name).read_bytes())
    cwd = Path.cwd()
    os.chdir(ref)
    try:
        exp = load_experiment("experiment.yaml")
        download_corpus(exp)
        split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), exp.data.num_chunks)
        for chunk in range(1, exp.data.num_chunks + 1):
            preprocess_chunk(exp, variant, chunk)
        merge_variant(exp, variant)
    finally:
        os.chdir(cwd)
    out = ref / "data/demo/processed" / variant
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix in (".bin", ".idx")}


def test_reduced_demo_completes_and_only_killed_array_tasks_rerun(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    make_workdir(work)
    log = (tmp_path / "controller.log").open("w")
    controller = subprocess.Popen(
        [sys.executable, "-m", "morphcpt", *submit_args()], cwd=work, stdout=log, stderr=subprocess.STDOUT
    )
    # Two tasks of the patok array are cancelled while they run; the merge waits on the array with afterok.
    killed: list[str] = []
    dependency = ""
    deadline = time.monotonic() + 300
    while len(killed) < 2 and time.monotonic() < deadline:
        running = [j for j in jobs_named(slurm_cluster, "preprocess_data_patok", work) if j["JobState"] == "RUNNING"]
        merge = jobs_named(slurm_cluster, "merge_data_patok", work)
        if merge and not dependency:
            dependency = merge[0]["Dependency"]
        for job in running[: 2 - len(killed)]:
            task_id = f"{job['ArrayJobId']}_{job['ArrayTaskId']}"
            slurm_cluster.run("scancel", task_id)
            killed.append(job["ArrayTaskId"])
        time.sleep(0.2)
    assert len(killed) == 2, "never saw two patok array tasks running"
    EVIDENCE.append(f"reduced demo on Slurm: merge_data_patok had Dependency={dependency} (scontrol show job)")
    EVIDENCE.append(f"reduced demo on Slurm: cancelled patok array tasks {killed} while they ran")
    assert dependency.startswith("afterok:"), dependency
    assert controller.wait(timeout=900) == 0, (tmp_path / "controller.log").read_text()[-4000:]

    stages = status(work)
    assert {row["state"] for row in stages.values()} == {"done"}, stages
    # Tasks are array positions 0..3 = chunks 1..4: only the two cancelled chunks have a second attempt.
    attempts = task_attempts(work, "preprocess_data_patok")
    assert {chunk for chunk, n in attempts.items() if n == 2} == {int(i) + 1 for i in killed}, attempts
    assert set(task_attempts(work, "preprocess_data_vanilla").values()) == {1}

    produced = work / "data/demo/processed/patok"
    reference = reference_outputs(tmp_path, work, "patok")
    assert {name: (produced / name).read_bytes() for name in reference} == reference
    report = work / "results/report.md"
    assert report.exists() and list(report.parent.glob("*.png"))
    assert re.search(r"\| *baseline", report.read_text())

    # Submitting again finds every marker valid: nothing is submitted.
    again = run(work, *submit_args())
    assert "submitted" not in again.stdout and "every stage is done" in again.stdout


def test_training_cut_by_its_time_budget_resumes_to_the_target_step(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    # Walltime 1 min, margin 40 s: each job has 20 s (start-up included), far fewer than 800 steps need.
    make_workdir(tmp_path, max_steps=800, checkpoint_interval=100, time_budget_margin_seconds=40)
    result = run(tmp_path, *submit_args("--stage", "run_cpt_baseline"))
    row = status(tmp_path)["run_cpt_baseline"]
    assert row["state"] == "done" and row["resumes"] >= 1, row
    assert json.loads((tmp_path / "checkpoints/demo/baseline/done.json").read_text())["step"] == 800
    # Each attempt stopped at its budget with a checkpoint at that very step, and the next one resumed there:
    # no more than one checkpoint interval of steps is ever repeated.
    attempts = row["attempts"]
    ends, starts = [], []
    for attempt in range(1, attempts + 1):
        text = run(tmp_path, "logs", "experiment.yaml", "run_cpt_baseline", "--attempt", str(attempt)).stdout
        ended = re.search(r"baseline: step (\d+), .*exit status (\d+)", text)
        assert ended, text
        ends.append(int(ended.group(1)))
        resumed = re.search(r"resumed from step (\d+)", text)
        starts.append(int(resumed.group(1)) if resumed else 0)
        assert ended.group(2) == ("0" if attempt == attempts else "3"), text
    assert starts[0] == 0 and ends[-1] == 800
    for stopped, resumed_at in zip(ends, starts[1:], strict=False):
        assert 0 <= stopped - resumed_at <= 100, (ends, starts)
    EVIDENCE.append(f"time budget on Slurm: {attempts} attempts ended at steps {ends}, resumed from {starts[1:]}")
    steps = [json.loads(line)["step"] for line in (tmp_path / "checkpoints/demo/baseline/metrics.jsonl").open()]
    assert steps == sorted(set(steps)) and steps[-1] == 800
    assert "export_baseline" not in result.stdout  # only what was asked for, and what it needs


def test_controller_killed_while_submitting_submits_nothing_twice(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    make_workdir(tmp_path)
    crashed = run(
        tmp_path, *submit_args("--stage", "data_stats"), check=False, env={"MORPHCPT_FAULT_EXIT_AFTER_SUBMITS": "3"}
    )
    assert crashed.returncode == 137
    with sqlite3.connect(tmp_path / "runs/demo/state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM submissions WHERE state = 'SUBMITTING'").fetchone()[0] == 1
    run(tmp_path, *submit_args("--stage", "data_stats"))
    stages = status(tmp_path)
    for name in ("download_data", "split_data", "preprocess_data_vanilla", "merge_data_patok", "data_stats"):
        assert stages[name]["state"] == "done", stages[name]
        submissions = {j.get("ArrayJobId") or j["JobId"] for j in jobs_named(slurm_cluster, name, tmp_path)}
        assert len(submissions) == 1, f"{name} was submitted {len(submissions)} times: {submissions}"


def test_deterministic_failure_stops_and_cancels_dependents(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    make_workdir(tmp_path)
    (tmp_path / "data/corpora/demo_source.jsonl").unlink()  # the download stage cannot succeed
    result = run(tmp_path, *submit_args(), check=False)
    assert result.returncode == 1, result.stdout
    assert "stage download_data failed" in result.stdout and "same error" in result.stdout
    stages = status(tmp_path)
    assert stages["download_data"]["state"] == "failed" and stages["download_data"]["attempts"] == 2
    assert stages["split_data"]["state"] == "blocked"
    assert stages["analyze"]["state"] == "blocked"
    for name in ("split_data", "merge_data_vanilla", "evaluate"):
        jobs = jobs_named(slurm_cluster, name, tmp_path)
        assert jobs and all(j["JobState"] == "CANCELLED" for j in jobs), (name, jobs)


def test_transient_scheduler_errors_are_retried_and_permanent_ones_surface(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """A stand-in `sbatch` first answers like a busy controller (or a bad account), then calls the real one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True, check=True).stdout.strip()
    (bin_dir / "sbatch").write_text(
        f"""#!/bin/bash
count=$(( $(cat "{tmp_path}/calls" 2>/dev/null || echo 0) + 1 )); echo $count > "{tmp_path}/calls"
if [[ -n "${{PERMANENT:-}}" ]]; then
  echo "sbatch: error: Invalid account or account/partition combination specified" >&2; exit 1
fi
if [[ $count == 1 ]]; then echo "sbatch: error: Socket timed out on send/recv operation" >&2; exit 1; fi
exec {real} "$@"
"""
    )
    (bin_dir / "sbatch").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    command = ["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "true"]
    old = os.environ["PATH"]
    os.environ["PATH"] = path
    try:
        job = run_scheduler_command(command, delay=0.1).strip()
        assert job.isdigit() and (tmp_path / "calls").read_text().strip() == "2"
        (tmp_path / "calls").unlink()
        os.environ["PERMANENT"] = "1"
        with pytest.raises(SchedulerError, match="Invalid account"):
            run_scheduler_command(command, delay=0.1)
        assert (tmp_path / "calls").read_text().strip() == "1"
    finally:
        os.environ["PATH"] = old
        os.environ.pop("PERMANENT", None)


def test_time_budget_shorter_than_start_up_fails_with_no_progress_instead_of_livelocking(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    # Walltime 1 min, margin 58 s: a 2 s budget, less than the start-up (imports, datasets) of any attempt.
    make_workdir(tmp_path, max_steps=400, time_budget_margin_seconds=58)
    result = run(tmp_path, *submit_args("--stage", "run_cpt_baseline"), check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    row = status(tmp_path)["run_cpt_baseline"]
    assert row["state"] == "failed" and row["attempts"] == 2, row
    assert "no progress in" in row["message"] and "start-up took" in row["message"], row
    assert "give the job more walltime" in result.stdout
    assert not (tmp_path / "checkpoints/demo/baseline/latest").exists()
