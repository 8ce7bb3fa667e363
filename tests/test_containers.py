"""Container scripts. enroot cannot run here (no enroot, no GPUs): the tests pin the exact enroot command lines
with --dry-run, the clear error without enroot, and the host mode, and run the scripts against the enroot shim
(tests/enroot_shim/enroot: enroot's environment file and its "File already exists", no real image); a real
`enroot start` is not covered. tests/test_container_overlay.py runs the set-up against a stand-in image."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, morphcpt
from morphcpt.verify_setup import identify_tool, verify_setup

RUN_IN_ENROOT = REPO / "containers" / "run_in_enroot.sh"
SETUP_ENROOT = REPO / "containers" / "setup_enroot.sh"
SHIM = REPO / "tests" / "enroot_shim"
needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None
    or subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False).returncode != 0,
    reason="the enroot shim's start needs unshare --mount (root)",
)


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
    result = run([str(SETUP_ENROOT), "--dry-run", "--sqsh", str(sqsh), "--name", "mc"], host)
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line[2:]) for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert commands[0] == ["mkdir", "-p", str(sqsh.parent)]
    # Imported to a temporary name, then renamed: a failed import never leaves the profile without an image.
    assert commands[1] == ["enroot", "import", "--output", f"{sqsh}.importing", "docker://nvcr.io#nvidia/nemo:25.07"]
    assert commands[2] == ["mv", "-f", f"{sqsh}.importing", str(sqsh)]
    # Created the way jobs create it (under run_in_enroot.sh's lock).
    in_container = [str(RUN_IN_ENROOT), "--name", "mc", "--image", str(sqsh)]
    assert commands[3] == [*in_container, "--create"]
    # The default install: an overlay venv beside the repository, made by the image's own Python.
    overlay = REPO / "containers" / "overlay" / "mc"
    assert commands[4] == ["mkdir", "-p", str(overlay.parent)]
    install = commands[5]
    assert install[: len(in_container) + 1] == [*in_container, "--no-overlay"]
    assert ["--mount", f"{overlay.parent}:{overlay.parent}"] == install[
        install.index(f"{overlay.parent}:{overlay.parent}") - 1 :
    ][:2]
    inner = install[install.index("--") + 1 :]
    assert inner == [
        "python3",
        "/workspace/containers/image_deps.py",
        "install",
        "--pyproject",
        "/workspace/pyproject.toml",
        "--constraints",
        "/workspace/constraints.txt",
        "--overlay",
        str(overlay),
    ]
    smoke = commands[-1]
    assert smoke[:6] == [*in_container, "--"]
    assert smoke[6:9] == ["python3", "/workspace/containers/image_deps.py", "check"]
    # The smoke test imports exactly what the experiment's jobs import, as the stage types declare it.
    listed = run([sys.executable, "-m", "morphcpt", "job-modules", "-e", "seapile-tl-cpt"]).stdout.split()
    assert smoke[9:] == listed
    assert {"nemo.collections.llm", "ahocorasick", "megatron.core", "wordfreq", "submitit", "click"} <= set(listed)
    demo = run([sys.executable, "-m", "morphcpt", "job-modules", "-e", "demo"]).stdout.split()
    assert "transformers" in demo and not any(m.startswith("nemo") for m in demo)


def test_setup_enroot_pip_mode_needs_the_explicit_flag_for_a_system_python(tmp_path: Path) -> None:
    sqsh = tmp_path / "nemo.sqsh"
    args = [str(SETUP_ENROOT), "--dry-run", "--sqsh", str(sqsh), "--name", "mc", "--skip-smoke", "--install", "pip"]
    ca = tmp_path / "site-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    result = run([*args, "--break-system-packages"], {"REQUESTS_CA_BUNDLE": str(ca), "SSL_CERT_FILE": str(ca)})
    assert result.returncode == 0, result.stderr
    install = shlex.split(result.stdout.splitlines()[-2][2:])
    assert install[-2:] == ["--system", "--break-system-packages"]
    # The site's CA bundle is mounted once at its own path and both variables are passed by name.
    assert install.count(f"{ca}:{ca}") == 1
    assert ["--env", "REQUESTS_CA_BUNDLE"] == install[install.index("REQUESTS_CA_BUNDLE") - 1 :][:2]
    assert ["--env", "SSL_CERT_FILE"] == install[install.index("SSL_CERT_FILE") - 1 :][:2]
    wrong = run([str(SETUP_ENROOT), "--dry-run", "--break-system-packages"])
    assert wrong.returncode == 2 and "--install pip only" in wrong.stderr
    missing_ca = run([*args], {"PIP_CERT": str(tmp_path / "absent.pem")})
    assert missing_ca.returncode == 2 and "PIP_CERT" in missing_ca.stderr and "not a file" in missing_ca.stderr


def test_help_prints_the_header_comment_and_nothing_else() -> None:
    for script in (SETUP_ENROOT, RUN_IN_ENROOT):
        result = run([str(script), "--help"])
        assert result.returncode == 0 and not result.stderr
        header = []
        for line in script.read_text().splitlines()[1:]:
            if not line.startswith("#"):
                break
            header.append(line[2:] if line.startswith("# ") else line[1:])
        assert result.stdout.splitlines() == header
    assert "PIP_CERT" in run([str(SETUP_ENROOT), "--help"]).stdout


def shim_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{SHIM}:{os.environ['PATH']}",
        "ENROOT_DATA_PATH": str(tmp_path / "enroot-data"),
        "ENROOT_SHIM_LOG": str(tmp_path / "enroot.log"),
        "MORPHCPT_CONTAINER_WORKDIR": str(tmp_path / "workspace"),
        "MORPHCPT_CONTAINER_OVERLAY": str(tmp_path / "overlay"),
        "MORPHCPT_WORKDIR": str(tmp_path),
        **extra,
    }


def standin_image(tmp_path: Path) -> Path:
    (tmp_path / "site").mkdir()
    sqsh = tmp_path / "image.sqsh"
    sqsh.write_text(f"site={tmp_path / 'site'}\n")
    return sqsh


@needs_unshare
def test_multiline_and_quoted_values_arrive_intact(tmp_path: Path) -> None:
    sqsh = standin_image(tmp_path)
    values = {"HF_TOKEN": "line one\nline two\n", "WANDB_PROJECT": '"in quotes"', "WANDB_ENTITY": "plain"}
    env = shim_env(tmp_path, **values)
    code = f"import os, json; print(json.dumps({{k: os.environ.get(k) for k in {tuple(values)!r}}}))"
    command = [str(RUN_IN_ENROOT), "--name", "c1", "--image", str(sqsh), "--", "/usr/bin/python3", "-c", code]
    result = run(command, env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == values
    start = next(line for line in (tmp_path / "enroot.log").read_text().splitlines() if " start " in line)
    argv = shlex.split(start)
    assert ["--env", "MORPHCPT_ENC_HF_TOKEN"] == argv[argv.index("MORPHCPT_ENC_HF_TOKEN") - 1 :][:2]
    assert ["--env", "WANDB_ENTITY"] == argv[argv.index("WANDB_ENTITY") - 1 :][:2]
    assert "line one" not in start and "HF_TOKEN" not in argv  # by name, and only the encoded copy
    # What the shim (like enroot's line-based environment file) does to a value passed by plain name.
    direct = run(
        ["enroot", "start", "--env", "HF_TOKEN", "--env", "WANDB_PROJECT", "c1", "/usr/bin/python3", "-c", code], env
    )
    assert json.loads(direct.stdout)["HF_TOKEN"] == "line one"
    assert json.loads(direct.stdout)["WANDB_PROJECT"] == "in quotes"


@needs_unshare
def test_two_tasks_starting_an_uncreated_container_create_it_once(tmp_path: Path) -> None:
    sqsh = standin_image(tmp_path)
    gate = tmp_path / "gate"
    env = {**os.environ, **shim_env(tmp_path, ENROOT_SHIM_CREATE_GATE=str(gate))}
    env = {k: v for k, v in env.items() if k != "MORPHCPT_CONTAINER_NAME"}
    command = [str(RUN_IN_ENROOT), "--name", "race", "--image", str(sqsh), "--", "true"]
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env}
    first = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    wait_for(lambda: Path(f"{gate}.started").exists() or first.poll() is not None)
    assert first.poll() is None, first.communicate()
    second = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    # The second waits on the lock (a flock child) while the first holds it in `enroot create`; without the
    # lock it would see the half-made container or fail with "File already exists".
    wait_for(lambda: second.poll() is not None or _has_child(second.pid, "flock"))
    gate.touch()
    outputs = [process.communicate(timeout=60) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    log = (tmp_path / "enroot.log").read_text().splitlines()
    assert sum(" create " in line for line in log) == 1
    assert sum(" start " in line for line in log) == 2


def wait_for(condition: object, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def _has_child(pid: int, name: str) -> bool:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        kids = children.read_text().split()
    except OSError:
        return False
    return any(
        Path(f"/proc/{kid}/comm").exists() and Path(f"/proc/{kid}/comm").read_text().strip() == name for kid in kids
    )


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
    # Without enroot the container's packages cannot be checked here: a failed check that says so.
    assert any("container packages" in line and "FAIL" in line and "NOT CHECKED" in line for line in lines)


def test_verify_setup_refuses_slurms_qsub_for_a_pbs_profile() -> None:
    qsub = shutil.which("qsub")
    if qsub is None or b"use Slurm" not in Path(qsub).read_bytes()[:8192]:
        pytest.skip("needs Slurm's Torque wrapper as qsub (Debian package slurm-wlm-torque)")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "verify_setup.py"), "--profile", "pbs-a100"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    row = next(line for line in result.stdout.splitlines() if "tool qsub" in line)
    assert "FAIL" in row and "Slurm's PBS/Torque" in row
    assert identify_tool(qsub) == ("slurm", "Slurm's PBS/Torque wrapper (Perl script, package slurm-wlm-torque)")
    check = next(check for check in verify_setup("pbs-a100", "seapile-tl-cpt") if check.name == "tool qsub")
    assert check.status == "FAIL" and "not pbs's" in check.detail and "which -a qsub" in check.fix


def test_a_pbs_pro_qsub_is_told_by_its_version(tmp_path: Path) -> None:
    # A stand-in printing what PBS Pro's `qsub --version` prints (PBS Pro itself is not installable here).
    fake = tmp_path / "qsub"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'pbs_version = 23.06.06'\n")
    fake.chmod(0o755)
    assert identify_tool(str(fake)) == ("pbs", "PBS Pro 23.06.06")
    fake.write_text("#!/bin/sh\necho 'GE 8.1.9' >&2; exit 1\n")
    assert identify_tool(str(fake)) == ("sge", "Grid Engine (GE 8.1.9)")
    fake.write_text("#!/bin/sh\necho 'usage: qsub [options]'\n")
    assert identify_tool(str(fake))[0] is None


def test_verify_setup_passes_for_the_local_profile() -> None:
    result = morphcpt("verify-setup", "--profile", "local", "--experiment", "demo", check=False)
    assert result.returncode == 0, result.stdout
    assert "0 failed" in result.stdout and "python megatron.core" in result.stdout
