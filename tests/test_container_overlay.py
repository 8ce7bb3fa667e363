"""The default container set-up against a stand-in image, through the real scripts and the enroot shim.

The stand-in image: Debian's /usr/bin/python3 (an "externally managed" Python, like the NeMo image's Ubuntu
one) with an image's packages in /usr/local/lib/python3.X/dist-packages, where the shim (tests/enroot_shim/enroot)
bind-mounts a folder of this venv's real packages *without* pydantic, rich, submitit, pyahocorasick, wordfreq
and PyYAML (Debian's own PyYAML 6.0 stays visible, as an image's older package). setup_enroot.sh, run_in_enroot.sh,
image_deps.py, pip and verify-setup all run for real; pip installs from this machine's index (local wheels, or
PyPI for the few it lacks). Not covered: a real squashfs, enroot's own mounts and hooks, a CUDA image.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from morphcpt.verify_setup import Check, verify_setup

SHIM = REPO / "tests" / "enroot_shim"
RUN_IN_ENROOT = REPO / "containers" / "run_in_enroot.sh"
SETUP_ENROOT = REPO / "containers" / "setup_enroot.sh"
# What the stand-in image lacks (besides test tools): morphcpt's packages a NeMo image does not carry.
LEFT_OUT = {"pydantic", "pydantic-core", "rich", "submitit", "pyahocorasick", "wordfreq", "pyyaml"}
TOOLS = {"morphcpt", "pip", "pytest", "ruff", "hypothesis"}


def _can_unshare() -> bool:
    if not Path("/usr/bin/python3").exists() or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(not _can_unshare(), reason="the enroot shim needs /usr/bin/python3 and unshare (root)")


def image_site(dest: Path, left_out: set[str]) -> Path:
    """A folder of links to this venv's installed packages, minus the distributions in `left_out`."""
    site = Path(sysconfig.get_paths()["purelib"])
    owned: set[str] = set()
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if dist.metadata["Name"].lower().replace("_", "-") in left_out:
            owned.update(f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] != "..")
    dest.mkdir(parents=True)
    for entry in site.iterdir():
        if entry.name not in owned and not entry.name.startswith("__editable__") and entry.suffix != ".pth":
            (dest / entry.name).symlink_to(entry)
    return dest


@dataclass
class StandIn:
    root: Path
    sqsh: Path
    overlay: Path
    profile: Path
    env: dict[str, str]

    def run(self, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, env=self.env, timeout=timeout, cwd=REPO)

    def verify(self) -> subprocess.CompletedProcess[str]:
        return self.run(
            [sys.executable, "-m", "morphcpt", "verify-setup", "--profile", str(self.profile), "-e", "demo"]
        )

    def checks(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, Check]:
        """verify_setup's checks by name (in this process, so they are read without the table's wrapping)."""
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        return {check.name: check for check in verify_setup(str(self.profile), "demo")}


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    root = tmp_path_factory.mktemp("standin")
    site = image_site(root / "image-site", LEFT_OUT | TOOLS)
    sqsh = root / "standin.sqsh"
    sqsh.write_text(f"site={site}\n")
    workdir = root / "workspace"  # where the repository appears inside the "container"
    workdir.mkdir()
    overlay = root / "overlays" / "standin"
    profile = root / "standin.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": "standin",
                "scheduler": "local",
                "resources": {"default": {"nodes": 1, "ncpus": 1, "ngpus": 0, "mem": "1GB", "walltime": "00:10:00"}},
                "container": {"runtime": "enroot", "image": str(sqsh), "name": "standin", "workdir": str(workdir)},
                "paths": {"workdir": str(root / "work")},
                "python": "python3",
                "env": {"MORPHCPT_CONTAINER_OVERLAY": str(overlay)},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MORPHCPT_")}
    env.update(
        PATH=f"{SHIM}:{env['PATH']}",
        ENROOT_DATA_PATH=str(root / "enroot-data"),
        ENROOT_SHIM_LOG=str(root / "enroot.log"),
        MORPHCPT_HOST_PYTHON=sys.executable,
        MORPHCPT_CONTAINER_WORKDIR=str(workdir),
        MORPHCPT_CONTAINER_OVERLAY=str(overlay),
    )
    yield StandIn(root, sqsh, overlay, profile, env)


def test_verify_setup_names_each_package_the_container_lacks(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    result = standin.verify()
    assert result.returncode == 1, result.stdout
    checks = standin.checks(monkeypatch)
    for module, package in [("wordfreq", "wordfreq"), ("ahocorasick", "pyahocorasick"), ("submitit", "submitit")]:
        check = checks[f"container {module}"]
        assert check.status == "FAIL" and f"package {package}" in check.detail, check
        assert "setup_enroot.sh" in check.fix
    assert checks["container torch"].status == "PASS"
    # Checked with the container's Python (Debian's, seeing the image's packages), not this venv's.
    assert "/usr/local/lib/python3" in checks["container torch"].detail
    summary = checks["container packages"]
    assert summary.status == "FAIL" and "with /usr/bin/python3" in summary.detail
    assert "missing: pydantic, rich, submitit, ahocorasick, wordfreq" in summary.detail


def test_the_image_python_refuses_pip_into_itself_without_the_explicit_flag(standin: StandIn) -> None:
    args = [str(SETUP_ENROOT), "--sqsh", str(standin.sqsh), "--name", "standin", "--install", "pip", "--skip-smoke"]
    result = standin.run(args)
    assert result.returncode != 0
    assert "externally managed" in result.stderr and "--break-system-packages" in result.stderr
    assert "--install overlay" in result.stderr


def test_default_setup_makes_every_stage_import_and_a_controller_job_run(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [str(SETUP_ENROOT), "--sqsh", str(standin.sqsh), "--name", "standin", "--experiment", "demo"]
    setup = standin.run(args)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert re.search(r"^imported (\d+) of \1 with ", setup.stdout, re.MULTILINE), setup.stdout[-2000:]

    site = next((standin.overlay / "lib").glob("python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"wordfreq", "pyahocorasick", "submitit", "pydantic", "rich"} <= installed
    # The image's packages are used, never replaced: not torch, not numpy, not its older PyYAML.
    assert not installed & {"torch", "numpy", "pyyaml", "megatron_core", "transformers"}
    pins = (standin.overlay / "morphcpt-constraints.txt").read_text()
    assert f"torch=={importlib.metadata.version('torch')}" in pins and "pyyaml==6.0\n" in pins

    after = standin.verify()
    assert after.returncode == 0, after.stdout
    assert "0 failed" in after.stdout
    checks = standin.checks(monkeypatch)
    assert checks["container wordfreq"].detail.startswith(str(site))

    # A controller job body as the controller submits it: submitit's _submit, run by the container's Python
    # through run_in_enroot.sh, loads a pickled run_task(TaskSpec) of generate_benchmarks and runs its argv
    # with the job's own interpreter. The argv imports what the stage imports and writes a file, instead of
    # generating the suites (their content belongs to the language pack's tests, not to the container's).
    from submitit.core.utils import DelayedSubmission

    from morphcpt.config import load_experiment
    from morphcpt.context import RunContext
    from morphcpt.controller.tasks import PYTHON, TaskSpec, run_task

    experiment = REPO / "configs" / "experiments" / "demo.yaml"
    ctx = RunContext.create(load_experiment(experiment), experiment, root=REPO)
    out = standin.root / "job-output.txt"
    code = (
        "import sys, wordfreq, ahocorasick, morphcpt.stages; "
        f"open({str(out)!r}, 'w').write(sys.executable + ' ' + wordfreq.__file__)"
    )
    spec = TaskSpec(job=ctx.graph.jobs["generate_benchmarks"], argv=(PYTHON, "-c", code))
    folder = standin.root / "submitit"
    folder.mkdir()
    DelayedSubmission(run_task, spec).dump(folder / "77_submitted.pkl")
    job_env = {
        "SUBMITIT_EXECUTOR": "local",
        "SUBMITIT_LOCAL_JOB_ID": "77",
        "SUBMITIT_LOCAL_NTASKS": "1",
        "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
        "SUBMITIT_LOCAL_NODEID": "0",
        "SUBMITIT_LOCAL_GLOBALID": "0",
        "SUBMITIT_LOCAL_LOCALID": "0",
    }
    command = [str(RUN_IN_ENROOT), "--name", "standin", "--image", str(standin.sqsh), "--"]
    command += ["python3", "-u", "-m", "submitit.core._submit", str(folder)]
    job = subprocess.run(command, capture_output=True, text=True, env={**standin.env, **job_env}, timeout=300)
    assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
    with open(folder / "77_0_result.pkl", "rb") as handle:
        assert pickle.load(handle) == ("success", 0)
    python, wordfreq_file = out.read_text().split()
    assert python == str(standin.overlay / "bin" / "python3")
    assert wordfreq_file.startswith(str(site))
