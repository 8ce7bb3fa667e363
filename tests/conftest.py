"""Shared fixtures: a real local Slurm cluster for the session, and helpers to write configs and render jobs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cluster.gridengine import gridengine, gridengine_cluster  # noqa: F401  (fixtures for tests/cluster)

REPO = Path(__file__).resolve().parents[1]
LOCAL_SLURM = REPO / "tests" / "cluster" / "local_slurm.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class SlurmCluster:
    directory: Path
    conf: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SLURM_CONF": str(self.conf)}
        return subprocess.run(list(args), capture_output=True, text=True, env=env, check=check, timeout=60)

    def job_fields(self, job_id: str) -> list[dict[str, str]]:
        """`scontrol show job -o` as dicts (one per array task); empty once the job has aged out."""
        out = self.run("scontrol", "show", "job", "-o", job_id, check=False).stdout
        records = []
        for line in out.splitlines():
            fields = {}
            for part in line.split():
                key, _, value = part.partition("=")
                fields[key] = value
            if "JobId" in fields:
                records.append(fields)
        return records

    def wait(self, job_ids: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.run("squeue", "-h", "-o", "%i", "-j", ",".join(job_ids), check=False).stdout
            if not out.strip():
                return
            time.sleep(0.5)
        raise AssertionError(f"jobs {job_ids} still queued after {timeout} s:\n{out}")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A real single-node Slurm (munged + slurmctld + slurmd) for the whole session, stopped by PID at the end."""
    if not shutil.which("slurmctld"):
        message = "Slurm is not installed: run `make system-deps` (Debian slurmctld slurmd slurm-client munge)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("slurm")
    env = {
        **os.environ,
        "MORPHCPT_SLURMCTLD_PORT": str(_free_port()),
        "MORPHCPT_SLURMD_PORT": str(_free_port()),
    }
    subprocess.run(["bash", str(LOCAL_SLURM), "start", str(directory), "8"], check=True, env=env, timeout=120)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(directory / "slurm.conf")
    try:
        yield SlurmCluster(directory, directory / "slurm.conf")
    finally:
        subprocess.run(["bash", str(LOCAL_SLURM), "stop", str(directory)], check=False, timeout=60)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def profile_data(scheduler: str, **overrides: object) -> dict:
    """A small valid profile for `scheduler` that runs stages with this test's Python on the host."""
    data: dict = {
        "name": f"test-{scheduler}",
        "scheduler": scheduler,
        "max_array_size": 100,
        "resources": {"default": {"nodes": 1, "ncpus": 1, "mem": "256MB", "walltime": "00:10:00"}},
        "container": {"runtime": "none"},
        "python": sys.executable,
    }
    if scheduler == "pbs":
        data["project"] = "testproj"
    if scheduler == "slurm":
        data["queue"] = "debug"
    data.update(overrides)
    return data


def morphcpt(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "morphcpt", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"morphcpt {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def replace_body(script: Path, body: str) -> None:
    """Swap a rendered script's stage body (between its markers) for `body`; header and prologue stay as rendered."""
    lines = script.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("# >>> body:"))
    end = next(i for i, line in enumerate(lines) if line.startswith("# <<< body"))
    script.write_text("".join([*lines[: start + 1], body.rstrip("\n") + "\n", *lines[end:]]))


# Facts a test wants in the CI log even when it passes (e.g. the afterok dependency Slurm showed).
EVIDENCE: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if EVIDENCE:
        terminalreporter.section("evidence")
        for line in EVIDENCE:
            terminalreporter.write_line(line)
