"""The disk is the truth, on the real local Slurm after a complete reduced demo: an edited parameter reruns
exactly the jobs it reaches (and the dry run says so, naming the parameter), deleted markers rerun their
stage and what depends on it, `retry` reruns a finished stage, and a dry run writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from test_controller import make_workdir, run, submit_args, task_attempts

from conftest import SlurmCluster, write_yaml

pytestmark = pytest.mark.slurm


def mtimes(root: Path, *folders: str) -> dict[str, int]:
    found = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(root))] = path.stat().st_mtime_ns
    return found


def dry_run(root: Path) -> dict[str, str]:
    out = run(root, "submit", "experiment.yaml", "-p", "profile.yaml", "--dry-run").stdout
    plan = {}
    for line in out.splitlines():
        match = re.match(r"^(\w+)(?: \(tasks [\d,-]+\))?: (.*)$", line)
        if match:
            plan[match.group(1)] = match.group(2)
    return plan


def test_dry_run_in_a_fresh_workdir_writes_nothing(tmp_path: Path) -> None:
    make_workdir(tmp_path)
    plan = dry_run(tmp_path)
    assert plan["split_data"].startswith("reruns because") and "missing" in plan["split_data"]
    assert not (tmp_path / "runs").exists()


def test_edited_parameter_deleted_markers_and_retry_rerun_exactly_what_they_reach(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    make_workdir(tmp_path)
    # Submitted without watching: the jobs are queued on Slurm, reading the snapshot in runs/demo/.
    run(tmp_path, "submit", "experiment.yaml", "-p", "profile.yaml", "--no-watch")
    live = (tmp_path / "experiment.yaml").read_text()
    assert (tmp_path / "runs/demo/experiment.yaml").read_text() == live
    (tmp_path / "experiment.yaml").write_text(live.replace("seed: 1234", "seed: 99"))
    refused = run(tmp_path, "submit", "experiment.yaml", "-p", "profile.yaml", "--no-watch", check=False)
    assert refused.returncode == 2 and "changed since the last submission" in refused.stderr
    assert "seed: 1234" in (tmp_path / "runs/demo/experiment.yaml").read_text()  # the queued jobs' settings
    (tmp_path / "experiment.yaml").write_text(live)
    run(tmp_path, "watch", "experiment.yaml", "--interval", "1", "--backoff", "0")
    others = ("data/demo/processed/vanilla", "data/demo/processed/patok", "checkpoints/demo/baseline")
    others += (
        "checkpoints/demo/patok",
        "models/demo/baseline",
        "models/demo/patok",
        "results/baseline",
        "results/patok",
    )
    before = mtimes(tmp_path, *others)
    old_chunk = (tmp_path / "data/demo/processed/stochastok/chunk_0001.bin").read_bytes()
    complete = dry_run(tmp_path)
    assert all(v.startswith("complete") for v in complete.values()), complete

    # Edit stochastok's expand_prop: the dry run names exactly the jobs it reaches, and why.
    experiment = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    experiment["variants"]["stochastok"]["expand_prop"] = 0.3
    write_yaml(tmp_path / "experiment.yaml", experiment)
    db = tmp_path / "runs/demo/state.db"
    stamp = (db.stat().st_mtime_ns, (tmp_path / "runs/demo/experiment.yaml").read_bytes())
    plan = dry_run(tmp_path)
    rerun = {name for name, said in plan.items() if said.startswith("reruns")}
    assert rerun == {
        "preprocess_data_stochastok",
        "merge_data_stochastok",
        "data_stats",
        "run_cpt_stochastok",
        "export_stochastok",
        "evaluate",
        "analyze",
    }
    assert all("expand_prop changed (0.1 -> 0.3)" in plan[name] for name in rerun), plan
    assert stamp == (db.stat().st_mtime_ns, (tmp_path / "runs/demo/experiment.yaml").read_bytes())

    run(tmp_path, *submit_args())
    assert (tmp_path / "data/demo/processed/stochastok/chunk_0001.bin").read_bytes() != old_chunk
    assert mtimes(tmp_path, *others) == before  # the other variants' data, models and scores are untouched
    assert "expand_prop: 0.3" in (tmp_path / "runs/demo/experiment.yaml").read_text()  # the snapshot followed

    # Deleting the patok markers reruns the patok preprocess and merge; the same bytes come out.
    patok = tmp_path / "data/demo/processed/patok"
    data_before = {p.name: p.read_bytes() for p in patok.glob("*.bin")}
    for marker in patok.glob("*.done.json"):
        marker.unlink()
    vanilla_attempts = task_attempts(tmp_path, "preprocess_data_vanilla")
    patok_attempts = task_attempts(tmp_path, "preprocess_data_patok")
    run(tmp_path, *submit_args())
    assert task_attempts(tmp_path, "preprocess_data_vanilla") == vanilla_attempts
    assert all(task_attempts(tmp_path, "preprocess_data_patok")[t] > patok_attempts[t] for t in patok_attempts)
    assert {p.name: p.read_bytes() for p in patok.glob("*.bin")} == data_before
    assert len(list(patok.glob("*.done.json"))) == 5  # 4 chunks and the merge

    # retry of a finished stage reruns it.
    retried = run(tmp_path, "retry", "experiment.yaml", "preprocess_data_patok").stdout
    assert "removed the markers of 4 task(s)" in retried and "submitted preprocess_data_patok" in retried
    run(tmp_path, "watch", "experiment.yaml", "--interval", "1", "--backoff", "0")
    assert len(list(patok.glob("chunk_*.done.json"))) == 4
