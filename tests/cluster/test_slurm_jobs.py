"""Rendered scripts submitted with plain sbatch (and Slurm's Torque qsub wrapper) to the real local Slurm.

Stage bodies that need data this test does not create are replaced (between the body markers) by commands
that record what ran; headers, prologue, chunk selection and dependencies are exactly as rendered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, SlurmCluster, morphcpt, profile_data, replace_body, write_yaml

pytestmark = pytest.mark.slurm

RECORD_TASK = """start=$(date +%s.%N)
sleep 2
printf '%s %s %s\\n' "$start" "$(date +%s.%N)" "$SLURM_ARRAY_JOB_ID" > "$MORPHCPT_WORKDIR/ran/chunk_$CHUNK"
"""
RECORD_DEPENDENT = """date +%s.%N > "$MORPHCPT_WORKDIR/merge_start"
ls "$MORPHCPT_WORKDIR/ran" > "$MORPHCPT_WORKDIR/merge_saw"
"""


def small_experiment(tmp_path: Path, chunks: int = 4) -> Path:
    source = (REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text()
    path = tmp_path / "experiment.yaml"
    path.write_text(source.replace("num_chunks: 20", f"num_chunks: {chunks}"))
    return path


def render_jobs(tmp_path: Path, profile: dict, jobs: list[str]) -> Path:
    profile_path = write_yaml(tmp_path / "profile.yaml", profile)
    out = tmp_path / "jobs"
    args = ["render", "-p", str(profile_path), "-e", str(small_experiment(tmp_path)), "--out", str(out)]
    for job in jobs:
        args += ["--job", job]
    morphcpt(*args, "--workdir", str(tmp_path))
    (tmp_path / "ran").mkdir()
    return out


def test_array_and_dependent_job_run_in_order(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    profile = profile_data("slurm", max_concurrent_tasks=2)
    out = render_jobs(tmp_path, profile, ["preprocess_data_vanilla", "merge_data_vanilla"])
    array_script, merge_script = out / "preprocess_data_vanilla.sbatch", out / "merge_data_vanilla.sbatch"
    assert "#SBATCH --array=1-4%2" in array_script.read_text().splitlines()
    replace_body(array_script, RECORD_TASK)
    replace_body(merge_script, RECORD_DEPENDENT)

    array_id = slurm_cluster.run("sbatch", "--parsable", str(array_script)).stdout.strip()
    merge_id = slurm_cluster.run(
        "sbatch", "--parsable", f"--dependency=afterok:{array_id}", str(merge_script)
    ).stdout.strip()
    dependency = slurm_cluster.job_fields(merge_id)[0]["Dependency"]
    print(f"scontrol show job {merge_id}: Dependency={dependency}")
    assert dependency.startswith(f"afterok:{array_id}")
    slurm_cluster.wait([array_id, merge_id])

    ends = []
    for chunk in range(1, 5):
        _start, end, job = (tmp_path / "ran" / f"chunk_{chunk}").read_text().split()
        assert job == array_id
        ends.append(float(end))
        log = (tmp_path / "logs" / f"preprocess_data_vanilla_{array_id}_{chunk}.log").read_text()
        assert f"task {chunk} (chunk {chunk})" in log
    assert float((tmp_path / "merge_start").read_text()) >= max(ends)
    assert (tmp_path / "merge_saw").read_text().split() == [f"chunk_{i}" for i in range(1, 5)]
    states = {
        f["JobId"]: f["JobState"] for f in slurm_cluster.job_fields(array_id) + slurm_cluster.job_fields(merge_id)
    }
    assert set(states.values()) == {"COMPLETED"}, states


def test_failed_array_task_keeps_the_dependent_job_from_running(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    out = render_jobs(tmp_path, profile_data("slurm"), ["preprocess_data_patok", "merge_data_patok"])
    replace_body(out / "preprocess_data_patok.sbatch", "if [[ $CHUNK == 3 ]]; then exit 1; fi\n" + RECORD_TASK)
    replace_body(out / "merge_data_patok.sbatch", RECORD_DEPENDENT)
    array_id = slurm_cluster.run("sbatch", "--parsable", str(out / "preprocess_data_patok.sbatch")).stdout.strip()
    merge_id = slurm_cluster.run(
        "sbatch", "--parsable", f"--dependency=afterok:{array_id}", str(out / "merge_data_patok.sbatch")
    ).stdout.strip()
    slurm_cluster.wait([array_id, merge_id])
    assert not (tmp_path / "merge_start").exists()
    assert sorted(p.name for p in (tmp_path / "ran").iterdir()) == ["chunk_1", "chunk_2", "chunk_4"]
    merge = slurm_cluster.job_fields(merge_id)
    assert not merge or merge[0]["JobState"] in {"CANCELLED", "PENDING"}, merge


def test_hostile_values_and_secrets_through_slurm(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    hostile = """x y "q" 'r' $(touch PWNED) `touch PWNED2`"""
    out = render_jobs(tmp_path, profile_data("slurm", env={"HOSTILE_VALUE": hostile}), ["split_data"])
    (tmp_path / ".env").write_text("HF_TOKEN=SLURMSECRET-5d1e\n")
    replace_body(
        out / "split_data.sbatch",
        'printf "%s" "$HOSTILE_VALUE" > ran/value\n[[ $HF_TOKEN == SLURMSECRET-5d1e ]] && echo "token loaded"\n',
    )
    job = slurm_cluster.run("sbatch", "--parsable", str(out / "split_data.sbatch")).stdout.strip()
    slurm_cluster.wait([job])
    assert (tmp_path / "ran/value").read_text() == hostile
    assert not list(tmp_path.rglob("PWNED*"))
    log = (tmp_path / "logs" / f"split_data_{job}.log").read_text()
    assert "token loaded" in log and "SLURMSECRET" not in log


def test_pbs_script_runs_through_the_torque_qsub_wrapper(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """Slurm's `qsub` wrapper hands the script to sbatch, which reads the #PBS lines itself.

    Covered: -N, -q, -l select=...:ncpus:mem, -l walltime, -J arrays (run as Slurm arrays; the prologue falls
    back to SLURM_ARRAY_TASK_ID because PBS_ARRAY_INDEX is unset), -W depend=afterok. Not covered, to be checked
    on a real PBS Pro server: -P (sbatch rejects it, so this profile has no project), -r y, -j oe and -o with
    ^array_index^ (the wrapper passes its own -o/-e), PBS_NODEFILE and the PBS_* environment.
    """
    profile = profile_data("pbs", queue="debug")
    del profile["project"]
    out = render_jobs(tmp_path, profile, ["preprocess_data_stochastok", "merge_data_stochastok"])
    replace_body(out / "preprocess_data_stochastok.pbs", RECORD_TASK.replace("$SLURM_ARRAY_JOB_ID", "$MORPHCPT_JOB_ID"))
    replace_body(out / "merge_data_stochastok.pbs", RECORD_DEPENDENT)
    submitted = slurm_cluster.run("qsub", str(out / "preprocess_data_stochastok.pbs"), check=False)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    array_id = submitted.stdout.strip().split()[-1]
    merge_id = (
        slurm_cluster.run("qsub", "-W", f"depend=afterok:{array_id}", str(out / "merge_data_stochastok.pbs"))
        .stdout.strip()
        .split()[-1]
    )
    assert slurm_cluster.job_fields(merge_id)[0]["Dependency"].startswith(f"afterok:{array_id}")
    slurm_cluster.wait([array_id, merge_id])
    for chunk in range(1, 5):
        assert (tmp_path / "ran" / f"chunk_{chunk}").exists()
    assert (tmp_path / "merge_saw").read_text().split() == [f"chunk_{i}" for i in range(1, 5)]
    fields = slurm_cluster.job_fields(array_id)[0]
    # The experiment's own walltime for this variant (the plan's 6 h per StochasTok task) beats the profile's
    # default, and the #PBS -l walltime line reaches Slurm through the wrapper.
    assert fields["TimeLimit"] == "06:00:00" and fields["Partition"] == "debug"


def test_submit_all_script_submits_in_dependency_order(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    out = render_jobs(tmp_path, profile_data("slurm"), ["split_data", "preprocess_data_vanilla", "merge_data_vanilla"])
    for script in out.glob("*.sbatch"):
        replace_body(script, 'echo "$MORPHCPT_JOB_NAME ${CHUNK:-}" >> "$MORPHCPT_WORKDIR/ran/order"; sleep 1')
    result = slurm_cluster.run("bash", str(out / "submit_all.sbatch.sh"))
    ids = dict(line.split(": ") for line in result.stdout.splitlines())
    assert set(ids) == {"split_data", "preprocess_data_vanilla", "merge_data_vanilla"}
    slurm_cluster.wait(list(ids.values()))
    order = (tmp_path / "ran/order").read_text().splitlines()
    assert order[0].strip() == "split_data" and order[-1].strip() == "merge_data_vanilla"
    assert sorted(order[1:-1]) == [f"preprocess_data_vanilla {i}" for i in range(1, 5)]
