"""Pre-flight checks for a cluster profile: tools (and whose they are), container image, the packages the
experiment's jobs import (inside the container, with the container's Python), writable paths, GPUs."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from morphcpt.cluster import get_scheduler, scheduler_names
from morphcpt.config import (
    CLUSTERS_DIR,
    EXPERIMENTS_DIR,
    REPO_ROOT,
    ClusterProfile,
    load_experiment,
    load_profile,
    resolve_config_path,
)
from morphcpt.errors import ConfigError

Status = Literal["PASS", "WARN", "FAIL"]

# What the login node itself imports (render, submit, the controller).
HOST_PACKAGES = ["jinja2", "pydantic", "yaml", "rich", "submitit", "click"]
RUN_IN_ENROOT = REPO_ROOT / "containers" / "run_in_enroot.sh"
CONTAINER_CHECK_TIMEOUT = 3600  # the first start on a node creates the container (unpacking a ~20 GB image)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _writable(directory: Path) -> str | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return str(exc)
    return None


def _gpu_count() -> int | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def job_modules(experiment: Any) -> list[str]:
    """The modules the experiment's jobs import, as `morphcpt job-modules` prints them."""
    from morphcpt.graph import job_modules as modules

    return modules(experiment)


# ---------------------------------------------------------------- whose scheduler command is this

_VERSION_PATTERNS = (
    # PBS Pro's clients: `qsub --version` prints "pbs_version = 23.06.06".
    (re.compile(r"pbs_version\s*=\s*(\S+)"), "pbs", "PBS Pro {}"),
    # Slurm's own commands: "slurm 23.02.7" (Debian: "slurm-wlm 22.05.8").
    (re.compile(r"^slurm(?:-wlm)?\s+(\d\S*)", re.MULTILINE), "slurm", "Slurm {}"),
    # Grid Engine prints its version first in the usage an unknown option brings: "SGE 8.1.9", "OGS/GE 2011.11".
    (re.compile(r"^((?:SGE|GE|OGS/GE|UGE|AGE|Son of Grid Engine)\s+\S+)", re.MULTILINE), "sge", "Grid Engine ({})"),
    (re.compile(r"^Version:\s*(\S+)", re.MULTILINE | re.IGNORECASE), "torque", "Torque {}"),
)


def identify_tool(path: str) -> tuple[str | None, str]:
    """(the scheduler a command belongs to, a description), from `CMD --version` and, for a wrapper script,
    its text. Only `--version` is run: it is harmless for every scheduler's qsub, qdel, sbatch, scancel."""
    try:
        result = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False
        )
        printed = (result.stdout + "\n" + result.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        printed = f"({exc})"
    for pattern, scheduler, description in _VERSION_PATTERNS:
        match = pattern.search(printed)
        if match:
            return scheduler, description.format(match.group(1))
    try:
        with open(path, "rb") as handle:
            head = handle.read(8192)
    except OSError:
        head = b""
    # Slurm's PBS/Torque wrappers (Debian package slurm-wlm-torque) are Perl scripts that `use Slurm`, and
    # their --version fails (an unknown option, or no Slurm configuration here).
    if head.startswith(b"#!") and re.search(rb"^use Slurm\b|slurm\.schedmd\.com", head, re.MULTILINE):
        language = "Perl script" if b"perl" in head.splitlines()[0] else "script"
        return "slurm", f"Slurm's PBS/Torque wrapper ({language}, package slurm-wlm-torque)"
    first = printed.splitlines()[0] if printed else "nothing"
    return None, f"`{Path(path).name} --version` printed: {first[:120]}"


def _tool_check(tool: str, profile: ClusterProfile) -> Check:
    found = shutil.which(tool)
    if not found:
        return Check(
            f"tool {tool}",
            "FAIL",
            "not on PATH",
            f"run on a {profile.scheduler} login node, or load the scheduler's module",
        )
    owner, description = identify_tool(found)
    if owner == profile.scheduler:
        return Check(f"tool {tool}", "PASS", f"{found} ({description})")
    if owner is None or owner not in scheduler_names():
        return Check(
            f"tool {tool}",
            "WARN",
            f"{found}: could not tell which scheduler it belongs to; {description}",
            f"check that it is {profile.scheduler}'s (`which -a {tool}` lists every one on PATH)",
        )
    return Check(
        f"tool {tool}",
        "FAIL",
        f"{found} is {description}, not {profile.scheduler}'s: profile {profile.name} would submit to {owner}",
        f"`which -a {tool}` lists every {tool} on PATH: put {profile.scheduler}'s first (module load, or "
        f"PATH=<its bin>:$PATH), or use a profile for {owner}",
    )


# ---------------------------------------------------------------- packages where the jobs run


def _host_module_checks(modules: list[str]) -> list[Check]:
    checks = []
    for module in modules:
        ok = _module_present(module)
        checks.append(
            Check(
                f"python {module}",
                "PASS" if ok else "FAIL",
                "importable" if ok else "missing",
                "" if ok else "make venv (container.runtime: none runs the jobs with this Python)",
            )
        )
    return checks


def _container_environment(profile: ClusterProfile, image: Path, root: Path) -> dict[str, str]:
    """What a job's prologue exports before it calls run_in_enroot.sh."""
    container = profile.container
    return {
        **os.environ,
        "MORPHCPT_WORKDIR": str(root),
        "MORPHCPT_CONTAINER_RUNTIME": container.runtime,
        "MORPHCPT_CONTAINER_NAME": container.name,
        "MORPHCPT_CONTAINER_IMAGE": str(image),
        "MORPHCPT_CONTAINER_WORKDIR": container.workdir,
        "MORPHCPT_CONTAINER_MOUNTS": ",".join(mount.spec() for mount in container.mounts),
        **profile.env,
    }


def container_module_checks(profile: ClusterProfile, image: Path, root: Path, modules: list[str]) -> list[Check]:
    """Import the jobs' modules inside the container, with its Python, the way a job starts it."""
    container = profile.container
    setup = f"containers/setup_enroot.sh --name {container.name} --sqsh {image}"
    if container.runtime == "pyxis" or not shutil.which("enroot"):
        where = (
            "pyxis starts the container inside srun"
            if container.runtime == "pyxis"
            else f"enroot is not installed on {socket.gethostname()}"
        )
        return [
            Check(
                "container packages",
                "FAIL",
                f"NOT CHECKED: {where}, so the {len(modules)} modules the jobs import could not be imported in "
                "the container",
                "run verify-setup again on a compute node with enroot (qsub -I / srun --pty); "
                f"there, {setup} installs what is missing",
            )
        ]
    command = [
        str(RUN_IN_ENROOT),
        "--",
        profile.python,
        f"{container.workdir}/containers/image_deps.py",
        "check",
        *modules,
    ]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=_container_environment(profile, image, root),
            timeout=CONTAINER_CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [Check("container packages", "FAIL", f"no answer in {CONTAINER_CHECK_TIMEOUT} s", "start it by hand")]
    checks = []
    summary = ""
    for line in result.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[0] in {"ok", "missing", "broken"}:
            state, module, package, detail = fields
            checks.append(
                Check(
                    f"container {module}",
                    "PASS" if state == "ok" else "FAIL",
                    detail if state == "ok" else f"{state}: package {package} ({detail})",
                    "" if state == "ok" else f"{setup} (installs what the image lacks into the overlay venv)",
                )
            )
        elif line.startswith("imported "):
            summary = line
    if not summary:
        problem = (result.stderr.strip().splitlines() or ["no output"])[-1]
        checks.append(
            Check("container packages", "FAIL", f"could not run the check (exit {result.returncode}): {problem}", setup)
        )
    else:
        missing = [check.name.removeprefix("container ") for check in checks if check.status == "FAIL"]
        checks.append(
            Check(
                "container packages",
                "FAIL" if missing else "PASS",
                f"{summary}" + (f"; missing: {', '.join(missing)}" if missing else ""),
                setup if missing else "",
            )
        )
    return checks


def verify_setup(profile_name: str, experiment_name: str, workdir: Path | None = None) -> list[Check]:
    checks: list[Check] = []
    try:
        profile = load_profile(resolve_config_path(profile_name, CLUSTERS_DIR, "cluster profile"))
        experiment = load_experiment(resolve_config_path(experiment_name, EXPERIMENTS_DIR, "experiment"))
    except ConfigError as exc:
        return [Check("configuration", "FAIL", str(exc), "fix the file and key named above")]
    checks.append(Check("configuration", "PASS", f"profile {profile.name}, experiment {experiment.name}"))
    root = (workdir or Path(profile.paths.workdir or Path.cwd())).absolute()

    for tool in get_scheduler(profile.scheduler).tools:
        checks.append(_tool_check(tool, profile))

    runtime = profile.container.runtime
    if runtime == "enroot":
        found = shutil.which("enroot")
        checks.append(
            Check(
                "tool enroot",
                "PASS" if found else "FAIL",
                found or "not on PATH",
                "" if found else "enroot is needed on compute nodes; or set container.runtime: none",
            )
        )
    image = Path(profile.container.image or "")
    image = image if image.is_absolute() else root / image
    if runtime != "none" and profile.container.image:
        checks.append(
            Check(
                "container image",
                "PASS" if image.exists() else "FAIL",
                str(image),
                "" if image.exists() else "create it with containers/setup_enroot.sh --sqsh " + str(image),
            )
        )

    for label, rel in profile.paths.model_dump().items():
        if label == "workdir" or rel is None:
            continue
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        problem = _writable(path)
        checks.append(
            Check(
                f"writable {label}",
                "FAIL" if problem else "PASS",
                problem or str(path),
                "fix permissions or point paths." + label + " elsewhere" if problem else "",
            )
        )

    for module in HOST_PACKAGES:
        ok = _module_present(module)
        checks.append(
            Check(
                f"python {module}",
                "PASS" if ok else "FAIL",
                "importable" if ok else "missing",
                "" if ok else "pip install -e . (or make venv)",
            )
        )
    # The jobs' own modules are checked where the jobs run: this Python for runtime none, else the container's.
    modules = job_modules(experiment)
    if runtime == "none":
        checks += _host_module_checks([m for m in modules if m not in HOST_PACKAGES])
    elif profile.container.image:
        checks += container_module_checks(profile, image, root, modules)

    wanted = profile.resources.for_stage("train").ngpus
    gpus = _gpu_count()
    if wanted:
        if gpus is None:
            checks.append(
                Check(
                    "GPUs",
                    "WARN",
                    f"no nvidia-smi here; training wants {wanted} per node",
                    "normal on a login node; run verify-setup in an interactive GPU job to check",
                )
            )
        else:
            checks.append(
                Check(
                    "GPUs",
                    "PASS" if gpus >= wanted else "FAIL",
                    f"{gpus} visible, {wanted} wanted",
                    "" if gpus >= wanted else "request a node with enough GPUs",
                )
            )
    return checks


def print_report(checks: list[Check]) -> None:
    table = Table(title="morphcpt verify-setup")
    for column in ("check", "status", "detail", "what to do"):
        table.add_column(column, overflow="fold")
    colours = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}
    for check in checks:
        table.add_row(check.name, f"[{colours[check.status]}]{check.status}[/]", check.detail, check.fix)
    Console(width=140).print(table)
    failed = sum(check.status == "FAIL" for check in checks)
    Console().print(f"{len(checks)} checks, {failed} failed")
