"""The training-backend registry and the plan-vs-profile resource check.

Choosing a backend must stay cheap (render and submit run where torch and NeMo are absent), a plugin package
must be able to add one through its entry points, and a plan that the profile's train allocation cannot run
must be caught with a message naming both keys. The NeMo recipe lookup is checked against stand-in modules
here; tests/test_nemo_recipe.py checks it against the real NeMo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import REPO
from morphcpt.config import load_experiment, load_profile
from morphcpt.errors import MorphcptError
from morphcpt.training import backends
from morphcpt.training.backends import TrainingBackend, available_backends, get_backend
from morphcpt.training.cpu_backend import CpuBackend
from morphcpt.training.nemo_backend import NemoBackend
from morphcpt.training.plan import RunPlan, plan_for_run

EXPERIMENTS = REPO / "configs" / "experiments"
CLUSTERS = REPO / "configs" / "clusters"
HEAVY = ("torch", "transformers", "nemo", "nemo_run", "lightning", "megatron")


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test resolves backends itself (the registry caches what it loaded)."""
    monkeypatch.setattr(backends, "_loaded", {})


def _plans(experiment: str) -> list[RunPlan]:
    exp = load_experiment(EXPERIMENTS / f"{experiment}.yaml")
    return [plan_for_run(exp, run) for run in exp.runs]


def _train_resources(profile: str | Path) -> tuple[int, int]:
    path = profile if isinstance(profile, Path) else CLUSTERS / f"{profile}.yaml"
    resources = load_profile(path).resources.for_stage("train")
    return resources.nodes, resources.ngpus


# ---------------------------------------------------------------- registry


def test_choosing_a_backend_imports_no_torch_or_nemo() -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        from morphcpt.config import load_experiment
        from morphcpt.training.backends import get_backend
        from morphcpt.training.plan import plan_for_run

        found = {{}}
        for name, experiment in (("cpu", "demo"), ("nemo", "seapile-tl-cpt")):
            backend = get_backend(name)
            exp = load_experiment({str(EXPERIMENTS)!r} + "/" + experiment + ".yaml")
            plan = plan_for_run(exp, "baseline")
            found[name] = [type(backend).__name__, plan.data_parallel, backend.check_resources(plan, 1, 8)]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
        print(json.dumps({{"found": found, "heavy": heavy}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["heavy"] == []
    assert report["found"]["cpu"] == ["CpuBackend", 1, []]
    assert report["found"]["nemo"] == ["NemoBackend", 8, []]


def test_builtin_backends_satisfy_the_protocol() -> None:
    cpu, nemo = get_backend("cpu"), get_backend("nemo")
    assert isinstance(cpu, CpuBackend) and isinstance(nemo, NemoBackend)
    assert isinstance(cpu, TrainingBackend) and isinstance(nemo, TrainingBackend)
    assert (cpu.needs_import, nemo.needs_import) == (False, True)
    assert "torch" in cpu.required_modules and "nemo_run" in nemo.required_modules
    assert get_backend("cpu") is cpu  # resolved once
    assert {"cpu", "nemo"} <= set(available_backends())


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(MorphcptError, match=r"unknown training backend 'tpu'; known backends: cpu, nemo \(") as info:
        get_backend("tpu")
    assert "morphcpt.training_backends" in str(info.value)


PLUGIN = """
from pathlib import Path


class FakeBackend:
    name = "fake"
    required_modules = ("fake_runtime",)
    needs_import = False

    def data_parallel(self, plan):
        return 4

    def train(self, experiment, plan, deadline):
        raise NotImplementedError

    def describe(self, experiment, plans):
        return "fake: " + ", ".join(plan.run for plan in plans)

    def final_checkpoint(self, plan):
        return Path(plan.checkpoint_dir)

    def export(self, experiment, checkpoint, out_dir):
        pass

    def import_pretrained(self, experiment):
        return "nothing"

    def command(self, experiment_ref, run, python):
        return [python, "-m", "fake_trainer", experiment_ref, run]

    def check_resources(self, plan, nodes, gpus_per_node):
        return ["fake problem"]


class NotABackend:
    name = "half"

    def train(self, experiment, plan, deadline):
        raise NotImplementedError
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution on sys.path whose entry points register three backends."""
    (tmp_path / "fake_trainer.py").write_text(PLUGIN)
    dist = tmp_path / "fake_trainer-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-trainer\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[morphcpt.training_backends]\n"
        "fake = fake_trainer:FakeBackend\n"
        "half = fake_trainer:NotABackend\n"
        "cpu = fake_trainer:FakeBackend\n"
        "missing = fake_trainer_gone:Backend\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_trainer", raising=False)
    return tmp_path


@pytest.mark.usefixtures("plugin")
def test_a_backend_from_an_entry_point_is_found_and_used_by_the_plan() -> None:
    assert {"cpu", "nemo", "fake", "half", "missing"} <= set(available_backends())
    fake = get_backend("fake")
    assert type(fake).__name__ == "FakeBackend"
    assert isinstance(fake, TrainingBackend)
    # The plan's batch arithmetic asks the run's backend (no backend name is special-cased in plan.py).
    plan = replace(_plans("demo")[0], backend="fake")
    assert plan.data_parallel == 4
    assert plan.grad_accumulation == plan.global_batch_size // (4 * plan.micro_batch_size)
    assert fake.describe(None, [plan]) == "fake: baseline"


@pytest.mark.usefixtures("plugin")
def test_entry_points_cannot_replace_a_builtin_and_bad_ones_are_clear_errors() -> None:
    assert isinstance(get_backend("cpu"), CpuBackend)
    with pytest.raises(MorphcptError, match=r"'half' \(entry point fake_trainer:NotABackend\) is not a Training"):
        get_backend("half")
    with pytest.raises(MorphcptError, match=r"lacks required_modules, needs_import, data_parallel, describe"):
        get_backend("half")
    with pytest.raises(MorphcptError, match=r"'missing' \(entry point fake_trainer_gone:Backend\) failed to load"):
        get_backend("missing")


def test_entry_points_are_read_through_importlib_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    entry = metadata.EntryPoint("viaapi", "morphcpt.training.cpu_backend:CpuBackend", backends.ENTRY_POINT_GROUP)
    calls: list[str] = []

    def entry_points(*, group: str) -> list[metadata.EntryPoint]:
        calls.append(group)
        return [entry] if group == backends.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    with pytest.raises(MorphcptError, match=r"training backend 'viaapi' .* calls itself 'cpu'; the names must match"):
        get_backend("viaapi")
    assert calls == ["morphcpt.training_backends"]
    assert "viaapi" in available_backends()


# ---------------------------------------------------------------- plan vs the profile's train resources


@pytest.mark.parametrize("profile", ["pbs-a100", "slurm-a100"])
def test_shipped_nemo_experiment_fits_the_a100_profiles(profile: str) -> None:
    nodes, gpus = _train_resources(profile)
    for plan in _plans("seapile-tl-cpt"):
        assert plan.backend == "nemo"
        assert get_backend(plan.backend).check_resources(plan, nodes, gpus) == []


@pytest.mark.parametrize("profile", ["local", "local-slurm"])
def test_shipped_demo_fits_the_local_profiles(profile: str) -> None:
    nodes, gpus = _train_resources(profile)
    assert (nodes, gpus) == (1, 0)
    for plan in _plans("demo"):
        assert plan.backend == "cpu"
        assert get_backend(plan.backend).check_resources(plan, nodes, gpus) == []


def test_nemo_plan_and_allocation_must_agree_on_nodes_and_gpus() -> None:
    nemo = get_backend("nemo")
    plan = _plans("seapile-tl-cpt")[0]  # 1 node x 8 GPUs, TP 1, PP 1, GBS 256, MBS 2
    assert nemo.check_resources(replace(plan, num_nodes=2), 1, 8) == [
        "training.num_nodes: 2 but the profile's train resources give nodes: 1"
    ]
    assert nemo.check_resources(plan, 2, 8) == ["training.num_nodes: 1 but the profile's train resources give nodes: 2"]
    assert nemo.check_resources(plan, 1, 4) == [
        "training.gpus_per_node: 8 but the profile's train resources give ngpus: 4"
    ]
    assert nemo.check_resources(plan, 1, 0) == [
        "training.backend: nemo trains on GPUs but the profile's train resources give ngpus: 0"
    ]


def test_nemo_parallelism_and_batch_must_divide_the_allocation() -> None:
    nemo = get_backend("nemo")
    plan = _plans("seapile-tl-cpt")[0]
    assert nemo.check_resources(replace(plan, tensor_parallel=2, pipeline_parallel=2), 1, 8) == []
    assert nemo.check_resources(replace(plan, tensor_parallel=3), 1, 8) == [
        "training.tensor_parallel x training.pipeline_parallel (3 x 1 = 3) does not divide the 8 GPUs of "
        "the profile's train resources (nodes: 1 x ngpus: 8)"
    ]
    assert nemo.check_resources(replace(plan, global_batch_size=100), 1, 8) == [
        "training.global_batch_size: 100 is not divisible by data-parallel size 8 x training.micro_batch_size: 2 "
        "(= 16) on the profile's train resources (nodes: 1 x ngpus: 8)"
    ]
    # 2 x 8 GPUs with TP 2: data parallel 8, so GBS 256 / (8 x 2) works, but the node count does not match.
    assert nemo.check_resources(replace(plan, tensor_parallel=2), 2, 8) == [
        "training.num_nodes: 1 but the profile's train resources give nodes: 2"
    ]


def test_an_edited_profile_is_caught(tmp_path: Path) -> None:
    source = (CLUSTERS / "pbs-a100.yaml").read_text()
    assert "train: {nodes: 1, ncpus: 112, ngpus: 8," in source
    edited = tmp_path / "pbs-a100-4gpu.yaml"
    edited.write_text(
        source.replace("train: {nodes: 1, ncpus: 112, ngpus: 8,", "train: {nodes: 1, ncpus: 112, ngpus: 4,")
    )
    nodes, gpus = _train_resources(edited)
    plan = _plans("seapile-tl-cpt")[0]
    assert get_backend("nemo").check_resources(plan, nodes, gpus) == [
        "training.gpus_per_node: 8 but the profile's train resources give ngpus: 4"
    ]


def test_cpu_backend_takes_any_gpu_count_but_one_node() -> None:
    cpu = get_backend("cpu")
    plan = _plans("demo")[0]  # gpus_per_node: 1 in the experiment; the CPU trainer uses none
    assert cpu.check_resources(plan, 1, 0) == []
    assert cpu.check_resources(plan, 1, 4) == []
    assert cpu.check_resources(plan, 2, 0) == [
        "training.backend: cpu trains in one process on one node but the profile's train resources give nodes: 2"
    ]
    assert cpu.check_resources(replace(plan, num_nodes=2), 1, 0) == [
        "training.num_nodes: 2 but training.backend: cpu trains on one node"
    ]
    assert cpu.check_resources(replace(plan, global_batch_size=12), 1, 0) == [
        "training.global_batch_size: 12 is not divisible by data-parallel size 1 x training.micro_batch_size: 8 (= 8)"
    ]


# ---------------------------------------------------------------- training.recipe picks the NeMo recipe


@pytest.fixture
def stand_in_nemo(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """nemo.collections.llm with two recipe modules, one only under llm.recipes (as NeMo's own layout has)."""

    def recipe(name: str) -> types.ModuleType:
        module = types.ModuleType(f"nemo.collections.llm.recipes.{name}")
        module.pretrain_recipe = lambda **kwargs: (name, kwargs)  # type: ignore[attr-defined]
        return module

    nemo, collections = types.ModuleType("nemo"), types.ModuleType("nemo.collections")
    llm, recipes = types.ModuleType("nemo.collections.llm"), types.ModuleType("nemo.collections.llm.recipes")
    recipes.__path__ = []  # a package, so an unknown submodule is "not found"
    recipes.gemma3_1b, recipes.llama32_1b = recipe("gemma3_1b"), recipe("llama32_1b")  # type: ignore[attr-defined]
    recipes.log = types.ModuleType("nemo.collections.llm.recipes.log")  # type: ignore[attr-defined]
    llm.recipes, llm.gemma3_1b = recipes, recipes.gemma3_1b  # type: ignore[attr-defined]
    llm.pretrain = lambda: None  # type: ignore[attr-defined]
    nemo.collections, collections.llm = collections, llm  # type: ignore[attr-defined]
    for module in (nemo, collections, llm, recipes):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return recipes


def test_training_recipe_is_looked_up_by_name(stand_in_nemo: types.ModuleType) -> None:
    from morphcpt.training.nemo_recipe import known_recipes, recipe_module

    assert recipe_module("gemma3_1b") is stand_in_nemo.gemma3_1b
    assert recipe_module("llama32_1b") is stand_in_nemo.llama32_1b  # not re-exported as llm.llama32_1b
    assert known_recipes() == ["gemma3_1b", "llama32_1b"]
    for wrong in ("gemma3_1bb", "pretrain", "log", "../gemma3_1b"):
        with pytest.raises(MorphcptError, match=rf"training.recipe: '{wrong}' is not a NeMo pretrain recipe") as info:
            recipe_module(wrong)
        assert str(info.value).endswith("this NeMo has: gemma3_1b, llama32_1b")
