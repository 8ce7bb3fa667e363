"""Tasks report their own progress; `status` shows it while they run, and `watch` without a terminal prints one
line per change instead of reprinting the table.

The stage is a plugin made here (a module plus a dist-info with its `morphcpt.stages` entry point, found by
importlib.metadata like any installed package); it reports 4 of 10 items, then waits for a gate file, so the
test sees the report of a task that is really running under the controller (local profile)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from conftest import REPO, profile_data, write_yaml
from morphcpt.progress import Reporter, TaskProgress, combined, read_progress, task_reporter

PLUGIN = """
import time
from pathlib import Path

from morphcpt.data.markers import marker_path, write_json_atomic, write_marker
from morphcpt.progress import task_reporter
from morphcpt.stages import Stage, StageParams
from morphcpt.stages.base import marker_completion


class SlowItemsParams(StageParams):
    gate: str = "gate"


class SlowItems(Stage):
    name = "slow_items"
    Params = SlowItemsParams

    def outputs(self, ctx, job):
        return [ctx.layout.resolve("slow_items.json")]

    def marker(self, ctx, job, task):
        return marker_path(self.outputs(ctx, job)[0])

    def fingerprint(self, ctx, job, task):
        return {"gate": job.params["gate"]}

    def run(self, ctx, job, task):
        reporter = task_reporter(task, "items", total=10, interval=0)
        for item in range(1, 5):
            reporter.update(item)
        while not Path(job.params["gate"]).exists():
            time.sleep(0.2)
        for item in range(5, 11):
            reporter.update(item)
        reporter.finish()
        out = self.outputs(ctx, job)[0]
        write_json_atomic(out, {"items": 10})
        write_marker(out, [out], self.fingerprint(ctx, job, task))
        return 0
"""


def _plugin_site(site: Path) -> Path:
    site.mkdir()
    (site / "morphcpt_slowitems.py").write_text(PLUGIN)
    info = site / "morphcpt_slowitems-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: morphcpt-slowitems\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[morphcpt.stages]\nslow_items = morphcpt_slowitems:SlowItems\n")
    return site


def _morphcpt(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "morphcpt", *args], cwd=root, capture_output=True, text=True, timeout=600, env=env
    )


def _row(root: Path, env: dict[str, str]) -> dict[str, object]:
    shown = _morphcpt(root, "status", "experiment.yaml", "--json", env=env)
    if "has not been submitted" in shown.stderr:
        return {}  # the submission beside the test has not written its state yet
    assert shown.returncode == 0, shown.stderr
    return next(r for r in json.loads(shown.stdout)["stages"] if r["stage"] == "slow")


def test_status_shows_what_a_running_task_reports_and_watch_prints_one_line_per_change(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(_plugin_site(tmp_path / "site"))}
    env.pop("FORCE_COLOR", None)
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    gate = tmp_path / "gate"
    experiment["stages"] = [{"name": "slow", "uses": "slow_items", "params": {"gate": str(gate)}}]
    write_yaml(tmp_path / "experiment.yaml", experiment)
    write_yaml(tmp_path / "profile.yaml", profile_data("local"))

    # The local profile's submit watches its own jobs (they are its children): run it beside the test.
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "morphcpt", "submit", "experiment.yaml", "-p", "profile.yaml", "--interval", "0.5"],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        deadline = time.monotonic() + 300  # a generous bound for a loaded machine; progress is what is asserted
        row: dict[str, object] = {}
        # The watcher records "running" at its next poll; status (read-only beside it) shows what it recorded.
        wanted = ("running", "4/10 items")
        while (
            (row.get("state"), row.get("progress")) != wanted and time.monotonic() < deadline and watcher.poll() is None
        ):
            time.sleep(0.5)
            row = _row(tmp_path, env)
        assert row["state"] == "running" and row["progress"] == "4/10 items", log.read_text()
        assert row["done"] == 0  # a report is not a completion
        gate.touch()
        assert watcher.wait(timeout=600) == 0, log.read_text()
    finally:
        watcher.kill()
    out_text = log.read_text()
    # The table once (the first view), then lines: no table reprinted per change.
    assert out_text.count("┃ stage") == 1, out_text
    assert "slow: running, 0/1 tasks done, attempt 1" in out_text
    assert "slow: done, 1/1 tasks done" in out_text
    # A finished task's report stays on disk, but status shows no progress for a done stage.
    assert read_progress(tmp_path / "runs/demo/progress/slow.0.json") == TaskProgress(
        10,
        10,
        "items",
        read_progress(tmp_path / "runs/demo/progress/slow.0.json").updated,  # type: ignore[union-attr]
    )
    assert _row(tmp_path, env)["progress"] == ""


def test_reporter_writes_at_its_interval_and_nothing_outside_a_job(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p" / "job.3.json"
    reporter = Reporter(path, "documents", total=100, interval=3600)
    reporter.update(1)  # the first report is written at once
    reporter.update(50)  # within the interval: not written
    assert read_progress(path).done == 1  # type: ignore[union-attr]
    reporter.finish()
    assert read_progress(path).done == 50  # type: ignore[union-attr]
    assert not list(path.parent.glob(".*tmp*"))

    monkeypatch.delenv("MORPHCPT_JOB_NAME", raising=False)
    monkeypatch.setenv("MORPHCPT_PROGRESS_DIR", str(tmp_path / "q"))
    task_reporter(1, "steps", 10, interval=0).update(5)
    assert not (tmp_path / "q").exists()
    monkeypatch.setenv("MORPHCPT_JOB_NAME", "train_x")
    task_reporter(1, "steps", 10, interval=0).update(5)
    assert read_progress(tmp_path / "q" / "train_x.1.json").text() == "5/10 steps"  # type: ignore[union-attr]

    a, b = TaskProgress(3, 10, "documents", 1.0), TaskProgress(4, 20, "documents", 2.0)
    assert combined([a, b]) == TaskProgress(7, 30, "documents", 2.0)
    assert combined([a, TaskProgress(4, None, "documents", 2.0)]).total is None  # type: ignore[union-attr]
    assert read_progress(tmp_path / "missing.json") is None
