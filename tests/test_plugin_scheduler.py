"""A scheduler from a separate, pip-installed package (tests/plugin_scheduler, entry point
`morphcpt.schedulers`) renders its own scripts and is driven by the controller, with no edit of morphcpt.
It runs jobs as local processes (morphcpt's local backend), so no scheduler daemon is needed here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, profile_data, write_yaml

PLUGIN = REPO / "tests" / "plugin_scheduler"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", site, PLUGIN],
        check=True,
        timeout=300,
    )
    return str(site)


def morphcpt(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "morphcpt", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_scheduler_from_an_installed_package_renders_and_runs_under_the_controller(
    tmp_path: Path, plugin_path: str
) -> None:
    env = {"PYTHONPATH": plugin_path}
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    experiment["stages"] = [
        {"name": "download_data", "uses": "download"},
        {"name": "split_data", "uses": "split", "after": ["download_data"]},
    ]
    write_yaml(tmp_path / "experiment.yaml", experiment)
    write_yaml(tmp_path / "profile.yaml", profile_data("batchsh"))
    built = morphcpt(tmp_path, "demo-data", "-e", "experiment.yaml", "--documents", "200", "--vocab-size", "400")
    assert built.returncode == 0, built.stderr

    unknown = morphcpt(tmp_path, "render", "-p", "profile.yaml", "-e", "experiment.yaml", "--out", "jobs")
    assert unknown.returncode == 2 and "unknown scheduler 'batchsh'" in unknown.stderr
    assert "profile.yaml:" in unknown.stderr  # the file and line of `scheduler:`

    rendered = morphcpt(tmp_path, "render", "-p", "profile.yaml", "-e", "experiment.yaml", "--out", "jobs", env=env)
    assert rendered.returncode == 0, rendered.stderr
    script = (tmp_path / "jobs/split_data.batch").read_text()
    assert script.startswith("#!/bin/bash\n# batchsh job split_data: 1 cpu(s), 256M, at most 00:10:00\n")
    assert 'MORPHCPT_JOB_ID="${PBS_JOBID:-' in script and "${BATCHSH_JOB_ID:-local-$$}" in script

    submitted = morphcpt(
        tmp_path, "submit", "experiment.yaml", "-p", "profile.yaml", "--watch", "--interval", "1", env=env
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "every stage is done" in submitted.stdout
    assert (tmp_path / "data/demo/chunks/manifest.json.done.json").exists()
