"""Secrets on every node of a multi-node job: by name, never on a command line.

The rendered training script runs under bash with the environment the scheduler sets; the remote launchers
(pbs_tmrsh, srun, qrsh -inherit) are stand-ins that run the per-node command here with a clean environment,
as pbs_tmrsh does (it forwards none). Not covered: the real launchers over TM, Slurm or Grid Engine.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, morphcpt, profile_data, write_yaml


def _tool(directory: Path, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def render(tmp_path: Path, profile: dict, job: str, experiment: str) -> Path:
    profile_path = write_yaml(tmp_path / "profile.yaml", profile)
    out = tmp_path / "jobs"
    morphcpt(
        "render", "-p", str(profile_path), "-e", experiment, "--out", str(out), "--workdir", str(tmp_path), "--job", job
    )
    return next(out.glob(f"{job}.*"))


def _run(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PBS_", "SLURM_", "SGE_", "MORPHCPT_", "HF_"))}
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env={**clean, **env}, cwd=cwd, timeout=60
    )


MARKER_ENV, MARKER_FILE = "SECRETMARKER-NODE-ENV-5d1e", "SECRETMARKER-NODE-FILE-c07a"


@pytest.mark.parametrize("scheduler", ["pbs", "slurm", "sge"])
def test_secrets_reach_every_node_by_name_only(tmp_path: Path, scheduler: str) -> None:
    """The allow-listed secrets of the first node (HF_TOKEN from the job's environment, WANDB_API_KEY from
    .env) reach every node, although the remote launcher passes no environment; their values are in no
    rendered script, no command line of the launch and no log. Not covered: real pbs_tmrsh / srun / qrsh."""
    profile = profile_data(scheduler, env={"HF_HOME": "/scratch/hf"})
    profile["resources"]["train"] = {"nodes": 2, "ngpus": 4}
    source = (REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text()
    source = source.replace("gpus_per_node: 8\n  num_nodes: 1", "gpus_per_node: 4\n  num_nodes: 2")
    (tmp_path / "two-nodes.yaml").write_text(source)
    (tmp_path / ".env").write_text(f"WANDB_API_KEY='{MARKER_FILE}'\n")
    script = render(tmp_path, profile, "run_cpt_patok", str(tmp_path / "two-nodes.yaml"))
    # On each node: compare the secrets with the expected values (kept in files, out of every command line),
    # and record the command line of every process from the node's command up to the test.
    (tmp_path / "expected_hf").write_text(MARKER_ENV)
    (tmp_path / "expected_wandb").write_text(MARKER_FILE)
    check = tmp_path / "check_node.sh"
    check.write_text(
        "hf=missing; wandb=missing\n"
        '[[ "${HF_TOKEN:-}" == "$(cat "$MORPHCPT_WORKDIR/expected_hf")" ]] && hf=ok\n'
        '[[ "${WANDB_API_KEY:-}" == "$(cat "$MORPHCPT_WORKDIR/expected_wandb")" ]] && wandb=ok\n'
        'echo "node=$MORPHCPT_FAKE_HOST rank=$PET_NODE_RANK hf_token=$hf wandb=$wandb hf_home=$HF_HOME"\n'
        "pid=$$\n"
        "while ((pid > 1)); do\n"
        '  tr "\\0" " " < /proc/$pid/cmdline >> "$MORPHCPT_WORKDIR/cmdlines"; echo >> "$MORPHCPT_WORKDIR/cmdlines"\n'
        "  pid=$(awk '{print $4}' /proc/$pid/stat)\n"
        "done\n"
    )
    lines = script.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TRAIN_CMD=("))
    lines[start] = f"TRAIN_CMD=(bash {shlex.quote(str(check))})"
    script.write_text("\n".join(lines) + "\n")

    # Stand-in launchers: each records its arguments and runs the command with no environment of the job's.
    bin_dir = tmp_path / "bin"
    record = 'printf "%s\\n" "$*" >> "$FAKE_LAUNCH_ARGV"'
    clean = 'exec env -i PATH="$PATH" HOME="$HOME" MORPHCPT_FAKE_HOST="$host"'
    _tool(bin_dir, "pbs_tmrsh", f'#!/bin/bash\n{record}\nhost=$1; shift\n{clean} "$@"\n')
    _tool(bin_dir, "srun", f'#!/bin/bash\n{record}\nhost=${{3#--nodelist=}}; shift 3\n{clean} "$@"\n')
    # qrsh -inherit joins its words and the remote shell parses them, as rsh does.
    _tool(bin_dir, "qrsh", f'#!/bin/bash\n{record}\nhost=$2; shift 2\n{clean} bash -c "$*"\n')
    _tool(bin_dir, "scontrol", '#!/bin/bash\nprintf "gpu-a\\ngpu-b\\n"\n')
    nodefile = tmp_path / "nodes"
    nodefile.write_text(
        "gpu-a\ngpu-a\ngpu-b\ngpu-b\n"
        if scheduler != "sge"
        else "gpu-a 4 q@gpu-a UNDEFINED\ngpu-b 4 q@gpu-b UNDEFINED\n"
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HF_TOKEN": MARKER_ENV,
        "FAKE_LAUNCH_ARGV": str(tmp_path / "launch_argv"),
        **{
            "pbs": {"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "77.pbs01"},
            "slurm": {"SLURM_JOB_NODELIST": "gpu-[a-b]", "SLURM_JOB_ID": "77"},
            "sge": {"PE_HOSTFILE": str(nodefile), "JOB_ID": "77"},
        }[scheduler],
    }
    result = _run(script, env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    reports = sorted(line for line in result.stdout.splitlines() if line.startswith("node="))
    assert [r.split()[1] for r in reports] == ["rank=0", "rank=1"], result.stdout + result.stderr
    assert all("hf_token=ok wandb=ok hf_home=/scratch/hf" in r for r in reports), reports
    if scheduler != "slurm":
        assert [r.split()[0] for r in reports] == ["node=gpu-a", "node=gpu-b"]

    launched = (tmp_path / "launch_argv").read_text()
    cmdlines = (tmp_path / "cmdlines").read_text()
    assert launched.count("PET_NODE_RANK") == 2 and "bash -c" in cmdlines
    written = [script, *(tmp_path / "logs").iterdir()]
    for text, where in [
        (launched, "the launcher's arguments"),
        (cmdlines, "/proc/<pid>/cmdline of the node's processes"),
        (result.stdout + result.stderr, "the job's output"),
        *((path.read_text(), str(path)) for path in written),
    ]:
        assert MARKER_ENV not in text and MARKER_FILE not in text, where
    # The file that carried them to the nodes is gone once the job ended.
    assert not list(tmp_path.glob(".morphcpt-node-secrets.*"))
