"""A real single-node Grid Engine for the test session (tests/cluster/local_gridengine.sh), as pytest fixtures.

`gridengine_cluster` (session) starts sge_qmaster and sge_execd in a cell of their own under a temporary
directory and stops them at the end; `gridengine` (per test) puts the cluster's environment (SGE_ROOT,
SGE_CELL, the ports, Grid Engine's commands first on PATH) into os.environ for that test only, so that
`qsub` means Grid Engine's there and Slurm's Torque wrapper everywhere else.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LOCAL_GRIDENGINE = Path(__file__).resolve().parent / "local_gridengine.sh"
SGE_BIN = Path("/var/lib/gridengine/bin/lx-amd64")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_env(text: str) -> dict[str, str]:
    """The `export NAME=value` lines local_gridengine.sh prints ($PATH expanded to this process's)."""
    env = {}
    for name, value in re.findall(r"^export (\w+)=(.*)$", text, re.MULTILINE):
        env[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


@dataclass(frozen=True)
class GridEngineCluster:
    directory: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), capture_output=True, text=True, env={**os.environ, **self.env}, check=check, timeout=60
        )


@pytest.fixture(scope="session")
def gridengine_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GridEngineCluster]:
    """Grid Engine (qmaster + execd, 4 slots) for the whole session, stopped with qconf -ke / -km at the end."""
    if not all((SGE_BIN / tool).exists() for tool in ("sge_qmaster", "sge_execd", "qsub", "qacct")):
        message = "Grid Engine is not installed: run `make system-deps` (Debian gridengine 8.1.9: master, exec, client)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("gridengine")
    env = {
        **os.environ,
        "MORPHCPT_SGE_QMASTER_PORT": str(_free_port()),
        "MORPHCPT_SGE_EXECD_PORT": str(_free_port()),
    }
    started = subprocess.run(
        ["bash", str(LOCAL_GRIDENGINE), "start", str(directory), "4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    if started.returncode != 0:
        subprocess.run(["bash", str(LOCAL_GRIDENGINE), "stop", str(directory)], env=env, check=False, timeout=120)
        pytest.fail(f"Grid Engine did not start:\n{started.stdout}{started.stderr}")
    try:
        yield GridEngineCluster(directory, _parse_env(started.stdout))
    finally:
        subprocess.run(["bash", str(LOCAL_GRIDENGINE), "stop", str(directory)], env=env, check=False, timeout=120)


@pytest.fixture
def gridengine(gridengine_cluster: GridEngineCluster, monkeypatch: pytest.MonkeyPatch) -> GridEngineCluster:
    """The session's Grid Engine, its environment set for this test (SgeBackend runs qsub, qstat, qacct)."""
    for name, value in gridengine_cluster.env.items():
        monkeypatch.setenv(name, value)
    return gridengine_cluster
