"""The experiment's `stages:` section: fan-out, dependencies, per-value resources, and the errors that stop a
bad graph before anything is submitted (each naming file, line and key)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, morphcpt, write_yaml
from morphcpt.config import load_experiment, load_profile
from morphcpt.errors import ConfigError
from morphcpt.graph import build_graph
from morphcpt.render.scripts import RenderTarget, render_job

DEMO = REPO / "configs/experiments/demo.yaml"


def demo_with(tmp_path: Path, stages: list[dict]) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data["stages"] = stages
    return write_yaml(tmp_path / "experiment.yaml", data)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def test_seed_plan_graph_lists_every_job_with_its_dependencies() -> None:
    out = morphcpt("graph", "seapile-tl-cpt").stdout.splitlines()
    assert out[0] == "seapile-tl-cpt: 19 jobs, 76 tasks" and len(out) == 20
    rows = {line.split()[0]: line for line in out[1:]}
    assert "array 20" in rows["preprocess_data_patok"] and "after: split_data" in rows["preprocess_data_patok"]
    assert "after: merge_data_patok, import_base_model; turn after: run_cpt_stochastok" in rows["run_cpt_patok"]
    assert rows["evaluate"].endswith("after: export_baseline, export_stochastok, export_patok, generate_benchmarks")
    dot = morphcpt("graph", "seapile-tl-cpt", "--dot").stdout
    assert dot.startswith("digraph") and '"merge_data_patok" -> "run_cpt_patok";' in dot


def test_cycle_is_an_error_naming_file_line_and_key(tmp_path: Path) -> None:
    path = demo_with(
        tmp_path,
        [
            {"name": "split_data", "uses": "split", "after": ["stats"]},
            {"name": "stats", "uses": "data_stats", "after": ["split_data"]},
        ],
    )
    result = morphcpt("graph", str(path), check=False)
    assert result.returncode == 2
    assert f"{path}:{line_of(path, 'after:')}: stages.0.after: cycle split_data -> stats -> split_data" in (
        result.stderr
    )


def test_unknown_stage_type_and_dangling_after_name_their_line(tmp_path: Path) -> None:
    path = demo_with(tmp_path, [{"name": "split_data", "uses": "splitt"}])
    with pytest.raises(ConfigError, match=rf"{path}:\d+: stages.0.uses: unknown stage type 'splitt' \(known: .*split"):
        load_experiment(path)
    path = demo_with(tmp_path, [{"name": "split_data", "uses": "split", "after": ["download"]}])
    with pytest.raises(ConfigError, match=r"stages.0.after.0: 'download' names no job or entry"):
        load_experiment(path)


def test_unknown_parameter_and_unknown_foreach_value_are_errors(tmp_path: Path) -> None:
    path = demo_with(tmp_path, [{"name": "split_data", "uses": "split", "params": {"chunks": 3}}])
    with pytest.raises(ConfigError, match=r"stages.0.params.chunks: unknown key"):
        load_experiment(path)
    path = demo_with(tmp_path, [{"name": "p", "uses": "preprocess", "foreach": {"variant": ["vanilla", "bpe"]}}])
    with pytest.raises(ConfigError, match=r"stages.0.foreach.variant: unknown variant 'bpe'"):
        load_experiment(path)
    path = demo_with(
        tmp_path, [{"name": "m", "uses": "merge", "after": ["p_{run}"], "foreach": {"variant": "variants"}}]
    )
    with pytest.raises(ConfigError, match=r"stages.0.after.0: \{run\} is not a name this entry defines"):
        load_experiment(path)


def test_two_jobs_writing_the_same_output_is_an_error(tmp_path: Path) -> None:
    path = demo_with(tmp_path, [{"name": "split_a", "uses": "split"}, {"name": "split_b", "uses": "split"}])
    with pytest.raises(ConfigError, match=r"stages.1.uses: split_b and split_a both write data/demo/chunks"):
        load_experiment(path)


def test_foreach_resources_per_value_and_concurrency_cap_reach_the_rendered_script(tmp_path: Path) -> None:
    path = demo_with(
        tmp_path,
        [
            {"name": "split_data", "uses": "split"},
            {
                "name": "prep",
                "uses": "preprocess",
                "after": ["split_data"],
                "foreach": {"variant": ["vanilla", "patok"]},
                "resources": {"walltime": {"vanilla": "00:20:00", "patok": "03:00:00"}, "mem": "3GB"},
                "max_concurrent": 2,
            },
        ],
    )
    graph = build_graph(load_experiment(path))
    assert list(graph.jobs) == ["split_data", "prep_vanilla", "prep_patok"]
    assert graph.jobs["prep_patok"].resources == {"walltime": "03:00:00", "mem": "3GB"}
    profile_path = REPO / "configs/clusters/slurm-a100.yaml"
    target = RenderTarget.create(load_profile(profile_path), profile_path, load_experiment(path), path, tmp_path)
    assert target.resources(graph.jobs["prep_vanilla"]).walltime == "00:20:00"
    assert target.resources(graph.jobs["prep_patok"]).walltime == "03:00:00"
    assert target.resources(graph.jobs["split_data"]).walltime == target.profile.resources.default.walltime
    script = render_job(graph.jobs["prep_patok"], target)
    assert "#SBATCH --time=03:00:00" in script and "#SBATCH --mem=3G" in script
    assert "#SBATCH --array=1-4%2" in script  # the entry's cap, within the profile's max_concurrent_tasks


def test_profile_resources_for_a_stage_type_nobody_uses_is_an_error(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "configs/clusters/local.yaml").read_text())
    data.setdefault("resources", {})["preproces"] = {"walltime": "01:00:00"}
    path = write_yaml(tmp_path / "p.yaml", data)
    with pytest.raises(ConfigError, match=r"resources.preproces: unknown key: no stage type uses resources"):
        load_profile(path)
