"""Controller speed on the real local Slurm and Grid Engine: time to submit the full default experiment, and
time of one status poll with ~1,000 jobs in the scheduler and the state store.

    .venv/bin/python bench/controller.py [--scheduler slurm|sge|both]   # starts (and stops) its own clusters

Jobs are submitted held (Slurm `--hold`, Grid Engine `-h`), so nothing runs; they are cancelled at the end.
Targets: submit under 5 s, one poll under 1 s. (The experiment's training runs on the CPU backend here, so that
the profile's zero GPUs fit its plan; the graph and the job count are the seed plan's.)
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from morphcpt.controller import open_controller  # noqa: E402
from morphcpt.controller.status import stage_rows  # noqa: E402


def _port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _submit(root: Path, name: str, chunks: int, scheduler: str) -> tuple[float, int, object]:
    experiment = yaml.safe_load((REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text())
    experiment["name"] = name
    experiment["data"]["num_chunks"] = chunks
    experiment["training"]["backend"] = "cpu"
    profile = yaml.safe_load((REPO / "configs/clusters/local-slurm.yaml").read_text())
    profile["python"] = sys.executable
    if scheduler == "sge":
        profile.update(name="local-sge", scheduler="sge", queue=None, extra_directives=["-h"])
    else:
        profile["extra_directives"] = ["--hold"]
    exp_path = _write(root / f"{name}.yaml", experiment)
    prof_path = _write(root / "profile.yaml", profile)
    start = time.perf_counter()
    controller = open_controller(str(exp_path), str(prof_path), root)
    controller.select(None)
    report = controller.step()
    elapsed = time.perf_counter() - start
    jobs = sum(1 for row in controller.store.tasks() if row.job_id)
    assert not report.failed, report.stopped
    return elapsed, jobs, controller


def _measure(root: Path, scheduler: str) -> None:
    seconds, jobs, controller = _submit(root, "bench-default", 20, scheduler)
    submissions = len(controller.store.db.execute("SELECT token FROM submissions").fetchall())
    print(
        f"{scheduler}: submit, default experiment (3 x 20 arrays + the rest): {seconds:.2f} s "
        f"for {submissions} submissions, {jobs} jobs  [target < 5 s]"
    )
    controller.cancel()
    controller.lock.release()
    _, jobs, big = _submit(root, "bench-1000", 325, scheduler)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        big.poll()
        stage_rows(big)
        times.append(time.perf_counter() - start)
    print(
        f"{scheduler}: status poll with {jobs} jobs in the store and the scheduler: median "
        f"{statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f})  [target < 1 s]"
    )
    big.cancel()
    big.lock.release()


def _slurm(root: Path) -> None:
    cluster = root / "slurm"
    env = {**os.environ, "MORPHCPT_SLURMCTLD_PORT": _port(), "MORPHCPT_SLURMD_PORT": _port()}
    script = str(REPO / "tests/cluster/local_slurm.sh")
    subprocess.run(["bash", script, "start", str(cluster), "8"], check=True, env=env, stdout=subprocess.DEVNULL)
    os.environ["SLURM_CONF"] = str(cluster / "slurm.conf")
    try:
        _measure(root / "slurm-work", "slurm")
    finally:
        subprocess.run(["bash", script, "stop", str(cluster)], check=False, stdout=subprocess.DEVNULL)


def _sge(root: Path) -> None:
    cluster = root / "sge"
    env = {**os.environ, "MORPHCPT_SGE_QMASTER_PORT": _port(), "MORPHCPT_SGE_EXECD_PORT": _port()}
    script = str(REPO / "tests/cluster/local_gridengine.sh")
    started = subprocess.run(["bash", script, "start", str(cluster), "8"], check=True, env=env, capture_output=True,
                             text=True)  # fmt: skip
    for name, value in re.findall(r"^export (\w+)=(.*)$", started.stdout, re.MULTILINE):
        os.environ[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    try:
        _measure(root / "sge-work", "sge")
    finally:
        subprocess.run(["bash", script, "stop", str(cluster)], check=False, env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", choices=["slurm", "sge", "both"], default="both")
    chosen = parser.parse_args().scheduler
    with tempfile.TemporaryDirectory(prefix="morphcpt-bench-") as tmp:
        root = Path(tmp)
        for name, run in (("slurm", _slurm), ("sge", _sge)):
            if chosen in (name, "both"):
                (root / f"{name}-work").mkdir()
                run(root)


if __name__ == "__main__":
    main()
