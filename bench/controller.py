"""Controller speed on the real local Slurm and Grid Engine: time to submit the full default experiment, and
time of one status poll with ~1,000 jobs in the scheduler and the state store. PBS Pro (no local server): the
cost of one poll of ~1,000 jobs replayed from qstat output in the fixtures' format (tests/fixtures/pbs/),
parse + decide, for a server that answers in one json query, for OpenPBS master (json lists only the first
id: one dsv query from then on), and for the per-id fallback.

    .venv/bin/python bench/controller.py [--scheduler slurm|sge|pbs|both|all]   # both = slurm and sge

Jobs are submitted held (Slurm `--hold`, Grid Engine `-h`), so nothing runs; they are cancelled at the end.
Targets: submit under 5 s, one poll under 1 s. (The experiment's training runs on the CPU backend here, so that
the profile's zero GPUs fit its plan; the graph and the job count are the seed plan's.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from morphcpt.cluster.pbs import PBSBackend, pbs_id  # noqa: E402
from morphcpt.config import load_experiment, load_profile  # noqa: E402
from morphcpt.controller import open_controller  # noqa: E402
from morphcpt.controller.engine import Controller  # noqa: E402
from morphcpt.controller.executors import CommandResult, SubmitUnit  # noqa: E402
from morphcpt.controller.state import StateStore  # noqa: E402
from morphcpt.controller.status import stage_rows  # noqa: E402
from morphcpt.render.scripts import RenderTarget  # noqa: E402

PBS_FIXTURE = REPO / "tests/fixtures/pbs/qstat_json_three_ids_master.yaml"


def _port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _submit(root: Path, name: str, chunks: int, scheduler: str) -> tuple[float, int, object]:
    experiment = yaml.safe_load((REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text())
    experiment["name"] = name
    experiment["data"]["num_chunks"] = chunks
    experiment["training"]["backend"] = "cpu"
    profile = yaml.safe_load((REPO / "configs/clusters/local-slurm.yaml").read_text())
    profile["python"] = sys.executable
    if scheduler == "sge":
        profile.update(name="local-sge", scheduler="sge", queue=None, extra_directives=["-h"])
    else:
        profile["extra_directives"] = ["--hold"]
    exp_path = _write(root / f"{name}.yaml", experiment)
    prof_path = _write(root / "profile.yaml", profile)
    start = time.perf_counter()
    controller = open_controller(str(exp_path), str(prof_path), root)
    controller.select(None)
    report = controller.step()
    elapsed = time.perf_counter() - start
    jobs = sum(1 for row in controller.store.tasks() if row.job_id)
    assert not report.failed, report.stopped
    return elapsed, jobs, controller


def _measure(root: Path, scheduler: str) -> None:
    seconds, jobs, controller = _submit(root, "bench-default", 20, scheduler)
    submissions = len(controller.store.db.execute("SELECT token FROM submissions").fetchall())
    print(
        f"{scheduler}: submit, default experiment (3 x 20 arrays + the rest): {seconds:.2f} s "
        f"for {submissions} submissions, {jobs} jobs  [target < 5 s]"
    )
    controller.cancel()
    controller.lock.release()
    _, jobs, big = _submit(root, "bench-1000", 325, scheduler)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        big.poll()
        stage_rows(big)
        times.append(time.perf_counter() - start)
    print(
        f"{scheduler}: status poll with {jobs} jobs in the store and the scheduler: median "
        f"{statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f})  [target < 1 s]"
    )
    big.cancel()
    big.lock.release()


def _slurm(root: Path) -> None:
    cluster = root / "slurm"
    env = {**os.environ, "MORPHCPT_SLURMCTLD_PORT": _port(), "MORPHCPT_SLURMD_PORT": _port()}
    script = str(REPO / "tests/cluster/local_slurm.sh")
    subprocess.run(["bash", script, "start", str(cluster), "8"], check=True, env=env, stdout=subprocess.DEVNULL)
    os.environ["SLURM_CONF"] = str(cluster / "slurm.conf")
    try:
        _measure(root / "slurm-work", "slurm")
    finally:
        subprocess.run(["bash", script, "stop", str(cluster)], check=False, stdout=subprocess.DEVNULL)


def _sge(root: Path) -> None:
    cluster = root / "sge"
    env = {**os.environ, "MORPHCPT_SGE_QMASTER_PORT": _port(), "MORPHCPT_SGE_EXECD_PORT": _port()}
    script = str(REPO / "tests/cluster/local_gridengine.sh")
    started = subprocess.run(["bash", script, "start", str(cluster), "8"], check=True, env=env, capture_output=True,
                             text=True)  # fmt: skip
    for name, value in re.findall(r"^export (\w+)=(.*)$", started.stdout, re.MULTILINE):
        os.environ[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    try:
        _measure(root / "sge-work", "sge")
    finally:
        subprocess.run(["bash", script, "stop", str(cluster)], check=False, env=env, stdout=subprocess.DEVNULL)


class ReplayedPBS:
    """qstat for the benchmark: answers from one table of jobs in the fixtures' format (json or dsv), as a
    server that lists every id (`first_only=False`), as OpenPBS master whose json lists only the first, or
    as one whose batched answers are lost (`batch=False`: every id must be asked for alone)."""

    def __init__(self, jobs: dict[str, dict], first_only: bool = False, batch: bool = True) -> None:
        self.jobs, self.first_only, self.batch, self.calls = jobs, first_only, batch, 0
        head = yaml.safe_load(PBS_FIXTURE.read_text())["stdout"]
        self.prologue = {k: v for k, v in json.loads(head).items() if k != "Jobs"}

    def _listed(self, ids: list[str]) -> dict[str, dict]:
        found = {}
        for asked in ids:
            number = asked.split("[")[0].split(".")[0]
            found |= {k: v for k, v in self.jobs.items() if k.split("[")[0].split(".")[0] == number}
        return found

    def __call__(self, argv: list[str]) -> CommandResult:
        self.calls += 1
        output, ids = argv[argv.index("-F") + 1], argv[argv.index("-t") + 1 :]
        if not self.batch and len(ids) > 1:
            return CommandResult(argv, 0, json.dumps(self.prologue), "")
        listed = self._listed(ids[:1] if self.first_only and output == "json" else ids)
        if output == "json":
            text = json.dumps(self.prologue | {"Jobs": listed}, indent="\t", separators=(",", ":\t"))
        else:
            text = "\n".join(
                "|".join([f"Job Id: {job_id}", *(f"{k}={v}" for k, v in fields.items() if not isinstance(v, dict))])
                for job_id, fields in listed.items()
            )
        return CommandResult(argv, 0, text + "\n", "")


def _pbs_controller(root: Path, chunks: int) -> tuple[Controller, dict[str, dict]]:
    """The 1,000-job experiment with every task recorded as submitted (one array per stage), and the qstat
    table a PBS server would hold for them (a third running, the rest queued)."""
    experiment = yaml.safe_load((REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text())
    experiment.update(name="bench-pbs")
    experiment["data"]["num_chunks"] = chunks
    experiment["training"]["backend"] = "cpu"
    profile = yaml.safe_load((REPO / "configs/clusters/local-slurm.yaml").read_text())
    profile.update(name="bench-pbs", scheduler="pbs", queue="workq", python=sys.executable, project="bench")
    exp_path, prof_path = _write(root / "bench-pbs.yaml", experiment), _write(root / "pbs.yaml", profile)
    target = RenderTarget.create(load_profile(prof_path), prof_path, load_experiment(exp_path), exp_path, root)
    store = StateStore(root / "runs/bench-pbs/state.db")
    controller = Controller(target, store, PBSBackend(target, root / "runs/bench-pbs/submitit"))
    controller.register()
    template = json.loads(yaml.safe_load(PBS_FIXTURE.read_text())["stdout"])["Jobs"]["101.pbs01"]
    jobs: dict[str, dict] = {}
    for number, job in enumerate(controller.jobs.values(), start=1000):
        tasks = list(job.tasks())
        base = f"{number}.pbs01"
        ids = [base] if len(tasks) == 1 else [f"{base}_{i}" for i in range(len(tasks))]
        token = f"b{number}"
        store.begin_submission(token, job.name, {t: 1 for t in tasks}, f"{job.name}.{token}", [])
        store.finish_submission(token, base, ids, ["none.log"] * len(ids))
        for index, job_id in enumerate(ids):
            running = index % 3 == 0
            fields = template | {"Job_Name": f"{job.name}.{token}", "job_state": "R" if running else "Q"}
            jobs[pbs_id(job_id)] = fields if running else {k: v for k, v in fields.items() if k != "stime"}
        if len(ids) > 1:
            jobs[f"{number}[].pbs01"] = template | {"job_state": "B", "array": True}
    return controller, jobs


def _pbs(root: Path) -> None:
    controller, jobs = _pbs_controller(root / "pbs-work", 325)
    tasks = sum(1 for row in controller.store.tasks() if row.job_id)
    backend = controller.backend
    assert isinstance(backend, PBSBackend)

    def refuse(unit: SubmitUnit) -> tuple[str, list[str]]:
        raise AssertionError(f"the benchmark's poll submitted {unit.job_name}")

    backend.submit = refuse  # type: ignore[method-assign]
    for label, replay in (
        ("server answering in one json query", ReplayedPBS(jobs)),
        ("OpenPBS master, json lists only the first id (then dsv)", ReplayedPBS(jobs, first_only=True)),
        ("per-id fallback (batched answers lost)", ReplayedPBS(jobs, batch=False)),
    ):
        backend.run, backend.batch_format = replay, "json"
        times, calls = [], []
        for _ in range(5):
            replay.calls = 0
            start = time.perf_counter()
            controller.step()  # poll (qstat + parse) and every task's decision
            times.append(time.perf_counter() - start)
            calls.append(replay.calls)
        print(
            f"pbs: poll + decide, {tasks} jobs, {label}: median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}); qstat calls per poll: first {calls[0]}, "
            f"then {calls[-1]}  [target < 1 s, not counting qstat's own run time]"
        )
    controller.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", choices=["slurm", "sge", "pbs", "both", "all"], default="both")
    chosen = parser.parse_args().scheduler
    with tempfile.TemporaryDirectory(prefix="morphcpt-bench-") as tmp:
        root = Path(tmp)
        for name, run in (("slurm", _slurm), ("sge", _sge), ("pbs", _pbs)):
            if chosen in (name, "all") or (chosen == "both" and name != "pbs"):
                (root / f"{name}-work").mkdir()
                run(root)


if __name__ == "__main__":
    main()
