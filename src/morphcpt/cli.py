"""The `morphcpt` command. Each subcommand parses arguments and calls one function of the package."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from morphcpt import __version__
from morphcpt.config import (
    CLUSTERS_DIR,
    DEFAULT_EXPERIMENT,
    EXPERIMENTS_DIR,
    load_experiment,
    load_profile,
    resolve_config_path,
)
from morphcpt.errors import MorphcptError


class _Group(click.Group):
    """Reports MorphcptError as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MorphcptError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="morphcpt")
def cli() -> None:
    """Continued-pretraining experiments on PBS Pro, Slurm or this machine."""


profile_option = click.option(
    "--profile", "-p", required=True, help=f"cluster profile: a name in {CLUSTERS_DIR.name}/ or a YAML path"
)
experiment_option = click.option(
    "--experiment",
    "-e",
    default=DEFAULT_EXPERIMENT,
    show_default=True,
    help=f"experiment: a name in {EXPERIMENTS_DIR.name}/ or a YAML path",
)


@cli.command()
@profile_option
@experiment_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("jobs"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), help="repository root on the cluster [default: cwd]")
@click.option("--job", "only", multiple=True, help="render only this job (repeatable)")
def render(profile: str, experiment: str, out_dir: Path, workdir: Path | None, only: tuple[str, ...]) -> None:
    """Render the experiment's job scripts for hand submission with qsub / sbatch / bash."""
    from morphcpt.render import RenderTarget, render_experiment

    profile_path = resolve_config_path(profile, CLUSTERS_DIR, "cluster profile")
    experiment_path = resolve_config_path(experiment, EXPERIMENTS_DIR, "experiment")
    target = RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, workdir
    )
    written, submit_path = render_experiment(target, out_dir, list(only) or None)
    for job, path in written:
        kind = f"array of {job.array_size}" if job.array_size else "job"
        turn = f"; turn after: {', '.join(job.turn_after)}" if job.turn_after else ""
        click.echo(f"wrote {path}  ({kind}; after: {', '.join(job.after) or '-'}{turn})")
    click.echo(f"wrote {submit_path}\n\nSubmit in dependency order (or run: bash {submit_path}):")
    for line in submit_path.read_text().splitlines()[3:]:
        click.echo(f"  {line}")


@cli.command()
@click.argument("experiment", default=DEFAULT_EXPERIMENT)
@click.option("--dot", is_flag=True, help="print Graphviz dot instead of text")
def graph(experiment: str, dot: bool) -> None:
    """Print the experiment's jobs, their stage types, arrays and dependencies."""
    from morphcpt.graph import build_graph

    exp = _experiment(experiment)
    jobs = build_graph(exp)
    click.echo(jobs.dot() if dot else jobs.text(exp.name), nl=not dot)


@cli.command("job-modules")
@experiment_option
def job_modules(experiment: str) -> None:
    """The Python modules the experiment's jobs import, one a line: what its container must provide
    (containers/setup_enroot.sh smoke-tests exactly these)."""
    from morphcpt.graph import job_modules as modules

    click.echo("\n".join(modules(_experiment(experiment))))


@cli.command("run-stage")
@experiment_option
@click.argument("job")
@click.option("--task", type=int, default=0, show_default=True, help="array task (chunk); 0 for a plain job")
def run_stage(experiment: str, job: str, task: int) -> None:
    """Run one task of a job in this process (the body of stage types that have no command of their own)."""
    from morphcpt.context import RunContext

    path = resolve_config_path(experiment, EXPERIMENTS_DIR, "experiment")
    ctx = RunContext.create(load_experiment(path), path)
    if job not in ctx.graph.jobs:
        raise click.BadParameter(f"no job {job!r}; the experiment has: {', '.join(ctx.graph.jobs)}")
    stage_job = ctx.graph.jobs[job]
    if stage_job.is_array and not 1 <= task <= (stage_job.array_size or 0):
        raise click.BadParameter(f"--task {task} is outside 1-{stage_job.array_size} for array job {job}")
    raise SystemExit(stage_job.stage.run(ctx, stage_job, task))


@cli.command("check-config")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def check_config(paths: tuple[Path, ...]) -> None:
    """Validate cluster profiles and experiment files (exit 2 with file:line: key on the first problem)."""
    from morphcpt.yaml_source import load_yaml

    for path in paths:
        # A cluster profile is the file that names a scheduler.
        kind = "cluster profile" if "scheduler" in load_yaml(path).data else "experiment"
        (load_profile if kind == "cluster profile" else load_experiment)(path)
        click.echo(f"ok: {path} ({kind})")


@cli.command("verify-setup")
@profile_option
@experiment_option
@click.option("--workdir", type=click.Path(path_type=Path))
def verify_setup_command(profile: str, experiment: str, workdir: Path | None) -> None:
    """Check tools, container image, paths, Python packages and GPUs for a profile."""
    from morphcpt.verify_setup import print_report, verify_setup

    checks = verify_setup(profile, experiment, workdir)
    print_report(checks)
    sys.exit(1 if any(check.status == "FAIL" for check in checks) else 0)


def _experiment(name: str):  # type: ignore[no-untyped-def]
    return load_experiment(resolve_config_path(name, EXPERIMENTS_DIR, "experiment"))


def _override_note(flag: str, value: object, key: str, configured: object, reader: str) -> None:
    """Say when a command-line value departs from the experiment, whose next stage still reads its own."""
    if str(value) != str(configured):
        click.echo(
            f"note: {flag} {value} differs from the experiment's {key} ({configured}), which its {reader} stage "
            f"reads; set {key}: {value} in the experiment for that stage to use this output",
            err=True,
        )


@cli.command()
@experiment_option
@click.option(
    "--output", type=click.Path(path_type=Path), help="JSONL to write [default: data.corpus] (the seed plan's flag)"
)
@click.option(
    "--language",
    help="SEA-PILE v2 subset [default: data.source.subset]; ISO 639-2/3 codes (fil, tgl) name their 639-1 subset",
)
def download(experiment: str, output: Path | None, language: str | None) -> None:
    """Fetch the corpus (SEA-PILE v2 Filipino from the hub, or data.source.local_path) as JSONL."""
    from morphcpt.data.download import dataset_subset, download_corpus

    exp = _experiment(experiment)
    data = exp.data
    if language is not None:
        data = data.model_copy(update={"source": data.source.model_copy(update={"subset": dataset_subset(language)})})
    if output is not None:
        _override_note("--output", output, "data.corpus", exp.data.corpus, "split")
        data = data.model_copy(update={"corpus": str(output)})
    exp = exp.model_copy(update={"data": data})
    result = download_corpus(exp)
    state = "already done" if result["skipped"] else "done"
    click.echo(f"download: {state}: {result['lines']} records in {exp.data.corpus}")


@cli.command("demo-data")
@experiment_option
@click.option("--documents", default=4000, show_default=True, help="documents in the offline corpus")
@click.option("--vocab-size", default=4000, show_default=True, help="of the byte-level BPE tokenizer")
def demo_data(experiment: str, documents: int, vocab_size: int) -> None:
    """Build the experiment's offline corpus from its language pack (data.source.local_path) and train its
    tokenizer (data.tokenizer, when a local .json path); files that exist are kept, so reruns change nothing."""
    from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
    from morphcpt.languages import get_language

    exp = _experiment(experiment)
    source = exp.data.source.local_path
    if not source:
        raise click.UsageError(f"experiment {exp.name} has no data.source.local_path to build")
    corpus = Path(source)
    if corpus.exists():
        click.echo(f"corpus: {corpus} exists, kept ({corpus.stat().st_size / 1e6:.1f} MB)")
    else:
        corpus.parent.mkdir(parents=True, exist_ok=True)
        report = build_corpus(corpus, documents=documents, seed=exp.seed, language=get_language(exp.language))
        click.echo("\n".join(report.lines()))
    tokenizer = Path(exp.data.tokenizer)
    if tokenizer.suffix == ".json" and not tokenizer.exists():
        tokenizer.parent.mkdir(parents=True, exist_ok=True)
        train_bytelevel_tokenizer(corpus, tokenizer, vocab_size=vocab_size)
        click.echo(f"tokenizer: {tokenizer} (byte-level BPE, {vocab_size} pieces)")


@cli.command()
@experiment_option
@click.option("--input", "corpus", type=click.Path(path_type=Path), help="corpus to split [default: data.corpus]")
@click.option("--output-dir", type=click.Path(path_type=Path), help="where the chunks go [default: data.chunks_dir]")
@click.option("--num-chunks", type=click.IntRange(min=1), help="[default: data.num_chunks]")
def split(experiment: str, corpus: Path | None, output_dir: Path | None, num_chunks: int | None) -> None:
    """Split the experiment's corpus into data.num_chunks chunks balanced by bytes, with a manifest."""
    from morphcpt.data.split import split_corpus

    data = _experiment(experiment).data
    # The seed plan's flags (split_jsonl.py --input --output-dir --num-chunks) stand in for the data: keys.
    if output_dir is not None:
        _override_note("--output-dir", output_dir, "data.chunks_dir", data.chunks_dir, "preprocess")
    if num_chunks is not None:
        _override_note("--num-chunks", num_chunks, "data.num_chunks", data.num_chunks, "preprocess")
    corpus = corpus or Path(data.corpus)
    chunks_dir = output_dir or Path(data.chunks_dir)
    manifest = split_corpus(corpus, chunks_dir, num_chunks or data.num_chunks, data.text_key)
    click.echo(f"split {manifest['lines']} lines into {len(manifest['chunks'])} chunks in {chunks_dir}")


@cli.command()
@experiment_option
@click.option("--variant", required=True)
@click.option("--chunk", required=True, type=int)
@click.option("--strict", is_flag=True, help="a malformed record is fatal instead of counted and skipped")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="processes that tokenize and edit the chunk (the output is the same for any number) "
    "[default: the job's CPUs: NCPUS, SLURM_CPUS_PER_TASK or NSLOTS, else the CPUs this process may use]",
)
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="seconds between progress lines (documents, tokens, MB/s, ETA) on stderr",
)
def preprocess(
    experiment: str, variant: str, chunk: int, strict: bool, workers: int | None, progress_interval: float
) -> None:
    """Tokenize one chunk, apply the variant's token edits, write a Megatron indexed dataset."""
    import os

    from morphcpt.data.preprocess import default_workers, preprocess_chunk

    # N workers use N cores: the tokenizer's own thread pool (every core of the node) would add its threads
    # to theirs, on CPUs the job may not have been given. Unless the environment says otherwise.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    exp = _experiment(experiment)
    result = preprocess_chunk(
        exp,
        variant,
        chunk,
        strict=strict,
        workers=workers or default_workers(),
        progress_interval=progress_interval,
        log=lambda line: click.echo(line, err=True),
    )
    state = "already done" if result["skipped"] else "done"
    click.echo(
        f"{variant} chunk {chunk}: {state}: {result['documents']} documents, {result['tokens']} tokens, "
        f"{result['rejected']} rejected {result.get('rejects_by_reason', {})}, edits {result.get('edits', {})}"
    )
    if result["rejected"]:
        from morphcpt.context import Layout

        prefix = Layout(exp).chunk_prefix(variant, chunk)
        click.echo(f"rejects (chunk line, corpus line, reason): {prefix.with_name(prefix.name + '.rejects.jsonl')}")


@cli.command()
@experiment_option
@click.option("--variant", required=True)
def merge(experiment: str, variant: str) -> None:
    """Merge a variant's chunk datasets into one prefix (<processed_dir>/<variant>/all)."""
    from morphcpt.data.preprocess import merge_variant

    result = merge_variant(_experiment(experiment), variant)
    click.echo(f"{variant}: merged {result['documents']} documents, {result['tokens']} tokens")


@cli.command("data-stats")
@experiment_option
@click.option("--samples", default=5, show_default=True, help="draws per word for the random variants")
@click.option("--json", "as_json", is_flag=True, help="print the statistics as JSON")
def data_stats_command(experiment: str, samples: int, as_json: bool) -> None:
    """Docs, tokens, tokens per word, expansion definition and realised rate, and morpheme alignment per variant."""
    import json

    from rich.console import Console
    from rich.table import Table

    from morphcpt.data.stats import STATS_FILE, data_stats

    exp = _experiment(experiment)
    stats = data_stats(exp, samples=samples)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    table = Table(title=f"data statistics ({stats['corpus_words']} words; {Path(exp.data.processed_dir) / STATS_FILE})")
    columns = ("variant", "docs", "tokens", "tokens/word", "expansion", "expand_prop", "realised")
    for column in (*columns, "boundary P", "R", "F1", "MorphScore"):
        table.add_column(column, justify="left" if column in ("variant", "expansion") else "right")
    for name, row in stats["variants"].items():
        m = row["morphology"]
        # The definition of expand_prop beside the rate it realised: the two differ (README, StochasTok).
        expansion = row.get("expansion") or {}
        table.add_row(
            name,
            str(row["documents"]),
            str(row["tokens"]),
            f"{row['tokens_per_word']:.3f}",
            expansion.get("definition", "-"),
            f"{expansion['expand_prop']:.3f}" if expansion else "-",
            f"{row['edits']['realised_expansion_rate']:.3f}",
            f"{m['boundary_precision']:.3f}",
            f"{m['boundary_recall']:.3f}",
            f"{m['boundary_f1']:.3f}",
            f"{m['morphscore']:.3f}",
        )
    Console(width=170).print(table)


def _plans(exp, run: str | None, **overrides):  # type: ignore[no-untyped-def]
    from morphcpt.training.plan import plan_for_run

    return [plan_for_run(exp, name, **overrides) for name in ([run] if run else list(exp.runs))]


def print_plans(plans) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    table = Table(title="training plan")
    table.add_column("setting")
    for plan in plans:
        table.add_column(plan.run)
    columns = [plan.table_rows() for plan in plans]
    for index, (name, _) in enumerate(columns[0]):
        table.add_row(name, *(rows[index][1] for rows in columns))
    Console(width=200).print(table)


@cli.command()
@experiment_option
@click.option("--run", help="one run of the experiment [default: all runs, for --dry-run]")
@click.option("--max-steps", type=int, help="override training.max_steps")
@click.option("--time-budget", type=float, help="stop with a checkpoint after this many seconds")
@click.option("--dry-run", is_flag=True, help="print the resolved settings (and the NeMo recipe when NeMo is here)")
def train(experiment: str, run: str | None, max_steps: int | None, time_budget: float | None, dry_run: bool) -> None:
    """Continued pretraining of one run: exit 0 at the target step, 3 at the time budget (resubmit to resume)."""
    from morphcpt.training.backends import get_backend
    from morphcpt.training.plan import deadline_from_environment

    exp = _experiment(experiment)
    backend = get_backend(exp.training.backend)
    plans = _plans(exp, run, max_steps=max_steps)
    if dry_run:
        print_plans(plans)
        description = backend.describe(exp, plans)
        if description:
            click.echo(description)
        return
    if run is None:
        raise click.UsageError("--run is required unless --dry-run")
    deadline = deadline_from_environment(exp.training.time_budget_margin_seconds, time_budget)
    result = backend.train(exp, plans[0], deadline)
    resumed = f", resumed from step {result.resumed_from}" if result.resumed_from is not None else ""
    click.echo(f"{run}: step {result.step}, loss {result.loss}{resumed}, exit status {result.status}")
    raise SystemExit(result.status)


@cli.command()
@experiment_option
@click.option("--run", required=True)
def export(experiment: str, run: str) -> None:
    """Write the run's final checkpoint as a Hugging Face model in models_dir/<run>."""
    from morphcpt.training.export import export_run

    exp = _experiment(experiment)
    plan = _plans(exp, run)[0]
    result = export_run(exp, plan)
    click.echo(f"{run}: {'already exported' if result['skipped'] else 'exported'} to {plan.model_dir}")


@cli.command("import-model")
@experiment_option
def import_model(experiment: str) -> None:
    """One-time conversion of training.pretrained (HF) into what the training backend starts from (NeMo)."""
    from morphcpt.training.backends import get_backend

    exp = _experiment(experiment)
    click.echo(get_backend(exp.training.backend).import_pretrained(exp))


@cli.command()
@experiment_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="[default: evaluation.benchmarks_dir]")
@click.option("--count", type=int, help="items per suite [default: evaluation.items_per_suite]")
def benchmarks(experiment: str, out_dir: Path | None, count: int | None) -> None:
    """Generate the PACUTE-style suites and hierarchical levels 0-5 from the experiment's language pack
    (deterministic by the experiment seed)."""
    from morphcpt.evaluation.generate import write_benchmarks
    from morphcpt.languages import get_language

    exp = _experiment(experiment)
    out = out_dir or Path(exp.evaluation.benchmarks_dir)
    written = write_benchmarks(
        out,
        list(exp.evaluation.benchmarks),
        count or exp.evaluation.items_per_suite,
        exp.seed,
        language=get_language(exp.language),
    )
    click.echo(f"wrote {sum(written.values())} items in {len(written)} files under {out}")


@cli.command()
@experiment_option
@click.option("--models", "models", multiple=True, help="model dirs or hub ids [default: the runs' exported models]")
@click.option("--benchmarks", "benchmark_names", multiple=True, help="pacute and/or hierarchical")
@click.option("--eval-mode", type=click.Choice(["mcq", "gen", "both"]), help="[default: evaluation.eval_mode]")
@click.option("--lang", "langs", multiple=True, help="prompt language(s) of the experiment's language pack [en]")
@click.option("--device", default="auto", show_default=True)
@click.option("--tokenizer", help="for --models checkpoints that carry none [default: data.tokenizer]")
def evaluate(
    experiment: str,
    models: tuple[str, ...],
    benchmark_names: tuple[str, ...],
    eval_mode: str | None,
    langs: tuple[str, ...],
    device: str,
    tokenizer: str | None,
) -> None:
    """Score models on the benchmarks; resumable; results in evaluation.results_dir/<model>/."""
    from morphcpt.context import Layout
    from morphcpt.evaluation.run import evaluate_models
    from morphcpt.languages import get_language
    from morphcpt.stages.evaluate import evaluation_fingerprints

    exp = _experiment(experiment)
    pack = get_language(exp.language)
    unknown = [lang for lang in langs if lang not in pack.prompt_languages]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}: language pack {pack.code} asks in {', '.join(pack.prompt_languages)}",
            param_hint="--lang",
        )
    ev = exp.evaluation
    chosen = list(models) or [str(Path(exp.training.models_dir) / run) for run in exp.runs]
    if not models and ev.base_model:
        chosen.insert(0, ev.base_model)
    summaries = evaluate_models(
        chosen,
        list(benchmark_names or ev.benchmarks),
        eval_mode or ev.eval_mode,
        Path(ev.benchmarks_dir),
        Path(ev.results_dir),
        list(langs or ["en"]),
        device,
        language=pack,
        # Run as the experiment's stage (no --models): a model whose scores are current is not re-scored.
        fingerprints=None if models or benchmark_names or langs else evaluation_fingerprints(Layout(exp), eval_mode),
        tokenizer=tokenizer or exp.data.tokenizer,
    )
    for path in summaries:
        click.echo(f"summary: {path}")


@cli.command()
@click.option("-e", "--experiment", help="take the results dir, reference and data stats from this experiment")
@click.option("--results-dir", type=click.Path(path_type=Path), help="[default: evaluation.results_dir]")
@click.option("--reference", help="model the others are compared with [default: base model, else baseline]")
@click.option("--data-stats", type=click.Path(path_type=Path), help="data_stats.json of the data stage")
def analyze(experiment: str | None, results_dir: Path | None, reference: str | None, data_stats: Path | None) -> None:
    """Tables (markdown, CSV) with Wilson intervals and PNG plots from per-item results."""
    from morphcpt.data.stats import STATS_FILE
    from morphcpt.evaluation.analysis import analyze as run_analysis
    from morphcpt.evaluation.scoring import model_name

    if experiment:
        exp = _experiment(experiment)
        results_dir = results_dir or Path(exp.evaluation.results_dir)
        if reference is None and exp.evaluation.base_model:
            reference = model_name(exp.evaluation.base_model)
        data_stats = data_stats or Path(exp.data.processed_dir) / STATS_FILE
    if results_dir is None:
        raise click.UsageError("give --results-dir or --experiment")
    result = run_analysis(results_dir, reference, data_stats)
    click.echo(result["table"])
    click.echo(f"report: {result['report']} ({len(result['plots'])} plots)")


def _add_controller_commands() -> None:
    from morphcpt.controller.commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_add_controller_commands()


def main() -> None:
    cli(prog_name="morphcpt")
