"""The demo's data stages through the controller on the real local Grid Engine: split -> preprocess (an array
per variant) -> merge, with native -hold_jid dependencies; a task killed with qdel while it runs is
resubmitted alone, and the outputs are the bytes an undisturbed run writes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import yaml
from gridengine import GridEngineCluster
from test_controller import make_workdir, reference_outputs, task_attempts

from conftest import EVIDENCE, profile_data, write_yaml


def data_stages_on_sge(work: Path) -> None:
    make_workdir(work)
    experiment = yaml.safe_load((work / "experiment.yaml").read_text())
    experiment["stages"] = [
        s for s in experiment["stages"] if s["uses"] in ("download", "split", "preprocess", "merge")
    ]
    write_yaml(work / "experiment.yaml", experiment)
    resources = {"default": {"nodes": 1, "ncpus": 1, "mem": "2GB", "walltime": "00:10:00"}}
    write_yaml(work / "profile.yaml", profile_data("sge", resources=resources, env={"OMP_NUM_THREADS": "1"}))


def running_tasks(cluster: GridEngineCluster, name: str) -> list[tuple[str, str]]:
    """(job number, task id) of the running tasks of jobs whose name starts with `name.`."""
    out = cluster.run("qstat", "-u", "*", "-s", "r", "-xml").stdout
    found = []
    for block in re.findall(r"<job_list[^>]*>(.*?)</job_list>", out, re.DOTALL):
        number = re.search(r"<JB_job_number>(\d+)<", block)
        job_name = re.search(r"<JB_name>([^<]+)<", block)
        task = re.search(r"<tasks>(\d+)<", block)
        if number and job_name and task and job_name.group(1).startswith(name + "."):
            found.append((number.group(1), task.group(1)))
    return found


def test_data_stages_run_with_hold_jid_and_a_killed_array_task_reruns_alone(
    gridengine: GridEngineCluster, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    data_stages_on_sge(work)
    log = (tmp_path / "controller.log").open("w")
    args = ["submit", "experiment.yaml", "-p", "profile.yaml", "--watch", "--interval", "1", "--backoff", "0"]
    controller = subprocess.Popen([sys.executable, "-m", "morphcpt", *args], cwd=work, stdout=log, stderr=log)
    killed: tuple[str, str] | None = None
    held = ""
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline:
        if not held:
            pending = gridengine.run("qstat", "-u", "*", "-s", "p").stdout
            held = next((line for line in pending.splitlines() if " hqw " in line and "merge_data" in line), "")
        tasks = running_tasks(gridengine, "preprocess_data_patok")
        if tasks:
            killed = tasks[0]
            gridengine.run("qdel", killed[0], "-t", killed[1])
        time.sleep(0.2)
    assert killed is not None, "never saw a patok array task running"
    EVIDENCE.append(f"data stages on Grid Engine: killed preprocess_data_patok task {killed[1]} (job {killed[0]})")
    assert controller.wait(timeout=900) == 0, (tmp_path / "controller.log").read_text()[-4000:]
    if held:
        EVIDENCE.append(f"data stages on Grid Engine: a merge waited in hqw: {held.split()[:5]}")

    # Grid Engine tasks count from 1 = chunk 1: only the killed chunk ran twice.
    attempts = task_attempts(work, "preprocess_data_patok")
    assert {chunk for chunk, n in attempts.items() if n == 2} == {int(killed[1])}, attempts
    assert set(task_attempts(work, "preprocess_data_vanilla").values()) == {1}
    produced = work / "data/demo/processed/patok"
    reference = reference_outputs(tmp_path, work, "patok")
    assert {name: (produced / name).read_bytes() for name in reference} == reference
