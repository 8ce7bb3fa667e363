"""A core install (morphcpt without extras) runs the login-node commands: a fresh venv gets morphcpt with
exactly pyproject's core `dependencies` (no numpy, torch, transformers, pyarrow, ...), and --help, render,
submit --dry-run, check-config, graph, status / logs / cancel and verify-setup run there.

Both installs are checked, from a copy of the tree: editable (`pip install -e .`, as `make venv` does) and
plain (`pip install .`, where the module lands in site-packages and the commands, run inside the clone, find
its configs/ and job_templates/ from the working directory). Not covered: a submission that jobs then run
(they need the extras, in .venv or the container).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

# Packages of the extras; a core install must not have them, or the test could not fail.
HEAVY = ("numpy", "torch", "transformers", "tokenizers", "pyarrow", "huggingface_hub", "megatron", "matplotlib")
TREE = ("src", "configs", "job_templates", "containers", "pyproject.toml", "README.md")


# The venv's own site-packages only: a PYTHONPATH of the caller (a test run on a checkout's src) would hide
# what the install put there.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def core_dependencies() -> list[str]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


@pytest.fixture(scope="module", params=["editable", "plain"])
def core_install(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh venv with morphcpt and its core dependencies only (pip's own configuration: this machine's index),
    and the copy of the tree it was installed from."""
    root = tmp_path_factory.mktemp(f"core-{request.param}")
    tree = root / "repo"
    for name in TREE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, tree / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    install = ["--no-deps", "-e", str(tree)] if request.param == "editable" else ["--no-deps", str(tree)]
    for arguments in (install, ["-c", str(REPO / "constraints.txt"), *core_dependencies()]):
        done = subprocess.run([*pip, *arguments], capture_output=True, text=True, timeout=600, env=CLEAN_ENV)
        assert done.returncode == 0, f"pip install {' '.join(arguments)} failed:\n{done.stderr}"
    if request.param == "plain":
        # The installed module is not the tree's: it must find the checkout from where it is run.
        where = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import morphcpt; print(morphcpt.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env=CLEAN_ENV,
        )
        assert "site-packages" in where.stdout
    return venv, tree


def morphcpt(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "morphcpt"), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=CLEAN_ENV
    )


def test_a_core_install_has_none_of_the_extras(core_install: tuple[Path, Path]) -> None:
    core_venv, _ = core_install
    probe = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))"
    found = subprocess.run(
        [str(core_venv / "bin" / "python"), "-c", probe, "morphcpt", "click", *HEAVY],
        capture_output=True,
        text=True,
        check=True,
        env=CLEAN_ENV,
    )
    assert found.stdout.split() == ["morphcpt", "click"]


def test_login_node_commands_run_with_the_core_dependencies_alone(core_install: tuple[Path, Path]) -> None:
    core_venv, tree = core_install
    # Inside the clone, as on a login node (a plain install finds the repository's files from here).
    tmp_path = tree

    def ok(*args: str) -> str:
        result = morphcpt(core_venv, tmp_path, *args)
        assert result.returncode == 0 and "Traceback" not in result.stderr, f"{args}:\n{result.stderr}"
        return result.stdout

    assert "render" in ok("--help") and "submit" in ok("--help")
    configs = sorted(str(p) for p in (REPO / "configs").glob("*/*.yaml"))
    assert ok("check-config", *configs).count("ok: ") == len(configs)
    for profile in ("slurm-a100", "pbs-a100"):
        ok("render", "-p", profile, "-e", "seapile-tl-cpt", "--out", f"jobs/{profile}")
        assert (tmp_path / f"jobs/{profile}").is_dir() and any((tmp_path / f"jobs/{profile}").iterdir())
    assert "run_cpt_patok" in ok("graph", "seapile-tl-cpt")
    for profile, experiment in (("local-slurm", "seapile-tl-cpt"), ("pbs-a100", "seapile-tl-cpt"), ("local", "demo")):
        assert "download_data" in ok("submit", "-p", profile, experiment, "--dry-run")
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    # Controller commands before any submission: their own clear error, not an ImportError.
    for args in (["status", "demo"], ["logs", "demo", "split_data"], ["cancel", "demo"]):
        result = morphcpt(core_venv, tmp_path, *args)
        assert result.returncode == 2 and "has not been submitted here" in result.stderr, result.stderr
    # verify-setup runs and reports the missing job packages as failures (exit 1), instead of crashing.
    report = morphcpt(core_venv, tmp_path, "verify-setup", "-p", "local", "-e", "demo")
    assert report.returncode == 1 and "Traceback" not in report.stderr, report.stderr
    assert "python torch" in report.stdout and "missing" in report.stdout
