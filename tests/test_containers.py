"""Container scripts. enroot cannot run here (no enroot, no GPUs): the tests pin the exact enroot command lines
with --dry-run, the clear error without enroot, and the host mode; a real `enroot start` is not covered."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import REPO, morphcpt

RUN_IN_ENROOT = REPO / "containers" / "run_in_enroot.sh"
SETUP_ENROOT = REPO / "containers" / "setup_enroot.sh"


def run(args: list[str], env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MORPHCPT_")}
    return subprocess.run(args, capture_output=True, text=True, env={**base, **(env or {})}, input=stdin, timeout=60)


def test_run_in_enroot_command_line_passes_secrets_by_name_only(tmp_path: Path) -> None:
    env = {
        "HF_TOKEN": "TOKENVALUE-123",
        "NOT_ALLOWED": "x",
        "MORPHCPT_CONTAINER_MOUNTS": "/scratch/data:/data,/models:/models:ro",
        "MORPHCPT_WORKDIR": str(tmp_path),
    }
    result = run([str(RUN_IN_ENROOT), "--dry-run", "--name", "nemo-x", "--", "python3", "-c", "print('a b')"], env)
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout)
    assert argv[:3] == ["enroot", "start", "--rw"]
    assert argv[3:9] == [
        "--mount",
        f"{REPO}:/workspace",
        "--mount",
        "/scratch/data:/data",
        "--mount",
        "/models:/models:ro",
    ]
    assert ["--env", "HF_TOKEN"] == argv[argv.index("HF_TOKEN") - 1 : argv.index("HF_TOKEN") + 1]
    assert "NOT_ALLOWED" not in argv and "TOKENVALUE-123" not in result.stdout + result.stderr
    name_at = argv.index("nemo-x")
    assert argv[name_at + 1 : name_at + 3] == ["bash", "-c"]
    assert argv[-5:] == ["_", "/workspace", "python3", "-c", "print('a b')"]


def test_run_in_enroot_without_enroot_says_so() -> None:
    result = run([str(RUN_IN_ENROOT), "--", "true"])
    assert result.returncode == 2
    assert "enroot is not installed" in result.stderr and "--no-container" in result.stderr


def test_run_in_enroot_host_mode_runs_the_command_verbatim(tmp_path: Path) -> None:
    arg = "a b $(touch PWNED) 'q'"
    code = "import sys, morphcpt; print(repr(sys.argv[1]), morphcpt.__file__)"
    result = run([str(RUN_IN_ENROOT), "--no-container", "--", sys.executable, "-c", code, arg])
    assert result.returncode == 0, result.stderr
    assert repr(arg) in result.stdout and str(REPO / "src" / "morphcpt") in result.stdout
    assert not (REPO / "PWNED").exists()


def test_run_in_enroot_refuses_an_interactive_shell_without_a_terminal() -> None:
    result = run([str(RUN_IN_ENROOT), "--no-container"])
    assert result.returncode == 2 and "no terminal" in result.stderr


def test_setup_enroot_dry_run_shows_the_exact_commands(tmp_path: Path) -> None:
    sqsh = tmp_path / "img" / "nemo.sqsh"
    host = {"MORPHCPT_HOST_PYTHON": sys.executable}  # the login node's Python with morphcpt's core packages
    result = run([str(SETUP_ENROOT), "--dry-run", "--sqsh", str(sqsh), "--name", "mc", "--install", "pip"], host)
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line[2:]) for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert commands[0] == ["mkdir", "-p", str(sqsh.parent)]
    # Imported to a temporary name, then renamed: a failed import never leaves the profile without an image.
    assert commands[1] == ["enroot", "import", "--output", f"{sqsh}.importing", "docker://nvcr.io#nvidia/nemo:25.07"]
    assert commands[2] == ["mv", "-f", f"{sqsh}.importing", str(sqsh)]
    assert commands[3] == ["enroot", "create", "--name", "mc", str(sqsh)]
    assert commands[4][:6] == ["enroot", "start", "--rw", "--mount", f"{REPO}:/workspace", "mc"]
    smoke = commands[-1]
    assert smoke[:5] == [str(RUN_IN_ENROOT), "--name", "mc", "--image", str(sqsh)]
    # The smoke test imports exactly what the experiment's jobs import, as the stage types declare it.
    listed = run([sys.executable, "-m", "morphcpt", "job-modules", "-e", "seapile-tl-cpt"]).stdout.split()
    assert smoke[smoke.index("-c") + 2 :] == listed
    assert {"nemo.collections.llm", "ahocorasick", "megatron.core", "wordfreq", "submitit", "click"} <= set(listed)
    demo = run([sys.executable, "-m", "morphcpt", "job-modules", "-e", "demo"]).stdout.split()
    assert "transformers" in demo and not any(m.startswith("nemo") for m in demo)


def test_setup_enroot_without_enroot_fails_clearly() -> None:
    result = run([str(SETUP_ENROOT)])
    assert result.returncode == 2 and "enroot is not installed" in result.stderr


def test_verify_setup_reports_missing_tools_with_a_fix() -> None:
    result = morphcpt("verify-setup", "--profile", "pbs-a100", check=False)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any("tool enroot" in line and "FAIL" in line for line in lines)
    assert any("container image" in line and "FAIL" in line for line in lines)
    assert "setup_enroot.sh" in result.stdout


def test_verify_setup_passes_for_the_local_profile() -> None:
    result = morphcpt("verify-setup", "--profile", "local", "--experiment", "demo", check=False)
    assert result.returncode == 0, result.stdout
    assert "0 failed" in result.stdout and "python megatron.core" in result.stdout
