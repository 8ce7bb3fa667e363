"""`morphcpt submit | status | watch | cancel | logs | retry`: the controller's command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console

from morphcpt.controller import open_controller, open_target
from morphcpt.controller.engine import Controller, Policy, StepReport
from morphcpt.controller.plan import rerun_plan
from morphcpt.controller.status import stage_rows, status_table
from morphcpt.render.scripts import RenderTarget

experiment_argument = click.argument("experiment")
workdir_option = click.option(
    "--workdir", type=click.Path(path_type=Path), help="repository root the jobs run in [default: cwd]"
)


def _console() -> Console:
    return Console(soft_wrap=False, width=160 if not sys.stdout.isatty() else None)


def _selected_rows(controller: Controller) -> list[dict[str, object]]:
    selected = set(controller.selected())
    return [r for r in stage_rows(controller) if r["stage"] in selected]


def _print_status(controller: Controller, console: Console, rows: list[dict[str, object]] | None = None) -> None:
    title = f"{controller.experiment.name} on {controller.profile.name} ({controller.profile.scheduler})"
    console.print(status_table(_selected_rows(controller) if rows is None else rows, title))


def _report(report: StepReport, console: Console) -> None:
    for name in report.submitted:
        console.print(f"submitted {name}")


def watch_loop(controller: Controller, console: Console, interval: float, timeout: float | None) -> int:
    """Step until every stage is done (0) or something was given up (1). Prints the table when it changes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown: dict[str, tuple[object, ...]] | None = None
    while True:
        report = controller.step()
        _report(report, console)
        rows = _selected_rows(controller)
        summary = {str(r["stage"]): (r["done"], r["state"], r["attempts"]) for r in rows}
        if summary != shown:
            if console.is_terminal or shown is None:
                _print_status(controller, console, rows)
            else:
                # Without a terminal (a log file, CI) one line per stage that changed, not the whole table again.
                for row in rows:
                    if shown.get(str(row["stage"])) != summary[str(row["stage"])]:
                        console.print(_change_line(row), markup=False, highlight=False)
            shown = summary
        if report.done:
            console.print(f"[green]experiment {controller.experiment.name}: every stage is done[/]")
            _print_report(controller, console)
            return 0
        active = any(r["state"] in ("queued", "running", "resubmitting", "waiting") for r in rows)
        if report.failed and not active:
            for stage, why in report.stopped.items():
                console.print(f"[bold red]stage {stage} failed[/]: {why}")
                console.print(f"  see `morphcpt logs {controller.experiment.name} {stage}`; fix, then `morphcpt retry`")
            return 1
        if deadline is not None and time.monotonic() > deadline:
            console.print("[yellow]watch: time limit reached; jobs keep running, `morphcpt watch` again later[/]")
            return 3
        time.sleep(interval)


def _change_line(row: dict[str, object]) -> str:
    """'12:04:05 preprocess_data_patok: running, 2/4 tasks done, attempt 1 (3,200/8,000 documents)'."""
    line = f"{time.strftime('%H:%M:%S')} {row['stage']}: {row['state']}, {row['done']}/{row['total']} tasks done"
    line += f", attempt {row['attempts']}" if row["attempts"] else ""
    line += f" ({row['progress']})" if row.get("progress") else ""
    return line + (f": {row['message']}" if row.get("message") else "")


def _print_report(controller: Controller, console: Console) -> None:
    """The analysis table and where the report is, when the run produced one."""
    report = controller.target.workdir / controller.experiment.evaluation.results_dir / "report.md"
    if "analyze" not in controller.selected() or not report.exists():
        return
    table = [line for line in report.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    end = next((i for i in range(1, len(table)) if table[i].startswith("| variant")), len(table))
    console.print("\n".join(table[:end]), markup=False, highlight=False)
    console.print(f"report: {report} (with plots in {report.parent})")


def _policy(interval: float, max_attempts: int, backoff: float) -> Policy:
    return Policy(max_attempts=max_attempts, backoff_seconds=backoff)


policy_options = [
    click.option("--interval", default=10.0, show_default=True, help="seconds between polls"),
    click.option("--max-attempts", default=3, show_default=True, help="failures of one task before giving up"),
    click.option("--backoff", default=5.0, show_default=True, help="seconds before a resubmission (doubles)"),
]


def _with_policy(f):  # type: ignore[no-untyped-def]
    for option in reversed(policy_options):
        f = option(f)
    return f


@click.command()
@experiment_argument
@click.option("--profile", "-p", required=True, help="cluster profile: a name in configs/clusters/ or a YAML path")
@workdir_option
@click.option("--dry-run", is_flag=True, help="print every script and the submission order; submit nothing")
@click.option("--watch/--no-watch", "follow", default=None, help="keep following [default: only for local]")
@click.option("--timeout", type=float, help="with --watch: stop following after this many seconds")
@click.option("--stage", "stages", multiple=True, help="only this stage and what it needs (repeatable)")
@_with_policy
def submit(
    experiment: str,
    profile: str,
    stages: tuple[str, ...],
    workdir: Path | None,
    dry_run: bool,
    follow: bool | None,
    timeout: float | None,
    interval: float,
    max_attempts: int,
    backoff: float,
) -> None:
    """Submit the whole experiment as a dependency graph; stages already complete on disk are skipped."""
    if dry_run:
        _dry_run(open_target(experiment, profile, workdir), list(stages))
        return
    controller = open_controller(experiment, profile, workdir, _policy(interval, max_attempts, backoff))
    _check_stages(controller, stages)
    controller.select(list(stages))
    console = _console()
    if follow is None:
        follow = not controller.backend.native_dependencies
    if follow:
        sys.exit(watch_loop(controller, console, interval, timeout))
    report = controller.step()
    _report(report, console)
    _print_status(controller, console)
    if report.failed:
        sys.exit(1)
    console.print(f"follow with `morphcpt watch {experiment}` (resubmits what walltime or failure cut short)")


def _dry_run(target: RenderTarget, stages: list[str]) -> None:
    """Which jobs would run and why, from the disk alone, then the script of each; writes nothing at all."""
    from morphcpt.graph import build_graph
    from morphcpt.render.scripts import render_job

    graph = build_graph(target.experiment)
    unknown = sorted(set(stages) - set(graph.jobs))
    if unknown:
        raise click.BadParameter(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(graph.jobs)}")
    names = [n for n in graph.jobs if not stages or n in set(stages) | graph.upstream(set(stages))]
    plan = rerun_plan(graph, target.context, names)
    for name in names:
        todo = plan[name]
        if not todo:
            click.echo(f"{name}: complete, not submitted")
            continue
        tasks = sorted(todo)
        reasons = sorted(set(todo.values()))
        which = "" if tasks == [0] else f" (tasks {_ranges(tasks)})"
        click.echo(f"{name}{which}: reruns because {'; '.join(reasons)}")
    for name in names:
        if plan[name]:
            click.echo(f"\n# ---- {name}")
            click.echo(render_job(graph.jobs[name], target), nl=False)


def _ranges(tasks: list[int]) -> str:
    """[1, 2, 3, 5] -> '1-3,5'."""
    runs: list[list[int]] = []
    for task in tasks:
        if runs and task == runs[-1][-1] + 1:
            runs[-1].append(task)
        else:
            runs.append([task])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


@click.command()
@experiment_argument
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON")
@click.option("--no-poll", is_flag=True, help="show the stored state without asking the scheduler")
def status(experiment: str, workdir: Path | None, as_json: bool, no_poll: bool) -> None:
    """One row per stage: tasks done/total, state, attempts, resumes, elapsed, job ids."""
    controller = open_controller(experiment, None, workdir, reader=True)
    if controller.read_only:
        # Another controller (watch, submit) is acting: it polls and records; status only shows what it recorded.
        click.echo(
            f"(a controller is following {controller.experiment.name}: states as it last recorded them)", err=True
        )
    elif not no_poll:
        controller.recover_interrupted_submissions()
        controller.poll()
    rows = stage_rows(controller)
    if as_json:
        click.echo(json.dumps({"experiment": controller.experiment.name, "stages": rows}, indent=2))
    else:
        _print_status(controller, _console())


@click.command()
@experiment_argument
@workdir_option
@click.option("--timeout", type=float, help="stop following after this many seconds (jobs keep running)")
@_with_policy
def watch(
    experiment: str, workdir: Path | None, timeout: float | None, interval: float, max_attempts: int, backoff: float
) -> None:
    """Follow the experiment: resubmit failed tasks and time-budget stops until every stage is done."""
    controller = open_controller(experiment, None, workdir, _policy(interval, max_attempts, backoff))
    sys.exit(watch_loop(controller, _console(), interval, timeout))


@click.command()
@experiment_argument
@click.option("--stage", "stages", multiple=True, help="only this stage (repeatable) [default: all]")
@workdir_option
def cancel(experiment: str, stages: tuple[str, ...], workdir: Path | None) -> None:
    """Cancel queued and running jobs; the stages stay cancelled until `morphcpt retry`."""
    controller = open_controller(experiment, None, workdir)
    _check_stages(controller, stages)
    ids = controller.cancel(list(stages) or None)
    click.echo(f"cancelled {len(ids)} job(s)" + (f": {' '.join(ids)}" if ids else ""))


@click.command()
@experiment_argument
@click.argument("stages", nargs=-1, required=True)
@workdir_option
def retry(experiment: str, stages: tuple[str, ...], workdir: Path | None) -> None:
    """Forget the stages' failures (and unblock what depends on them), then submit again."""
    controller = open_controller(experiment, None, workdir)
    _check_stages(controller, stages)
    for name, said in controller.retry(list(stages)).items():
        click.echo(f"{name}: {said}")
    report = controller.step()
    for name in report.submitted:
        click.echo(f"submitted {name}")
    if not report.submitted:
        click.echo("nothing submitted: " + ("every stage is complete" if report.done else "see `morphcpt status`"))


@click.command()
@experiment_argument
@click.argument("stage")
@click.option("--task", type=int, help="array task (chunk) [default: every task's latest log]")
@click.option("--attempt", type=int, help="[default: the latest]")
@workdir_option
def logs(experiment: str, stage: str, task: int | None, attempt: int | None, workdir: Path | None) -> None:
    """Print a stage's job log (the latest attempt of each task, or the one asked for), also while it runs."""
    from morphcpt.render.scripts import job_log_path

    # A reader, like status: logs only reads, so it works beside a running `watch`.
    controller = open_controller(experiment, None, workdir, reader=True)
    _check_stages(controller, (stage,))
    rows = [r for r in controller.store.tasks(stage) if r.log_path and (task is None or r.task == task)]
    if attempt is not None:
        rows = [r for r in rows if r.attempt == attempt]
    else:
        rows = list({r.task: r for r in rows}.values())
    if not rows:
        raise click.ClickException(f"no log recorded for {stage}" + (f" task {task}" if task is not None else ""))
    for row in rows:
        path, note = _log_to_show(Path(row.log_path or ""), job_log_path(row.log_path or "", row.token), row.state)
        click.echo(f"==> {path} (task {row.task}, attempt {row.attempt}, {row.state}{note}) <==")
        click.echo(path.read_text(errors="replace") if path.exists() else "(no log written yet)")


def _log_to_show(scheduler_log: Path, job_log: Path | None, state: str) -> tuple[Path, str]:
    """Which of a task's two logs to print, and a note saying why when it is not the obvious one.

    While the task is queued or running: the job's own log (the prologue's tee), because PBS Pro holds the
    scheduler's file on the compute node until the job ends. Once it ended: the scheduler's file, which also
    holds the scheduler's own messages (a walltime kill), or the job's own log when that file never arrived
    (PBS Pro moves undeliverable output to undelivered/ and still reports success)."""
    from morphcpt.controller.states import ACTIVE_STATES, TaskState

    own = job_log if job_log is not None and job_log.exists() else None
    if state in ACTIVE_STATES or state == TaskState.SUBMITTING:
        return own or scheduler_log, ""
    if scheduler_log.exists() or own is None:
        return scheduler_log, ""
    return own, f"; the scheduler's log {scheduler_log} is missing, showing the job's own"


def _check_stages(controller: Controller, stages: tuple[str, ...]) -> None:
    unknown = sorted(set(stages) - set(controller.jobs))
    if unknown:
        raise click.BadParameter(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(controller.order)}")


COMMANDS = [submit, status, watch, cancel, retry, logs]
