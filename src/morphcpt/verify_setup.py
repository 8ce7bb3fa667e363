"""Pre-flight checks for a cluster profile: tools, container image, writable paths, packages, GPUs."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from morphcpt.cluster import get_scheduler
from morphcpt.config import CLUSTERS_DIR, EXPERIMENTS_DIR, load_experiment, load_profile, resolve_config_path
from morphcpt.errors import ConfigError

Status = Literal["PASS", "WARN", "FAIL"]

HOST_PACKAGES = ["jinja2", "pydantic", "yaml", "rich", "submitit", "click"]
STAGE_PACKAGES = [
    "numpy",
    "torch",
    "megatron.core",
    "tokenizers",
    "transformers",
    "sentencepiece",
    "ahocorasick",
]


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
        found = shutil.which(tool)
        checks.append(
            Check(
                f"tool {tool}",
                "PASS" if found else "FAIL",
                found or "not on PATH",
                "" if found else f"run on a {profile.scheduler} login node, or load the scheduler's module",
            )
        )

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
    if runtime != "none" and profile.container.image:
        image = Path(profile.container.image)
        image = image if image.is_absolute() else root / image
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
    # Stage packages live in the container on clusters; on the host they are only needed for runtime none.
    missing_status: Status = "FAIL" if runtime == "none" else "WARN"
    for module in STAGE_PACKAGES:
        ok = _module_present(module)
        checks.append(
            Check(
                f"python {module}",
                "PASS" if ok else missing_status,
                "importable" if ok else "missing",
                "" if ok else "make venv (host) or use the NeMo container",
            )
        )
    if experiment.training.backend == "nemo":
        ok = _module_present("nemo")
        checks.append(
            Check(
                "python nemo",
                "PASS" if ok else "WARN",
                "importable" if ok else "missing on this host",
                "" if ok else "NeMo comes from the container; check with containers/setup_enroot.sh",
            )
        )

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
