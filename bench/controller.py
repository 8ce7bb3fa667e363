"""Controller speed on the real local Slurm: time to submit the full default experiment, and time of one
status poll with ~1,000 jobs in the scheduler and the state store.

    .venv/bin/python bench/controller.py            # starts (and stops) its own local Slurm
    SLURM_CONF=... .venv/bin/python bench/controller.py   # or uses a running one

Jobs are submitted held (`#SBATCH --hold`), so nothing runs; they are cancelled at the end.
Targets: submit under 5 s, one poll under 1 s.
"""

from __future__ import annotations

import os
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


def _submit(root: Path, name: str, chunks: int) -> tuple[float, int, object]:
    experiment = yaml.safe_load((REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text())
    experiment["name"] = name
    experiment["data"]["num_chunks"] = chunks
    profile = yaml.safe_load((REPO / "configs/clusters/local-slurm.yaml").read_text())
    profile["extra_directives"] = ["--hold"]
    profile["python"] = sys.executable
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


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="morphcpt-bench-") as tmp:
        root = Path(tmp)
        cluster = None
        if not os.environ.get("SLURM_CONF"):
            cluster = root / "slurm"
            env = {**os.environ, "MORPHCPT_SLURMCTLD_PORT": _port(), "MORPHCPT_SLURMD_PORT": _port()}
            subprocess.run(
                ["bash", str(REPO / "tests/cluster/local_slurm.sh"), "start", str(cluster), "8"],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            os.environ["SLURM_CONF"] = str(cluster / "slurm.conf")
        try:
            seconds, jobs, controller = _submit(root, "bench-default", 20)
            submissions = len(controller.store.db.execute("SELECT token FROM submissions").fetchall())
            print(
                f"submit, default experiment (3 x 20 arrays + the rest): {seconds:.2f} s "
                f"for {submissions} sbatch calls, {jobs} jobs  [target < 5 s]"
            )
            controller.cancel()
            _, jobs, big = _submit(root, "bench-1000", 325)
            times = []
            for _ in range(5):
                start = time.perf_counter()
                big.poll()
                stage_rows(big)
                times.append(time.perf_counter() - start)
            print(
                f"status poll with {jobs} jobs in the store and the scheduler: median {statistics.median(times):.3f} s "
                f"(min {min(times):.3f}, max {max(times):.3f})  [target < 1 s]"
            )
            big.cancel()
        finally:
            if cluster is not None:
                subprocess.run(["bash", str(REPO / "tests/cluster/local_slurm.sh"), "stop", str(cluster)], check=False)


if __name__ == "__main__":
    main()
