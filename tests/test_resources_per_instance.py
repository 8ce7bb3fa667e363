"""Resources per stage instance and a concurrency cap per entry (issue 16): the seed plan's walltimes differ
per variant and per run, and its three training runs share one 8-GPU node, one after another
(`max_concurrent: 1`). By hand that is a dependency chain of afterany links (a failed run does not cancel the
next one; the runs are independent experiments), beside the afterok links of real data dependencies; the
controller holds the capped jobs back itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, morphcpt, profile_data, write_yaml
from morphcpt.cluster import get_scheduler
from morphcpt.cluster.pbs import PBSBackend
from morphcpt.config import load_experiment, load_profile
from morphcpt.controller.engine import Controller, Policy
from morphcpt.controller.executors import FAILED, PENDING, JobState, SubmitUnit
from morphcpt.controller.state import StateStore
from morphcpt.graph import build_graph
from morphcpt.render.scripts import RenderTarget

PREPROCESS_WALLTIMES = {"vanilla": "04:00:00", "stochastok": "06:00:00", "patok": "08:00:00"}
TRAIN_WALLTIMES = {"baseline": "24:00:00", "stochastok": "36:00:00", "patok": "48:00:00"}


def setup_jobs(tmp_path: Path, profile: str) -> tuple[Path, str]:
    """job_templates/setup_jobs.sh as a user runs it, without a terminal (CI=true, stdin not a tty)."""
    out = tmp_path / "jobs"
    script = REPO / "job_templates/setup_jobs.sh"
    args = ["--profile", profile, "--experiment", "seapile-tl-cpt", "--out", str(out), "--workdir", str(tmp_path)]
    result = subprocess.run(
        ["bash", str(script), *args],
        cwd=tmp_path,
        # This test's Python (a checkout without .venv/, e.g. a CI clone, would fall back to a bare python3).
        env={**os.environ, "CI": "true", "MORPHCPT_HOST_PYTHON": sys.executable},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def submit_line(script: str, job: str) -> str:
    return next(line for line in script.splitlines() if line.startswith(f"{job}=$("))


def test_setup_jobs_renders_the_plans_walltimes_and_chains_the_training_runs_for_pbs(tmp_path: Path) -> None:
    out, printed = setup_jobs(tmp_path, "pbs-a100")
    for variant, walltime in PREPROCESS_WALLTIMES.items():
        script = (out / f"preprocess_data_{variant}.pbs").read_text()
        # Per array task: the array header and the walltime line of the same script.
        assert "#PBS -J 1-20" in script and f"#PBS -l walltime={walltime}\n" in script
    for run, walltime in TRAIN_WALLTIMES.items():
        assert f"#PBS -l walltime={walltime}\n" in (out / f"run_cpt_{run}.pbs").read_text()

    submit_all = (out / "submit_all.pbs.sh").read_text()
    baseline = submit_line(submit_all, "run_cpt_baseline")
    assert '-W depend=afterok:"$merge_data_vanilla":"$import_base_model" ' in baseline and "afterany" not in baseline
    assert (
        '-W depend=afterok:"$merge_data_stochastok":"$import_base_model",afterany:"$run_cpt_baseline" '
        in submit_line(submit_all, "run_cpt_stochastok")
    )
    assert '-W depend=afterok:"$merge_data_patok":"$import_base_model",afterany:"$run_cpt_stochastok" ' in submit_line(
        submit_all, "run_cpt_patok"
    )
    # Real data dependencies stay afterok: an export needs its run's checkpoint.
    assert '-W depend=afterok:"$run_cpt_stochastok" ' in submit_line(submit_all, "export_stochastok")
    assert submit_all.count("afterany") == 2
    # The printed commands are the script's.
    assert f"  {submit_line(submit_all, 'run_cpt_patok')}" in printed.splitlines()


def test_submit_all_passes_each_jobs_own_ids_to_qsub(tmp_path: Path) -> None:
    """submit_all.pbs.sh run by bash against a stand-in qsub that prints ids as PBS does (`N.server`, `N[].server`
    for an array): each training job waits for its data and for the previous run by their real ids."""
    out, _ = setup_jobs(tmp_path, "pbs-a100")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "qsub.calls"
    qsub = bin_dir / "qsub"
    qsub.write_text(
        "#!/bin/bash\n"
        f"n=$(( $(wc -l < {calls} 2>/dev/null || echo 0) + 1 ))\n"
        f'echo "$*" >> {calls}\n'
        'if grep -q "^#PBS -J" "${@: -1}"; then echo "$n[].server"; else echo "$n.server"; fi\n'
    )
    qsub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(out / "submit_all.pbs.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    ids = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    args = {Path(line.split()[-1]).stem: line for line in calls.read_text().splitlines()}
    assert len(args) == 19
    assert args["run_cpt_baseline"].startswith(
        f"-W depend=afterok:{ids['merge_data_vanilla']}:{ids['import_base_model']} "
    )
    assert args["run_cpt_stochastok"].startswith(
        f"-W depend=afterok:{ids['merge_data_stochastok']}:{ids['import_base_model']},"
        f"afterany:{ids['run_cpt_baseline']} "
    )
    assert args["run_cpt_patok"].startswith(
        f"-W depend=afterok:{ids['merge_data_patok']}:{ids['import_base_model']},afterany:{ids['run_cpt_stochastok']} "
    )
    assert ids["preprocess_data_patok"].endswith("[].server")
    assert args["merge_data_patok"].startswith(f"-W depend=afterok:{ids['preprocess_data_patok']} ")


def test_slurm_rendering_chains_the_runs_with_afterany_and_writes_each_runs_time(tmp_path: Path) -> None:
    out, _ = setup_jobs(tmp_path, "slurm-a100")
    for variant, walltime in PREPROCESS_WALLTIMES.items():
        assert f"#SBATCH --time={walltime}\n" in (out / f"preprocess_data_{variant}.sbatch").read_text()
    for run, walltime in TRAIN_WALLTIMES.items():
        assert f"#SBATCH --time={walltime}\n" in (out / f"run_cpt_{run}.sbatch").read_text()
    submit_all = (out / "submit_all.sbatch.sh").read_text()
    line = submit_line(submit_all, "run_cpt_stochastok")
    assert re.search(
        r'sbatch --parsable --dependency=afterok:"\$merge_data_stochastok":"\$import_base_model",'
        r'afterany:"\$run_cpt_baseline" --kill-on-invalid-dep=yes \S+/run_cpt_stochastok\.sbatch\)',
        line,
    ), line
    assert '--dependency=afterok:"$merge_data_vanilla":"$import_base_model" ' in submit_line(
        submit_all, "run_cpt_baseline"
    )


def test_each_scheduler_combines_afterok_and_afterany_in_one_submission() -> None:
    pbs, slurm, sge, local = (get_scheduler(name) for name in ("pbs", "slurm", "sge", "local"))
    assert pbs.submit_line("c", "c", "c.pbs", ['"$a"'], None, after_any=['"$b"']) == (
        'c=$(qsub -W depend=afterok:"$a",afterany:"$b" c.pbs); echo "c: $c"'
    )
    assert pbs.submit_line("c", "c", "c.pbs", [], None, after_any=['"$b"']).startswith(
        'c=$(qsub -W depend=afterany:"$b" c.pbs)'
    )
    assert slurm.submit_line("c", "c", "c.sbatch", ['"$a"'], 4, after_any=['"$b"']) == (
        'c=$(sbatch --parsable --dependency=afterok:"$a",afterany:"$b" --kill-on-invalid-dep=yes c.sbatch);'
        ' echo "c: $c"'
    )
    # Nothing can be invalid in a chain link alone: a job that waits only its turn keeps Slurm's default.
    assert slurm.submit_line("c", "c", "c.sbatch", [], None, after_any=['"$b"']).startswith(
        'c=$(sbatch --parsable --dependency=afterany:"$b" c.sbatch)'
    )
    # -hold_jid already waits for the end, whatever the outcome.
    assert sge.submit_line("c", "c", "c.sge", ['"$a"'], None, after_any=['"$b"']).startswith(
        'c=$(qsub -terse -hold_jid "$a","$b" c.sge'
    )
    assert local.submit_line("c", "c", "c.sh", ['"$a"'], None, after_any=['"$b"']) == "bash c.sh"


def demo_with_capped(tmp_path: Path, entry: str, cap: int, **extra: object) -> Path:
    data = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    for stage in data["stages"]:
        if stage["name"] == entry:
            stage.update(max_concurrent=cap, **extra)
    return write_yaml(tmp_path / "experiment.yaml", data)


def test_a_cap_of_two_queues_the_third_run_behind_the_first(tmp_path: Path) -> None:
    graph = build_graph(load_experiment(demo_with_capped(tmp_path, "run_cpt", 2)))
    turns = {name: graph.jobs[name].turn_after for name in graph.entries["run_cpt"]}
    assert turns == {"run_cpt_baseline": (), "run_cpt_stochastok": (), "run_cpt_patok": ("run_cpt_baseline",)}
    # A turn is not a data dependency: the controller's upstream (and its blocking on failure) is `after`.
    assert graph.jobs["run_cpt_patok"].after == ("merge_data_patok",)
    assert "run_cpt_patok" not in graph.downstream({"run_cpt_baseline"})


def test_arrays_of_a_capped_entry_queue_so_the_cap_holds_across_them(tmp_path: Path) -> None:
    """Each array runs up to min(size, cap) tasks by its own %K; as many arrays as fit in the cap run together."""
    graph = build_graph(load_experiment(demo_with_capped(tmp_path, "preprocess_data", 2)))
    assert [graph.jobs[n].turn_after for n in graph.entries["preprocess_data"]] == [
        (),
        ("preprocess_data_vanilla",),
        ("preprocess_data_stochastok",),
    ]
    wide = build_graph(load_experiment(demo_with_capped(tmp_path, "preprocess_data", 8)))  # arrays of 4
    assert [wide.jobs[n].turn_after for n in wide.entries["preprocess_data"]] == [(), (), ("preprocess_data_vanilla",)]


def test_graph_text_shows_the_cap_the_turn_and_each_jobs_own_walltime() -> None:
    rows = {line.split()[0]: line for line in morphcpt("graph", "seapile-tl-cpt").stdout.splitlines()[1:]}
    assert "max 1 at once" in rows["run_cpt_stochastok"]
    assert rows["run_cpt_stochastok"].endswith("turn after: run_cpt_baseline; walltime=36:00:00")
    assert rows["preprocess_data_patok"].endswith("after: split_data; walltime=08:00:00")
    dot = morphcpt("graph", "seapile-tl-cpt", "--dot").stdout
    assert '"run_cpt_baseline" -> "run_cpt_stochastok" [style=dashed];' in dot


@pytest.fixture
def capped_controller(tmp_path: Path) -> Controller:
    experiment_path = demo_with_capped(tmp_path, "run_cpt", 1)
    profile_path = write_yaml(tmp_path / "profile.yaml", profile_data("pbs", queue="workq"))
    target = RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, tmp_path
    )
    store = StateStore(tmp_path / "runs/demo/state.db")
    backend = PBSBackend(target, tmp_path / "runs/demo/submitit")
    # A long backoff: a failed run waits, so whatever goes next went because the cap let it.
    made = Controller(target, store, backend, Policy(max_attempts=3, backoff_seconds=3600.0))
    made.register()
    return made


def test_the_controller_runs_one_capped_run_at_a_time_and_a_failed_one_does_not_hold_the_next(
    capped_controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    units: list[SubmitUnit] = []
    names: dict[str, str] = {}  # job id -> stage
    failed: set[str] = set()

    def submit(unit: SubmitUnit) -> tuple[str, list[str]]:
        units.append(unit)
        raw = f"{100 + len(units)}.pbs01"
        job_ids = [f"{raw}_{i}" for i in range(len(unit.specs))] if len(unit.specs) > 1 else [raw]
        names.update(dict.fromkeys(job_ids, unit.specs[0].job.name))
        return raw, job_ids

    def states(job_ids: list[str]) -> dict[str, JobState]:
        return {i: JobState(FAILED, 1, ended=time.time()) if names[i] in failed else JobState(PENDING) for i in job_ids}

    monkeypatch.setattr(capped_controller.backend, "submit", submit)
    monkeypatch.setattr(capped_controller.backend, "states", states)

    first = capped_controller.step().submitted
    runs = [name for name in first if name.startswith("run_cpt_")]
    assert runs == ["run_cpt_baseline"]  # the other two are held back, not queued behind it
    assert "export_baseline" in first  # native afterok on its queued run
    assert capped_controller.step().submitted == []  # baseline still queued: nobody else's turn

    failed.add("run_cpt_baseline")
    after_failure = capped_controller.step().submitted
    assert [name for name in after_failure if name.startswith("run_cpt_")] == ["run_cpt_stochastok"]
