"""A stage type from a separate, pip-installed package (tests/plugin_stage, entry point `morphcpt.stages`) runs
inside an experiment on the real local Slurm: under the controller, and as hand-rendered scripts submitted
with sbatch. Nothing in morphcpt names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_controller import make_workdir, run, submit_args

from conftest import REPO, SlurmCluster, write_yaml

pytestmark = pytest.mark.slurm
PLUGIN = REPO / "tests" / "plugin_stage"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The plugin package installed by pip into its own directory (a site dir on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            site,
            PLUGIN,
        ],
        check=True,
        timeout=300,
    )
    assert list(site.glob("morphcpt_wordcount-*.dist-info/entry_points.txt"))
    return str(site)


def counting_experiment(root: Path) -> None:
    experiment = yaml.safe_load((root / "experiment.yaml").read_text())
    experiment["stages"] = [
        {"name": "download_data", "uses": "download"},
        {"name": "split_data", "uses": "split", "after": ["download_data"]},
        {"name": "count_words", "uses": "count_words", "after": ["split_data"], "params": {"min_length": 3}},
    ]
    write_yaml(root / "experiment.yaml", experiment)


def counts(root: Path) -> dict[str, bytes]:
    out = root / "data/word_counts"
    return {p.name: p.read_bytes() for p in sorted(out.glob("chunk_*.json")) if not p.name.endswith(".done.json")}


def test_stage_from_an_installed_package_runs_under_the_controller_and_by_hand(
    slurm_cluster: SlurmCluster, tmp_path: Path, plugin_path: str
) -> None:
    make_workdir(tmp_path)
    counting_experiment(tmp_path)
    env = {"PYTHONPATH": plugin_path}

    # Without the package the stage type is unknown, and the error names the file, line and key.
    missing = run(tmp_path, "graph", "experiment.yaml", check=False)
    assert missing.returncode == 2
    assert "experiment.yaml:" in missing.stderr and "stages.2.uses" in missing.stderr
    assert "unknown stage type 'count_words'" in missing.stderr

    shown = run(tmp_path, "graph", "experiment.yaml", env=env).stdout
    assert "count_words" in shown and "array 4" in shown and "after: split_data" in shown

    # Under the controller, with native afterok dependencies on the real Slurm.
    run(tmp_path, *submit_args(), env=env)
    first = counts(tmp_path)
    assert sorted(first) == [f"chunk_{i:04d}.json" for i in range(1, 5)]
    assert all(json.loads(v)["words"] > 0 for v in first.values())
    # A second submit finds every task complete on disk and submits nothing.
    again = run(tmp_path, *submit_args(), env=env).stdout
    assert "submitted" not in again

    # By hand: the rendered scripts, submitted with sbatch in dependency order by submit_all.
    for path in (tmp_path / "data/word_counts").iterdir():
        path.unlink()
    run(tmp_path, "render", "--profile", "profile.yaml", "-e", "experiment.yaml", "--out", "jobs", env=env)
    script = (tmp_path / "jobs/count_words.sbatch").read_text()
    assert "#SBATCH --array=1-4" in script and "run-stage" in script and '"$CHUNK"' in script
    submitted = subprocess.run(
        ["bash", "jobs/submit_all.sbatch.sh"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=True,
    ).stdout
    ids = [line.split(": ")[1] for line in submitted.splitlines() if ": " in line]
    slurm_cluster.wait(ids, timeout=600)
    assert counts(tmp_path) == first  # the same bytes as under the controller
