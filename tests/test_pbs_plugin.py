"""The PBS Pro submitit plugin without a PBS server: qstat JSON parsing, exact qsub command lines, the rendered
controller script, and the job side run by bash with PBS's environment variables.

The qstat documents below follow the shape PBS Pro (2021-2024) prints for `qstat -x -f -F json -t`: a
top-level "Jobs" object keyed by job id, subjobs as `NNN[i].server`, Exit_status only once a job ran. The
behaviour of real servers (unknown ids, json that drops ids, qdel's exit 0, walltime kills, deleted
dependents, qsub's refusals) is replayed from their exact output in test_pbs_facts.py.
Not covered, to be confirmed on a real PBS Pro server: qsub's acceptance of the whole script (-W depend on
an array parent) and qselect -x -N for adoption.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, profile_data, write_yaml
from morphcpt.cluster.pbs import (
    PBSBackend,
    PBSExecutor,
    PBSJobEnvironment,
    job_state,
    parse_qstat_json,
    pbs_id,
    submitit_id,
)
from morphcpt.config import load_experiment, load_profile
from morphcpt.controller.executors import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, TIMEOUT, SubmitUnit
from morphcpt.controller.tasks import task_spec
from morphcpt.graph import build_graph
from morphcpt.render.scripts import RenderTarget

QSTAT = {
    "timestamp": 1763900000,
    "pbs_version": "2022.1.1",
    "pbs_server": "pbs01",
    "Jobs": {
        "1200.pbs01": {"Job_Name": "split_data.ab12", "job_state": "Q", "queue": "normal"},
        "1201.pbs01": {"Job_Name": "merge.cd34", "job_state": "H", "queue": "normal"},
        "1202.pbs01": {"Job_Name": "train.ef56", "job_state": "R", "stime": "Mon Nov 23 10:00:00 2026"},
        "1203.pbs01": {
            "Job_Name": "export.a1",
            "job_state": "F",
            "Exit_status": 0,
            "stime": "Mon Nov 23 10:00:00 2026",
            "obittime": "Mon Nov 23 10:05:00 2026",
        },
        "1204.pbs01": {"Job_Name": "train.a2", "job_state": "F", "Exit_status": 3, "comment": "Job run at ..."},
        "1205.pbs01": {
            "Job_Name": "train.a3",
            "job_state": "F",
            "Exit_status": -29,
            "comment": "job killed: walltime 86410 exceeded limit 86400",
        },
        "1206.pbs01": {"Job_Name": "eval.a4", "job_state": "F", "Exit_status": 271},
        "1207.pbs01": {"Job_Name": "eval.a5", "job_state": "F", "comment": "Job deleted by user"},
        "1208[].pbs01": {"Job_Name": "preprocess.a6", "job_state": "B", "array": True},
        "1208[0].pbs01": {"Job_Name": "preprocess.a6", "job_state": "X", "Exit_status": 0},
        "1208[1].pbs01": {"Job_Name": "preprocess.a6", "job_state": "R"},
        "1208[2].pbs01": {"Job_Name": "preprocess.a6", "job_state": "X", "Exit_status": 1},
        "1209.pbs01": {"Job_Name": "x", "job_state": "F", "Exit_status": -3, "comment": "could not run"},
    },
}


def test_qstat_json_states_and_exit_statuses() -> None:
    jobs = parse_qstat_json(json.dumps(QSTAT))
    expected = {
        "1200.pbs01": (PENDING, None),
        "1201.pbs01": (PENDING, None),
        "1202.pbs01": (RUNNING, None),
        "1203.pbs01": (COMPLETED, 0),
        "1204.pbs01": (FAILED, 3),
        "1205.pbs01": (TIMEOUT, -29),
        "1206.pbs01": (CANCELLED, 143),
        "1207.pbs01": (CANCELLED, None),
        "1208.pbs01": (RUNNING, None),
        "1208.pbs01_0": (COMPLETED, 0),
        "1208.pbs01_1": (RUNNING, None),
        "1208.pbs01_2": (FAILED, 1),
        "1209.pbs01": (FAILED, -3),
    }
    got = {job_id: (job_state(fields).state, job_state(fields).exit_code) for job_id, fields in jobs.items()}
    assert got == expected
    assert job_state(jobs["1203.pbs01"]).ended - job_state(jobs["1203.pbs01"]).started == 300
    assert "walltime" in job_state(jobs["1205.pbs01"]).reason
    # PBS sometimes writes raw control characters inside strings; the parser tolerates them.
    assert parse_qstat_json('{"Jobs": {"1.s": {"job_state": "Q", "comment": "a\tb"}}}')["1.s"]["job_state"] == "Q"


def test_job_ids_between_pbs_and_submitit() -> None:
    assert submitit_id("1234[7].pbs01") == "1234.pbs01_7"
    assert submitit_id("1234[].pbs01") == "1234.pbs01"
    assert submitit_id("1234.pbs01") == "1234.pbs01"
    assert pbs_id("1234.pbs01_7") == "1234[7].pbs01"
    assert pbs_id("1234.pbs01_7", parent=True) == "1234[].pbs01"
    assert pbs_id("99", parent=True) == "99"
    assert PBSExecutor._get_job_id_from_submission_command("1235[].pbs01\n") == "1235[].pbs01"
    with pytest.raises(RuntimeError, match="qsub"):
        PBSExecutor._get_job_id_from_submission_command("qsub: Unknown queue")


def _target(tmp_path: Path, **experiment_changes: object) -> RenderTarget:
    profile_path = write_yaml(tmp_path / "pbs.yaml", profile_data("pbs", queue="normal"))
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    experiment["evaluation"].update(experiment_changes)
    experiment_path = write_yaml(tmp_path / "experiment.yaml", experiment)
    return RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, tmp_path
    )


def test_qsub_command_line_and_array_script(tmp_path: Path) -> None:
    target = _target(tmp_path)
    backend = PBSBackend(target, tmp_path / "runs/demo/submitit")
    job = build_graph(target.experiment).jobs["preprocess_data_vanilla"]
    specs = [task_spec(target.context, job, chunk) for chunk in (1, 2, 3, 4)]
    unit = SubmitUnit(specs, token="tok1", depends=["1234[].pbs01", "1240.pbs01"])
    assert backend.submission_command(unit, "s.pbs") == [
        "qsub",
        "-W",
        "depend=afterok:1234[].pbs01:1240.pbs01",
        "s.pbs",
    ]
    script = backend.script(unit).splitlines()
    assert "#PBS -N preprocess_data_vanilla.tok1" in script
    assert "#PBS -J 0-3" in script and "#PBS -r y" in script and "#PBS -P testproj" in script
    assert f"#PBS -o {tmp_path}/logs/preprocess_data_vanilla/tok1.^array_index^.log" in script
    assert "export SUBMITIT_EXECUTOR=pbs" in script
    assert any(line.endswith("-u -m submitit.core._submit runs/demo/submitit") for line in script)
    assert not any("CHUNK=" in line for line in script)  # each task's chunk is in its own pickle
    single = SubmitUnit(specs[:1], token="tok2")
    text = backend.script(single)
    assert "#PBS -J" not in text  # PBS Pro rejects a one-subjob array
    assert backend.submission_command(single, "s.pbs") == ["qsub", "s.pbs"]


def test_plugin_is_registered_with_submitit() -> None:
    from submitit.core.plugins import get_executors, get_job_environments

    assert get_executors()["pbs"] is PBSExecutor
    assert isinstance(get_job_environments()["pbs"], PBSJobEnvironment)
    standalone = PBSExecutor("/tmp/unused")
    standalone.update_parameters(job_name="probe", ncpus=2, walltime="00:10:00", queue="short")
    text = standalone._make_submission_file_text("python3 -u -m submitit.core._submit /f", "uid")
    assert "#PBS -l select=1:ncpus=2:mem=4gb" in text and "#PBS -q short" in text
    assert text.rstrip().endswith("python3 -u -m submitit.core._submit /f")
    assert standalone.python == sys.executable  # not whatever python3 the node's PATH finds first


def test_array_task_environment_gives_submitit_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "pbs")
    monkeypatch.setenv("PBS_JOBID", "1208[2].pbs01")
    monkeypatch.setenv("PBS_ARRAY_ID", "1208[].pbs01")
    monkeypatch.setenv("PBS_ARRAY_INDEX", "2")
    env = PBSJobEnvironment()
    assert env.job_id == "1208.pbs01_2" and env.global_rank == 0 and env.num_tasks == 1


def test_rendered_job_runs_its_stage_under_bash_with_pbs_variables(tmp_path: Path) -> None:
    """The job side end to end: the controller's PBS script, its pickle, submitit's entry point, the stage."""
    target = _target(tmp_path, items_per_suite=5)
    backend = PBSBackend(target, tmp_path / "runs/demo/submitit")
    job = next(j for j in build_graph(target.experiment) if j.kind == "benchmarks")
    unit = SubmitUnit([task_spec(target.context, job, 0)], token="tok3")
    executor = backend._prepared(unit)
    script = tmp_path / "job.pbs"
    script.write_text(backend.script(unit))
    executor.write_pickles("77.pbs01")
    env = {**os.environ, "PBS_JOBID": "77.pbs01", "PBS_O_WORKDIR": str(tmp_path)}
    env.pop("SLURM_JOB_ID", None)
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job 77.pbs01" in result.stdout
    assert (tmp_path / "data/demo/benchmarks/manifest.json").exists()
    assert (tmp_path / "runs/demo/submitit/77.pbs01_0_result.pkl").exists()
    assert sys.executable in script.read_text()
