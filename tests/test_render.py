"""Rendering job scripts: the files setup_jobs.sh writes, their headers, and what fails loudly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, morphcpt, profile_data, write_yaml

SETUP_JOBS = REPO / "job_templates" / "setup_jobs.sh"
PLACEHOLDERS = re.compile(r"\{\{|\{%|YOUR_|/path/to/")
EXPECTED_JOBS = [
    "download_data",
    "split_data",
    "preprocess_data_vanilla",
    "preprocess_data_stochastok",
    "preprocess_data_patok",
    "merge_data_vanilla",
    "merge_data_stochastok",
    "merge_data_patok",
    "data_stats",
    "import_base_model",
    "run_cpt_baseline",
    "run_cpt_stochastok",
    "run_cpt_patok",
    "export_baseline",
    "export_stochastok",
    "export_patok",
    "generate_benchmarks",
    "evaluate",
    "analyze",
]


def setup_jobs(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MORPHCPT_HOST_PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SETUP_JOBS), *args], capture_output=True, text=True, env=env, input=stdin, timeout=120
    )


def assert_valid_bash(paths: list[Path]) -> None:
    for path in paths:
        subprocess.run(["bash", "-n", str(path)], check=True)
    result = subprocess.run(["shellcheck", *map(str, paths)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("profile", "suffix", "array_line", "index_var"),
    [
        ("pbs-a100", ".pbs", "#PBS -J 1-20", "PBS_ARRAY_INDEX"),
        ("slurm-a100", ".sbatch", "#SBATCH --array=1-20%20", "SLURM_ARRAY_TASK_ID"),
    ],
)
def test_setup_jobs_renders_every_job(tmp_path: Path, profile: str, suffix: str, array_line: str, index_var: str):
    out = tmp_path / "jobs"
    result = setup_jobs("--profile", profile, "--experiment", "seapile-tl-cpt", "--out", str(out))
    assert result.returncode == 0, result.stderr
    scripts = sorted(out.glob(f"*{suffix}"))
    assert sorted(p.stem for p in scripts) == sorted(EXPECTED_JOBS)
    assert_valid_bash([*scripts, *out.glob("submit_all*")])
    for script in scripts:
        text = script.read_text()
        assert not PLACEHOLDERS.search(text), script
    for variant in ("vanilla", "stochastok", "patok"):
        text = (out / f"preprocess_data_{variant}{suffix}").read_text()
        assert array_line in text.splitlines()
        assert index_var in text and f'--variant {variant} --chunk "$CHUNK"' in text
    # The printed submission order puts every job after the jobs it depends on.
    printed = [line.split("=", 1)[0].strip() for line in result.stdout.splitlines() if "$(" in line]
    assert printed.index("split_data") < printed.index("preprocess_data_patok") < printed.index("merge_data_patok")
    assert printed.index("merge_data_patok") < printed.index("run_cpt_patok") < printed.index("evaluate")
    assert "afterok" in result.stdout


def test_pbs_header_carries_the_profile_resources(tmp_path: Path) -> None:
    morphcpt("render", "-p", "pbs-a100", "--out", str(tmp_path), "--job", "run_cpt_patok")
    header = [line for line in (tmp_path / "run_cpt_patok.pbs").read_text().splitlines() if line.startswith("#PBS")]
    assert header == [
        "#PBS -N run_cpt_patok",
        "#PBS -P personal",
        "#PBS -q normal",
        "#PBS -l select=1:ncpus=112:ngpus=8:mem=440gb",
        "#PBS -l walltime=48:00:00",  # the experiment's walltime for this run, over the profile's 24 h
        "#PBS -j oe",
        f"#PBS -o {REPO}/logs/run_cpt_patok.log",
    ]


def test_slurm_header_carries_the_profile_resources(tmp_path: Path) -> None:
    morphcpt("render", "-p", "slurm-a100", "--out", str(tmp_path), "--job", "run_cpt_baseline")
    text = (tmp_path / "run_cpt_baseline.sbatch").read_text()
    for line in [
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=64",
        "#SBATCH --mem=400G",
        "#SBATCH --time=24:00:00",
        f"#SBATCH --output={REPO}/logs/run_cpt_baseline_%j.log",
    ]:
        assert line in text.splitlines()
    assert "torchrun training/nemo/run_cpt.py" in text and "PET_NPROC_PER_NODE=8" in text


def test_array_larger_than_the_cluster_maximum_is_refused(tmp_path: Path) -> None:
    profile = write_yaml(tmp_path / "small.yaml", profile_data("pbs", max_array_size=10))
    result = morphcpt("render", "-p", str(profile), "--out", str(tmp_path / "jobs"), check=False)
    assert result.returncode == 2
    assert f"{profile}: max_array_size: job preprocess_data_vanilla needs 20 array tasks" in result.stderr
    assert not (tmp_path / "jobs").exists()


def test_placeholder_left_in_a_profile_is_refused(tmp_path: Path) -> None:
    profile = write_yaml(tmp_path / "p.yaml", profile_data("pbs", project="YOUR_PROJECT"))
    result = morphcpt("render", "-p", str(profile), "--out", str(tmp_path / "jobs"), check=False)
    assert result.returncode == 2
    assert f"{profile}: project: still holds a placeholder" in result.stderr


def test_single_chunk_pbs_job_is_not_an_array(tmp_path: Path) -> None:
    # PBS Pro rejects `-J 1-1`; a one-chunk experiment renders a plain job that processes chunk 1.
    experiment = tmp_path / "e.yaml"
    source = (REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text()
    experiment.write_text(source.replace("num_chunks: 20", "num_chunks: 1"))
    profile = write_yaml(tmp_path / "p.yaml", profile_data("pbs"))
    out = tmp_path / "jobs"
    morphcpt("render", "-p", str(profile), "-e", str(experiment), "--out", str(out), "--workdir", str(tmp_path))
    text = (out / "preprocess_data_vanilla.pbs").read_text()
    assert "#PBS -J" not in text and "MORPHCPT_TASK_INDEX:-1}" in text


def test_setup_jobs_without_a_terminal_names_the_missing_flag(tmp_path: Path) -> None:
    result = setup_jobs("--out", str(tmp_path), stdin="")
    assert result.returncode == 2
    assert "missing --profile and no terminal to ask" in result.stderr


def test_setup_jobs_prompts_on_a_terminal(tmp_path: Path) -> None:
    import pty

    out = tmp_path / "jobs"
    pid, fd = pty.fork()
    if pid == 0:  # child: setup_jobs.sh with a terminal on stdin
        os.environ["MORPHCPT_HOST_PYTHON"] = sys.executable
        os.execvp("bash", ["bash", str(SETUP_JOBS), "--out", str(out)])
    os.write(fd, b"local\n\n")
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "profile:" in text and "experiment [seapile-tl-cpt]:" in text
    assert (out / "preprocess_data_patok.sh").exists()


def test_pyxis_profile_runs_stages_through_srun_containers(tmp_path: Path) -> None:
    data = profile_data("slurm", container={"runtime": "pyxis", "image": "/images/nemo.sqsh", "mounts": []})
    profile = write_yaml(tmp_path / "p.yaml", data)
    out = tmp_path / "jobs"
    morphcpt("render", "-p", str(profile), "--out", str(out), "--workdir", str(tmp_path), "--job", "split_data")
    script = out / "split_data.sbatch"
    assert_valid_bash([script])
    text = script.read_text()
    assert '--container-image="$MORPHCPT_CONTAINER_IMAGE"' in text
    assert "export MORPHCPT_CONTAINER_IMAGE=/images/nemo.sqsh" in text


@pytest.mark.parametrize(
    "script", ["job_templates/setup_jobs.sh", "containers/setup_enroot.sh", "containers/run_in_enroot.sh"]
)
def test_help_prints_the_usage_comment_and_no_code(script: str) -> None:
    shown = subprocess.run(["bash", str(REPO / script), "--help"], capture_output=True, text=True, check=True).stdout
    assert shown.strip() and "set -euo pipefail" not in shown and not shown.startswith("#")


def test_local_profile_submit_script_is_named_submit_all_sh(tmp_path: Path) -> None:
    morphcpt("render", "-p", "local", "-e", "demo", "--out", str(tmp_path / "jobs"), "--workdir", str(tmp_path))
    assert (tmp_path / "jobs/submit_all.sh").exists() and not (tmp_path / "jobs/submit_all.sh.sh").exists()
