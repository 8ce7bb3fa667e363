"""The benchmarks stage is done only for benchmarks of today's generator: its marker (the manifest) records
the seed, the items per suite and a checksum of the generator's code and data, and a changed generator
makes `submit --dry-run` rerun generate_benchmarks, naming why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from morphcpt.evaluation.generate import generator_version


def _morphcpt(workdir: Path, *args: str, source: Path | None = None) -> str:
    """Run morphcpt in `workdir`, from the source tree `source` (a copy) instead of the installed one."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    result = subprocess.run(
        [sys.executable, "-m", "morphcpt", *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _benchmarks_line(dry_run: str) -> str:
    return next(line for line in dry_run.splitlines() if line.startswith("generate_benchmarks:"))


def test_a_changed_generator_reruns_the_benchmarks_stage(tmp_path: Path) -> None:
    # A checkout whose Tagalog question maker can be edited, as a developer edits the real one: a copy of
    # src/, the rest of the repository (templates, containers/) linked.
    checkout = tmp_path / "repo"
    source = checkout / "src"
    shutil.copytree(REPO / "src/morphcpt", source / "morphcpt", ignore=shutil.ignore_patterns("__pycache__"))
    for entry in REPO.iterdir():
        if entry.name not in ("src", ".git", ".venv"):
            (checkout / entry.name).symlink_to(entry)
    workdir = tmp_path / "work"
    workdir.mkdir()
    experiment = (REPO / "configs/experiments/demo.yaml").read_text()
    assert "items_per_suite: 200" in experiment
    (workdir / "exp.yaml").write_text(experiment.replace("items_per_suite: 200", "items_per_suite: 5"))
    profile = str(REPO / "configs/clusters/local.yaml")
    dry_run = ("submit", "-p", profile, "exp.yaml", "--dry-run")

    _morphcpt(workdir, "benchmarks", "-e", "exp.yaml", source=source)
    manifest = json.loads((workdir / "data/demo/benchmarks/manifest.json").read_text())
    assert manifest["generator"] == generator_version("tl")  # the copy hashes as the installed code does
    assert _benchmarks_line(_morphcpt(workdir, *dry_run)) == "generate_benchmarks: complete, not submitted"

    maker = source / "morphcpt/languages/tl/benchmarks.py"
    maker.write_text(maker.read_text().replace('ORDINALS_EN = ("first",', 'ORDINALS_EN = ("1st",'))
    line = _benchmarks_line(_morphcpt(workdir, *dry_run, source=source))
    assert line.startswith("generate_benchmarks: reruns because generator changed"), line
    assert manifest["generator"] in line

    # A manifest from before generators were recorded is stale too.
    del manifest["generator"]
    (workdir / "data/demo/benchmarks/manifest.json").write_text(json.dumps(manifest))
    line = _benchmarks_line(_morphcpt(workdir, *dry_run))
    assert line.startswith("generate_benchmarks: reruns because generator is new"), line
