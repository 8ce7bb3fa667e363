"""Configuration: the default experiment is the seed plan, and every bad value is named by file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import morphcpt, profile_data, write_yaml
from morphcpt.config import (
    ClusterProfile,
    load_experiment,
    load_profile,
    memory_megabytes,
    walltime_seconds,
)
from morphcpt.errors import ConfigError


def test_default_experiment_is_the_seed_plan() -> None:
    exp = load_experiment("seapile-tl-cpt")
    assert exp.data.source.repo_id == "aisingapore/SEA-PILE-v2" and exp.data.source.subset == "tl"
    assert exp.data.num_chunks == 20
    assert exp.variants["stochastok"].expand_prop == 0.1
    patok = exp.variants["patok"]
    assert (patok.contract_prop, patok.expand_prop, patok.affix_awareness) == (0.9, 0.1, 0.95)
    assert patok.num_toks_to_cont == [2, 3, 4] and patok.contract_prob == [0.35, 0.35, 0.3]
    assert {run: cfg.variant for run, cfg in exp.runs.items()} == {
        "baseline": "vanilla",
        "stochastok": "stochastok",
        "patok": "patok",
    }
    t = exp.training
    assert (t.seq_length, t.global_batch_size, t.micro_batch_size) == (2048, 256, 2)
    assert (t.lr, t.min_lr, t.warmup_steps, t.weight_decay, t.clip_grad) == (1e-4, 1e-5, 500, 0.1, 1.0)
    assert (t.precision, t.max_steps, t.checkpoint_interval, t.val_interval, t.log_interval) == (
        "bf16-mixed",
        10_000,
        1_000,
        500,
        10,
    )
    assert t.gpus_per_node == 8 and t.recipe == "gemma3_1b"


@pytest.mark.parametrize("name", ["local", "local-slurm", "pbs-a100", "slurm-a100"])
def test_shipped_profiles_validate(name: str) -> None:
    assert isinstance(load_profile(name), ClusterProfile)


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    data = profile_data("slurm")
    data["resources"]["default"]["wallclock"] = "01:00:00"
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    message = str(err.value)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "wallclock" in text)
    assert f"{path}:{line}: resources.default.wallclock: unknown key" in message


def test_mistyped_top_level_key_is_an_error(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "bad.yaml", {**profile_data("slurm"), "partition": "gpu"})
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: partition: unknown key"):
        load_profile(path)


@pytest.mark.parametrize("walltime", ["25:61:00", "1 hour", "10", "00:00:00"])
def test_invalid_walltime_is_named(tmp_path: Path, walltime: str) -> None:
    data = profile_data("pbs")
    data["resources"]["train"] = {"walltime": walltime}
    path = write_yaml(tmp_path / "p.yaml", data)
    with pytest.raises(ConfigError, match=r"p\.yaml:\d+: resources\.train\.walltime: .*walltime"):
        load_profile(path)


def test_container_runtime_needs_an_image(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", {**profile_data("pbs"), "container": {"runtime": "enroot"}})
    with pytest.raises(ConfigError, match=r"p\.yaml:\d+: container\.image: required when runtime is 'enroot'"):
        load_profile(path)


def test_missing_required_key(tmp_path: Path) -> None:
    data = profile_data("slurm")
    del data["scheduler"]
    path = write_yaml(tmp_path / "p.yaml", data)
    with pytest.raises(ConfigError, match=r"p\.yaml: scheduler: required key is missing"):
        load_profile(path)


def test_newline_in_a_value_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", {**profile_data("slurm"), "queue": "debug\n#SBATCH --exclusive"})
    with pytest.raises(ConfigError, match="newline"):
        load_profile(path)


def test_experiment_run_with_unknown_variant(tmp_path: Path) -> None:
    source = Path("configs/experiments/seapile-tl-cpt.yaml").read_text()
    path = tmp_path / "e.yaml"
    path.write_text(source.replace("patok: {variant: patok}", "patok: {variant: patk}"))
    with pytest.raises(ConfigError, match=r"e\.yaml:\d+: runs\.patok\.variant: unknown variant 'patk'"):
        load_experiment(path)


def test_patok_weights_must_match(tmp_path: Path) -> None:
    source = Path("configs/experiments/seapile-tl-cpt.yaml").read_text()
    path = tmp_path / "e.yaml"
    path.write_text(source.replace("contract_prob: [0.35, 0.35, 0.3]", "contract_prob: [0.5, 0.5]"))
    with pytest.raises(ConfigError, match=r"e\.yaml:\d+: variants\.patok\.contract_prob: needs one weight"):
        load_experiment(path)


def test_batch_arithmetic_is_checked(tmp_path: Path) -> None:
    source = Path("configs/experiments/seapile-tl-cpt.yaml").read_text()
    path = tmp_path / "e.yaml"
    path.write_text(source.replace("global_batch_size: 256", "global_batch_size: 100"))
    with pytest.raises(ConfigError, match="not divisible by data-parallel size 8 x micro_batch_size 2"):
        load_experiment(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nscheduler: [slurm\n")
    with pytest.raises(ConfigError, match=r"p\.yaml:\d+: invalid YAML"):
        load_profile(path)


def test_units() -> None:
    assert walltime_seconds("24:00:00") == 86_400 and walltime_seconds("100:30:05") == 361_805
    assert memory_megabytes("64GB") == 65_536 and memory_megabytes("512mb") == 512
    assert memory_megabytes("2Gi") == 2048 and memory_megabytes("1T") == 1_048_576
    with pytest.raises(ValueError):
        memory_megabytes("lots")


def test_check_config_command_reports_the_error(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "p.yaml", {**profile_data("slurm"), "max_array_size": 0})
    result = morphcpt("check-config", str(path), check=False)
    assert result.returncode == 2
    assert "max_array_size" in result.stderr and "Traceback" not in result.stderr
    ok = morphcpt("check-config", "configs/clusters/pbs-a100.yaml", "configs/experiments/demo.yaml")
    assert "ok: configs/clusters/pbs-a100.yaml (cluster profile)" in ok.stdout


def test_a_duplicate_key_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    source = Path("configs/experiments/demo.yaml").read_text()
    path = tmp_path / "dup.yaml"
    path.write_text(source.replace("seed: 1234\n", "seed: 1234\nseed: 99\n", 1))
    first = next(i for i, line in enumerate(source.splitlines(), start=1) if line.startswith("seed:"))
    with pytest.raises(ConfigError, match=rf"{path}:{first + 1}: seed: duplicate key \(also at line {first}\)"):
        load_experiment(path)
