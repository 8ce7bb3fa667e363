"""One controller per experiment on the real local Slurm: a second `watch` refuses while the first follows the
run, and `status` beside it changes nothing in the state database."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_controller import make_workdir, run

from conftest import SlurmCluster

pytestmark = pytest.mark.slurm


def state_digest(root: Path) -> str:
    """The database's files as they are on disk (with WAL, a write lands in state.db-wal first)."""
    digest = hashlib.sha256()
    for name in ("state.db", "state.db-wal"):
        path = root / "runs/demo" / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def test_a_second_watch_refuses_and_status_beside_watch_writes_nothing(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    make_workdir(tmp_path)
    run(tmp_path, "submit", "experiment.yaml", "-p", "profile.yaml", "--no-watch")
    lock = tmp_path / "runs/demo/controller.lock"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "morphcpt", "watch", "experiment.yaml", "--interval", "600"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = lock.read_text() if lock.exists() else ""
            if text and json.loads(text)["pid"] == watcher.pid:
                break
            assert watcher.poll() is None, watcher.stderr.read() if watcher.stderr else ""
            time.sleep(0.2)
        else:
            raise AssertionError("the watcher never took the controller lock")
        time.sleep(2)  # let the watcher finish its first step and go to sleep for its interval

        second = run(tmp_path, "watch", "experiment.yaml", "--interval", "1", check=False)
        assert second.returncode == 2
        assert f"another morphcpt controller is acting on demo: pid {watcher.pid}" in second.stderr
        retry = run(tmp_path, "retry", "experiment.yaml", "split_data", check=False)
        assert retry.returncode == 2 and "another morphcpt controller" in retry.stderr

        before = state_digest(tmp_path)
        shown = run(tmp_path, "status", "experiment.yaml", "--json")
        assert "a controller is following demo" in shown.stderr
        assert {row["stage"] for row in json.loads(shown.stdout)["stages"]} >= {"split_data", "analyze"}
        assert state_digest(tmp_path) == before
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)
    # The lock went with its holder: the next controller acts (here: cancels what is still queued).
    cancelled = run(tmp_path, "cancel", "experiment.yaml")
    assert cancelled.stdout.startswith("cancelled")
    assert os.path.exists(lock)
