"""A job's own log: the prologue tees the job's output to `<log>.job.log` on the shared filesystem while it runs,
and `morphcpt logs` shows it (PBS Pro writes the -o file only when the job ends).

Rendered scripts run under bash with the environment the scheduler sets. Stand-ins, not covered here: qsub and
qstat are small fakes (no PBS server on these machines), and the MoM's spool is a file this test writes the
job's stdout to and copies to the -o path after the job ends, as the MoM's stage-out would; whether a real
MoM holds the output back, and where a site's spool lives, is not tested.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import morphcpt, profile_data, replace_body, write_yaml

# A body that prints, then blocks until the test creates `release` in the workdir, then prints again.
BLOCKING_BODY = (
    'echo "partial output of subjob $PBS_ARRAY_INDEX"\n'
    'echo "a warning on stderr" >&2\n'
    'while [[ ! -e "$MORPHCPT_WORKDIR/release" ]]; do sleep 0.1; done\n'
    'echo "after the release"\n'
)


def _tool(directory: Path, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll for a state (never assert on elapsed time); the timeout only stops a hung test."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout} s")
        time.sleep(0.05)


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PBS_", "SLURM_", "SGE_", "MORPHCPT_"))}


# qsub: refuses a script whose -o directory is missing (so the test sees that the controller made it before
# submitting), keeps a copy of each script and prints PBS Pro's ids (`N[].pbs01` for an array).
FAKE_QSUB = """#!/usr/bin/env python3
import json, os, re, sys
from pathlib import Path
state = Path(os.environ["FAKE_PBS"])
script = Path(sys.argv[-1]).read_text()
log = re.search(r"^#PBS -o (.*)$", script, re.M).group(1)
if not Path(log).parent.is_dir():
    sys.exit(f"qsub: the -o directory {Path(log).parent} does not exist")
number = len(list(state.glob("*.pbs"))) + 1
(state / f"{number}.pbs").write_text(script)
array = re.search(r"^#PBS -J (\\d+)-(\\d+)", script, re.M)
jobs = json.loads((state / "jobs.json").read_text()) if (state / "jobs.json").exists() else {}
if array:
    job_id = f"{number}[].pbs01"
    jobs[job_id] = [f"{number}[{i}].pbs01" for i in range(int(array[1]), int(array[2]) + 1)]
else:
    job_id = f"{number}.pbs01"
    jobs[job_id] = []
(state / "jobs.json").write_text(json.dumps(jobs))
print(job_id)
"""

# qstat -x -f -F json -t IDS: every job queued, unless states.json (written by the test) says otherwise.
FAKE_QSTAT = """#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
state = Path(os.environ["FAKE_PBS"])
jobs = json.loads((state / "jobs.json").read_text())
override = json.loads((state / "states.json").read_text()) if (state / "states.json").exists() else {}
out = {}
for job_id in sys.argv[1:]:
    for listed in [job_id, *jobs.get(job_id, [])]:
        out[listed] = override.get(listed, {"job_state": "Q"})
print(json.dumps({"pbs_server": "pbs01", "Jobs": out}))
"""


def _pbs_job_environment(job_id: str, array_id: str, index: int, workdir: Path, nodefile: Path) -> dict[str, str]:
    """What PBS Pro sets for a subjob (the MoM also starts it in $HOME, not in the submission directory)."""
    return {
        "PBS_JOBID": job_id,
        "PBS_ARRAY_ID": array_id,
        "PBS_ARRAY_INDEX": str(index),
        "PBS_JOBNAME": "preprocess_data_vanilla",
        "PBS_O_WORKDIR": str(workdir),
        "PBS_NODEFILE": str(nodefile),
        "PBS_ENVIRONMENT": "PBS_BATCH",
        "PBS_QUEUE": "normal",
        "PBS_TASKNUM": "1",
        "PBS_NODENUM": "0",
        "PBS_JOBDIR": str(workdir / "home"),
        "TMPDIR": str(workdir / "tmp"),
        "HOME": str(workdir / "home"),
    }


def test_logs_shows_a_running_pbs_jobs_output_and_the_delivered_log_once_it_ended(tmp_path: Path) -> None:
    state, bin_dir = tmp_path / "fake-pbs", tmp_path / "bin"
    state.mkdir()
    _tool(bin_dir, "qsub", FAKE_QSUB)
    _tool(bin_dir, "qstat", FAKE_QSTAT)
    _tool(bin_dir, "qdel", "#!/bin/sh\nexit 0\n")
    env = {**_clean_environment(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_PBS": str(state)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "morphcpt", *args, "--workdir", str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    profile = write_yaml(tmp_path / "pbs.yaml", profile_data("pbs", queue="normal"))
    cli("submit", "demo", "--profile", str(profile), "--stage", "preprocess_data_vanilla")

    # The controller's script for the stage's 4 chunks: subjobs 0-3, subjob 2 is chunk 3.
    number, script_text = next(
        (p.stem, p.read_text()) for p in state.glob("*.pbs") if "#PBS -N preprocess_data_vanilla." in p.read_text()
    )
    assert "#PBS -J 0-3" in script_text
    scheduler_log = Path(script_text.split("#PBS -o ", 1)[1].splitlines()[0].replace("^array_index^", "2"))
    script = tmp_path / "subjob.pbs"
    script.write_text(script_text)
    replace_body(script, BLOCKING_BODY)
    home, spool = tmp_path / "home", tmp_path / "spool"
    for directory in (home, spool, tmp_path / "tmp"):
        directory.mkdir()
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("cn042\n")
    job_id = f"{number}[2].pbs01"
    job_env = {**_clean_environment(), **_pbs_job_environment(job_id, f"{number}[].pbs01", 2, tmp_path, nodefile)}
    # PBS Pro (-j oe) writes the running job's output to its spool on the compute node, not to the -o path.
    spooled = spool / f"{job_id}.OU"
    with spooled.open("w") as out:
        job = subprocess.Popen(["bash", str(script)], stdout=out, stderr=subprocess.STDOUT, cwd=home, env=job_env)
    try:
        own_log = scheduler_log.with_name(scheduler_log.name.removesuffix(".log") + ".job.log")
        _wait_for(lambda: own_log.exists() and "partial output of subjob 2" in own_log.read_text(), "the job's output")
        assert job.poll() is None and not scheduler_log.exists()

        shown = cli("logs", "demo", "preprocess_data_vanilla", "--task", "3").stdout
        assert f"==> {own_log} (task 3, attempt 1, PENDING) <==" in shown
        assert "partial output of subjob 2" in shown and "a warning on stderr" in shown
        assert "after the release" not in shown

        (tmp_path / "release").touch()
        assert job.wait(timeout=60) == 0
    finally:
        if job.poll() is None:
            job.kill()
    # Every line once in each file: the tee's copy is a file of its own.
    for path in (own_log, spooled):
        text = path.read_text()
        assert text.count("partial output of subjob 2") == 1 and text.count("after the release") == 1, path
        assert "[morphcpt] preprocess_data_vanilla exit status 0" in text

    # The job ended: the MoM delivers its spool to the -o path, qstat says F, and logs shows that file, which
    # also holds what PBS itself writes there.
    shutil.copy(spooled, scheduler_log)
    with scheduler_log.open("a") as log:
        log.write("=>> PBS: job epilogue message\n")
    (state / "states.json").write_text(json.dumps({job_id: {"job_state": "F", "Exit_status": 0}}))
    cli("status", "demo")
    shown = cli("logs", "demo", "preprocess_data_vanilla", "--task", "3").stdout
    assert f"==> {scheduler_log} (task 3, attempt 1, " in shown
    assert "after the release" in shown and "=>> PBS: job epilogue message" in shown

    # Output PBS could not deliver (its directory was gone): logs falls back to the job's own log, and says so.
    scheduler_log.unlink()
    shown = cli("logs", "demo", "preprocess_data_vanilla", "--task", "3").stdout
    assert f"==> {own_log} (task 3, attempt 1, " in shown and "the scheduler's log" in shown
    assert "after the release" in shown


def render(tmp_path: Path, profile: dict, job: str, experiment: str = "seapile-tl-cpt") -> Path:
    profile_path = write_yaml(tmp_path / "profile.yaml", profile)
    out = tmp_path / "jobs"
    morphcpt(
        "render", "-p", str(profile_path), "-e", experiment, "--out", str(out), "--workdir", str(tmp_path), "--job", job
    )
    return next(out.glob(f"{job}.*"))


def _run(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env={**_clean_environment(), **env}, cwd=cwd, timeout=60
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('echo "before the failure"; echo "oops" >&2; exit 7', 7),
        ('echo "before the failure"; echo "oops" >&2; false; echo "not reached"', 1),
    ],
)
def test_a_failing_body_still_fails_through_the_tee(tmp_path: Path, body: str, status: int) -> None:
    script = render(tmp_path, profile_data("pbs"), "split_data")
    replace_body(script, body)
    result = _run(script, {"PBS_JOBID": "12.pbs01"}, cwd=tmp_path)
    assert result.returncode == status, result.stdout + result.stderr
    # The streams stay apart (a hand run in a terminal, a scheduler without -j oe), and both reach the log.
    assert "before the failure" in result.stdout and "oops" in result.stderr and "oops" not in result.stdout
    log = (tmp_path / "logs/split_data.job.log").read_text()
    assert "before the failure" in log and "oops" in log and "not reached" not in log
    assert f"[morphcpt] split_data exit status {status}" in log


def test_a_job_stopping_on_sigterm_logs_its_last_lines(tmp_path: Path) -> None:
    """The scheduler signals the whole job (PBS Pro: its session) at qdel or walltime; the tee must outlive
    the signal so that the job's own shutdown messages are logged and it does not die of SIGPIPE."""
    script = render(tmp_path, profile_data("pbs"), "split_data")
    replace_body(
        script,
        "trap 'echo \"stopping on SIGTERM, checkpoint saved\"; exit 143' TERM\n"
        'echo "started"\nwhile :; do sleep 0.1; done',
    )
    log = tmp_path / "logs/split_data.job.log"
    job = subprocess.Popen(
        ["bash", str(script)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**_clean_environment(), "PBS_JOBID": "13.pbs01"},
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: log.exists() and "started" in log.read_text(), "the job to start")
        os.killpg(job.pid, signal.SIGTERM)
        assert job.wait(timeout=60) == 143
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    text = log.read_text()
    assert "stopping on SIGTERM, checkpoint saved" in text and "exit status 143" in text


@pytest.mark.parametrize("scheduler", ["pbs", "slurm", "sge", "local"])
def test_the_jobs_own_log_is_not_the_schedulers_file(tmp_path: Path, scheduler: str) -> None:
    """Where the scheduler writes -o while the job runs (Slurm, Grid Engine, the local executor), the tee
    writes another file, so no line is doubled in either; an array task's copy is named by its chunk."""
    from morphcpt.cluster import get_scheduler

    script = render(tmp_path, profile_data(scheduler), "preprocess_data_patok")
    replace_body(script, 'echo "body line of chunk $CHUNK"')
    env = {
        "pbs": {"PBS_JOBID": "21[5].pbs01", "PBS_ARRAY_INDEX": "5"},
        "slurm": {"SLURM_JOB_ID": "88", "SLURM_ARRAY_JOB_ID": "80", "SLURM_ARRAY_TASK_ID": "5"},
        "sge": {"JOB_ID": "31", "SGE_TASK_ID": "5"},
        "local": {"MORPHCPT_TASK_INDEX": "5"},
    }[scheduler]
    pattern = get_scheduler(scheduler).log_path(tmp_path / "logs", "preprocess_data_patok", scheduler != "local")
    for placeholder, value in {"^array_index^": "5", "%A": "80", "%a": "5", "$JOB_ID": "31", "$TASK_ID": "5"}.items():
        pattern = pattern.replace(placeholder, value)
    scheduler_log = Path(pattern)
    scheduler_log.parent.mkdir(parents=True, exist_ok=True)
    with scheduler_log.open("w") as out:
        result = subprocess.run(
            ["bash", str(script)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_clean_environment(), **env},
            cwd=tmp_path,
        )
    assert result.returncode == 0, scheduler_log.read_text()
    own_log = tmp_path / "logs/preprocess_data_patok.5.job.log"
    assert own_log != scheduler_log
    for path in (own_log, scheduler_log):
        assert path.read_text().count("body line of chunk 5") == 1, path.read_text()


def test_submit_all_makes_the_log_directories_before_submitting(tmp_path: Path) -> None:
    profile = profile_data("pbs", paths={"logs": "logs/nested"})
    profile_path = write_yaml(tmp_path / "profile.yaml", profile)
    out = tmp_path / "jobs"
    morphcpt("render", "-p", str(profile_path), "-e", "demo", "--out", str(out), "--workdir", str(tmp_path))
    shutil.rmtree(tmp_path / "logs")
    bin_dir = tmp_path / "bin"
    # qsub refuses when the -o directory is missing, which real PBS Pro notices only at the job's end.
    check = 'log=$(sed -n "s/^#PBS -o //p" "${@: -1}"); [[ -d "${log%/*}" ]] || { echo "no ${log%/*}" >&2; exit 1; }'
    _tool(bin_dir, "qsub", f'#!/bin/bash\n{check}\necho "$RANDOM.pbs01"\n')
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(out / "submit_all.pbs.sh")], capture_output=True, text=True, env={**_clean_environment(), **env}
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "logs/nested").is_dir()
