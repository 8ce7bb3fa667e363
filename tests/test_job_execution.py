"""Rendered scripts executed by bash with the environment the scheduler sets.

Not covered here (no PBS Pro server on these machines): qsub's own parsing of the #PBS header, PBS_NODEFILE
written by a real MoM, and pbs_tmrsh over TM. tests/cluster/ runs the same scripts through Slurm's Torque
`qsub` wrapper, which parses most of the header.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, morphcpt, profile_data, replace_body, write_yaml

HOSTILE = """a b "c" 'd' $(touch PWNED) `touch PWNED2` ${HOME} ; echo x"""


def render(tmp_path: Path, profile: dict, job: str, experiment: str = "seapile-tl-cpt") -> Path:
    profile_path = write_yaml(tmp_path / "profile.yaml", profile)
    out = tmp_path / "jobs"
    morphcpt(
        "render", "-p", str(profile_path), "-e", experiment, "--out", str(out), "--workdir", str(tmp_path), "--job", job
    )
    return next(out.glob(f"{job}.*"))


def run_script(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PBS_", "SLURM_", "MORPHCPT_"))}
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env={**clean, **env}, cwd=cwd, timeout=60
    )


def pbs_environment(tmp_path: Path, index: int | None) -> dict[str, str]:
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("node001\n")
    env = {"PBS_JOBID": "4242[].pbs01" if index is None else f"4242[{index}].pbs01", "PBS_O_WORKDIR": str(tmp_path)}
    env["PBS_NODEFILE"] = str(nodefile)
    if index is not None:
        env["PBS_ARRAY_INDEX"] = str(index)
    return env


def test_pbs_array_task_selects_its_chunk(tmp_path: Path) -> None:
    script = render(tmp_path, profile_data("pbs"), "preprocess_data_patok")
    body = (REPO / "job_templates/stages/preprocess.j2").read_text()
    assert '--chunk "$CHUNK"' in body and '--chunk "$CHUNK"' in script.read_text()
    # The stage body needs data this test does not have; it reports the chunk the prologue selected instead.
    replace_body(script, 'echo "variant=patok chunk=$CHUNK task=$TASK_INDEX job=$MORPHCPT_JOB_ID pwd=$PWD"')
    for index in (1, 7, 20):
        result = run_script(script, pbs_environment(tmp_path, index), cwd=Path("/"))
        assert result.returncode == 0, result.stderr
        assert f"variant=patok chunk={index} task={index} job=4242[{index}].pbs01 pwd={tmp_path}" in result.stdout


def test_pbs_array_task_without_an_index_fails_clearly(tmp_path: Path) -> None:
    script = render(tmp_path, profile_data("pbs"), "preprocess_data_vanilla")
    replace_body(script, "touch should-not-run")
    result = run_script(script, pbs_environment(tmp_path, None), cwd=tmp_path)
    assert result.returncode == 2
    assert "no array index" in result.stderr and not (tmp_path / "should-not-run").exists()
    result = run_script(script, pbs_environment(tmp_path, 21), cwd=tmp_path)
    assert result.returncode == 2 and "outside 1-20" in result.stderr


def test_hostile_profile_values_reach_the_job_verbatim(tmp_path: Path) -> None:
    profile = profile_data("pbs", project=HOSTILE, queue=HOSTILE, env={"HOSTILE_VALUE": HOSTILE})
    profile["container"] = {"runtime": "none"}
    script = render(tmp_path, profile, "split_data")
    text = script.read_text()
    assert "#PBS -P 'a b \"c\" '\"'\"'d'\"'\"' $(touch PWNED)" in text
    replace_body(script, 'printf "%s" "$HOSTILE_VALUE" > value.txt')
    result = run_script(script, pbs_environment(tmp_path, None), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "value.txt").read_text() == HOSTILE
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    subprocess.run(["shellcheck", str(script)], check=True)


def test_secrets_never_reach_scripts_or_logs(tmp_path: Path) -> None:
    marker_env, marker_file = "SECRETMARKER-ENV-7f3a", "SECRETMARKER-FILE-91bc"
    (tmp_path / ".env").write_text(f"WANDB_API_KEY='{marker_file}'\nNOT_ALLOWED=ignored\n")
    os.environ["HF_TOKEN"] = marker_env
    try:
        script = render(tmp_path, profile_data("pbs"), "download_data")
    finally:
        del os.environ["HF_TOKEN"]
    check = (
        f"{sys.executable} -c 'import os; "
        f'assert os.environ["HF_TOKEN"] == "{marker_env}"; '
        f'assert os.environ["WANDB_API_KEY"] == "{marker_file}"; '
        'assert "NOT_ALLOWED" not in os.environ; print("secrets present")\'\n'
        f'MORPHCPT_CONTAINER_RUNTIME=enroot "{REPO}/containers/run_in_enroot.sh" --dry-run -- python3 -c pass\n'
    )
    # The check names the markers, so it runs from a file that is not part of the rendered script.
    checker = tmp_path / "check_secrets.sh"
    checker.write_text(check)
    replace_body(script, f'bash {checker} > "{tmp_path}/logs/stage.log" 2>&1')
    env = {**pbs_environment(tmp_path, None), "HF_TOKEN": marker_env}
    result = run_script(script, env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "logs/stage.log").read_text()
    assert "secrets present" in log and "--env HF_TOKEN" in log and "--env WANDB_API_KEY" in log
    for path in [*tmp_path.joinpath("jobs").iterdir(), *tmp_path.joinpath("logs").iterdir()]:
        text = path.read_text()
        assert marker_env not in text and marker_file not in text, path
    assert marker_env not in result.stdout + result.stderr


def _fake_tool(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("scheduler", ["pbs", "slurm"])
def test_multi_node_training_gives_each_node_its_rank(tmp_path: Path, scheduler: str) -> None:
    profile = profile_data(scheduler, env={"HF_HOME": "/scratch/hf cache", "OMP_NUM_THREADS": "4"})
    profile["resources"]["train"] = {"nodes": 2, "ngpus": 4}
    # The experiment's training plan must match the profile's 2 nodes x 4 GPUs (render checks it).
    source = (REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text()
    source = source.replace("gpus_per_node: 8\n  num_nodes: 1", "gpus_per_node: 4\n  num_nodes: 2")
    experiment = tmp_path / "two-nodes.yaml"
    experiment.write_text(source)
    script = render(tmp_path, profile, "run_cpt_patok", str(experiment))
    text = script.read_text()
    assert ("#PBS -l select=2:ncpus=1:ngpus=4:mem=256mb:mpiprocs=1" in text) == (scheduler == "pbs")
    assert ("#SBATCH --nodes=2" in text) == (scheduler == "slurm")
    subprocess.run(["shellcheck", str(script)], check=True)
    # Stand-ins (not covered: real TM / srun remote launch): run the per-node command locally, in a clean
    # environment as pbs_tmrsh gives (only what the command itself exports reaches the node).
    bin_dir = tmp_path / "bin"
    clean = 'exec env -i PATH="$PATH" HOME="$HOME" MORPHCPT_FAKE_HOST=$host "$@"'
    _fake_tool(bin_dir, "pbs_tmrsh", f"host=$1; shift; {clean}")
    _fake_tool(bin_dir, "srun", f"host=?; while [[ $1 == --* ]]; do shift; done; {clean}")
    _fake_tool(bin_dir, "scontrol", 'printf "gpu-a\\ngpu-b\\n"')
    report = (
        'echo "node=${MORPHCPT_FAKE_HOST:-?} rank=$PET_NODE_RANK of=$PET_NNODES '
        'master=$PET_MASTER_ADDR:$PET_MASTER_PORT nproc=$PET_NPROC_PER_NODE hf=$HF_HOME omp=$OMP_NUM_THREADS"'
    )
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TRAIN_CMD=("))
    lines[start] = f"TRAIN_CMD=(bash -c {shlex.quote(report)})"
    script.write_text("\n".join(lines) + "\n")
    nodefile = tmp_path / "nodes"
    nodefile.write_text("gpu-a\ngpu-a\ngpu-b\ngpu-b\n")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env |= (
        {"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "77.pbs"}
        if scheduler == "pbs"
        else {
            "SLURM_JOB_NODELIST": "gpu-[a-b]",
            "SLURM_JOB_ID": "77",
        }
    )
    result = run_script(script, env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ranks = sorted(line for line in result.stdout.splitlines() if line.startswith("node="))
    assert len(ranks) == 2
    assert "rank=0 of=2 master=gpu-a:" in ranks[0] and "rank=1 of=2 master=gpu-a:" in ranks[1]
    assert all("nproc=4" in line for line in ranks)
    # The profile's environment reaches every node, values intact.
    assert all(line.endswith("hf=/scratch/hf cache omp=4") for line in ranks), ranks
    if scheduler == "pbs":
        assert ranks[0].startswith("node=gpu-a") and ranks[1].startswith("node=gpu-b")


def test_training_script_reports_a_time_budget_stop(tmp_path: Path) -> None:
    profile = profile_data("slurm")
    profile["resources"]["train"] = {"ngpus": 8}  # what the seed plan's training asks for
    script = render(tmp_path, profile, "run_cpt_baseline")
    lines = script.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TRAIN_CMD=("))
    lines[start] = "TRAIN_CMD=(bash -c 'exit 3')"
    script.write_text("\n".join(lines) + "\n")
    result = run_script(script, {"SLURM_JOB_ID": "5"}, cwd=tmp_path)
    assert result.returncode == 3
    assert "time budget reached, checkpoint saved; resubmit to resume" in result.stdout


@pytest.mark.parametrize("scheduler", ["pbs", "slurm"])
def test_controller_script_of_a_multi_node_job_runs_submitit_on_every_node(tmp_path: Path, scheduler: str) -> None:
    """Under the controller the job body is submitit's command; for a 2-node job it must start on both nodes,
    each with its own rank (before, the controller's job trained on one node with PET_NNODES=1)."""
    from morphcpt.cluster import get_scheduler
    from morphcpt.config import load_experiment, load_profile
    from morphcpt.controller.executors import SubmitUnit
    from morphcpt.controller.tasks import task_spec
    from morphcpt.graph import build_graph
    from morphcpt.render.scripts import RenderTarget

    profile = profile_data(scheduler, env={"HF_HOME": "/scratch/hf"})
    profile["resources"]["train"] = {"nodes": 2, "ngpus": 4}
    source = (REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text()
    source = source.replace("gpus_per_node: 8\n  num_nodes: 1", "gpus_per_node: 4\n  num_nodes: 2")
    (tmp_path / "two-nodes.yaml").write_text(source)
    profile_path = write_yaml(tmp_path / "profile.yaml", profile)
    experiment = load_experiment(tmp_path / "two-nodes.yaml")
    target = RenderTarget.create(
        load_profile(profile_path), profile_path, experiment, tmp_path / "two-nodes.yaml", tmp_path
    )
    job = build_graph(experiment).jobs["run_cpt_patok"]
    backend = get_scheduler(scheduler).backend(target, tmp_path / "runs/x/submitit")
    text = backend.script(SubmitUnit([task_spec(target.context, job, 0)], token="tok"))
    report = (
        'echo "node=${MORPHCPT_FAKE_HOST:-?} rank=$PET_NODE_RANK of=$PET_NNODES '
        'executor=$SUBMITIT_EXECUTOR hf=$HF_HOME"'
    )
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TRAIN_CMD=("))
    assert "submitit.core._submit" in lines[start]
    lines[start] = f"TRAIN_CMD=(bash -c {shlex.quote(report)})"
    script = tmp_path / "controller.job"
    script.write_text("\n".join(lines) + "\n")
    bin_dir = tmp_path / "bin"
    clean = 'exec env -i PATH="$PATH" HOME="$HOME" MORPHCPT_FAKE_HOST=$host "$@"'
    _fake_tool(bin_dir, "pbs_tmrsh", f"host=$1; shift; {clean}")
    _fake_tool(bin_dir, "srun", f"host=?; while [[ $1 == --* ]]; do shift; done; {clean}")
    _fake_tool(bin_dir, "scontrol", 'printf "gpu-a\\ngpu-b\\n"')
    nodefile = tmp_path / "nodes"
    nodefile.write_text("gpu-a\ngpu-b\n")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env |= (
        {"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "7.pbs"}
        if scheduler == "pbs"
        else {"SLURM_JOB_NODELIST": "gpu-[a-b]", "SLURM_JOB_ID": "7"}
    )
    result = run_script(script, env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = sorted(line for line in result.stdout.splitlines() if line.startswith("node="))
    assert [r.split()[1] for r in ranks] == ["rank=0", "rank=1"], result.stdout
    assert all(f"of=2 executor={scheduler} hf=/scratch/hf" in r for r in ranks), ranks
