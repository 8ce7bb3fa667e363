"""Experiment and cluster-profile models. Unknown keys are errors; every error names the file, line and key."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from morphcpt.errors import ConfigError
from morphcpt.yaml_source import YamlSource, load_yaml


def find_repo_root() -> Path:
    """The morphcpt checkout whose configs/, job_templates/ and containers/ the commands use: $MORPHCPT_REPO;
    else the tree this module sits in (a checkout, or an editable install of one); else the working directory
    or the nearest parent of it that is a checkout (a plain `pip install .` puts the module in site-packages,
    away from the repository's own files, and login-node commands run inside the clone)."""
    if os.environ.get("MORPHCPT_REPO"):
        return Path(os.environ["MORPHCPT_REPO"]).resolve()
    source_tree = Path(__file__).resolve().parents[2]

    def is_checkout(path: Path) -> bool:
        return (path / "job_templates").is_dir() and (path / "configs").is_dir()

    if is_checkout(source_tree):
        return source_tree
    cwd = Path.cwd().resolve()
    return next((p for p in (cwd, *cwd.parents) if is_checkout(p)), source_tree)


REPO_ROOT = find_repo_root()
CLUSTERS_DIR = REPO_ROOT / "configs" / "clusters"
EXPERIMENTS_DIR = REPO_ROOT / "configs" / "experiments"
DEFAULT_EXPERIMENT = "seapile-tl-cpt"

_WALLTIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_MEMORY = re.compile(r"^(\d+)\s*([kmgt])i?b?$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NAMED_KEY = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w-]+)*): (.*)$", re.DOTALL)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ModelT = TypeVar("ModelT", bound=BaseModel)
_MEMORY_UNIT_MB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def walltime_seconds(value: str) -> int:
    match = _WALLTIME.match(value)
    if not match:
        raise ValueError(f"invalid walltime {value!r}: expected HH:MM:SS, e.g. 24:00:00")
    hours, minutes, seconds = (int(g) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def memory_megabytes(value: str) -> int:
    match = _MEMORY.match(value.strip())
    if not match:
        raise ValueError(f"invalid memory {value!r}: expected a number and unit, e.g. 64GB or 512MB")
    return max(1, int(int(match.group(1)) * _MEMORY_UNIT_MB[match.group(2).lower()]))


def _check_walltime(value: str) -> str:
    seconds = walltime_seconds(value)
    if seconds <= 0:
        raise ValueError(f"walltime {value!r} must be longer than zero")
    return value


def _check_memory(value: str) -> str:
    memory_megabytes(value)
    return value


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} must start with a letter or digit and hold only letters, digits, _ . -")
    return value


Walltime = Annotated[str, AfterValidator(_check_walltime)]
Memory = Annotated[str, AfterValidator(_check_memory)]
Name = Annotated[str, AfterValidator(_check_name)]


def _reject_control_characters(value: Any, where: str = "") -> None:
    if isinstance(value, str):
        if any(ch in value for ch in "\n\r\x00"):
            raise ValueError(f"value {value!r} holds a newline or NUL, which would break the job script")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_control_characters(key)
            _reject_control_characters(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_control_characters(item)


class StrictModel(BaseModel):
    """Unknown keys are errors and no string may smuggle a newline into a job script."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, str | list | tuple):
                    try:
                        _reject_control_characters(value)
                    except ValueError as exc:
                        raise ValueError(f"{key}: {exc}") from None
        return data


# ---------------------------------------------------------------- cluster profiles


class Resources(StrictModel):
    nodes: PositiveInt = 1
    ncpus: PositiveInt = 1
    ngpus: NonNegativeInt = 0
    mem: Memory = "4GB"
    walltime: Walltime = "01:00:00"

    @property
    def walltime_seconds(self) -> int:
        return walltime_seconds(self.walltime)

    @property
    def mem_mb(self) -> int:
        return memory_megabytes(self.mem)


class PartialResources(StrictModel):
    """A stage's overrides of the profile's default resources."""

    nodes: PositiveInt | None = None
    ncpus: PositiveInt | None = None
    ngpus: NonNegativeInt | None = None
    mem: Memory | None = None
    walltime: Walltime | None = None


class StageResources(StrictModel):
    """`default` plus one entry per stage type's resources key (`preprocess:`, `train:`, ...); a key that no
    registered stage type uses is an error, so a typo cannot silently fall back to the defaults."""

    model_config = ConfigDict(extra="allow", frozen=True)

    default: Resources = Resources()

    @model_validator(mode="before")
    @classmethod
    def _stage_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or set(data) <= {"default"}:
            return data
        from morphcpt.stages import stage_types

        known = {t.resources_key or t.name for t in stage_types().values()}
        checked: dict[str, Any] = {}
        for key, value in data.items():
            if key == "default":
                checked[key] = value
                continue
            if key not in known:
                raise ValueError(
                    f"{key}: unknown key: no stage type uses resources {key!r} (known: {', '.join(sorted(known))})"
                )
            try:
                checked[key] = PartialResources.model_validate(value)
            except ValidationError as exc:
                error = exc.errors()[0]
                raise ValueError(f"{key}.{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
        return checked

    def overrides(self, key: str) -> PartialResources:
        value = (self.model_extra or {}).get(key)
        return value if isinstance(value, PartialResources) else PartialResources()

    def for_stage(self, key: str, overrides: dict[str, Any] | None = None) -> Resources:
        """The profile's defaults, then its entry for this stage type, then the experiment entry's own."""
        merged = {**self.overrides(key).model_dump(exclude_none=True), **(overrides or {})}
        return self.default.model_copy(update=merged)


class Mount(StrictModel):
    source: str
    target: str
    read_only: bool = False

    @field_validator("source", "target")
    @classmethod
    def _absolute_target(cls, value: str) -> str:
        if ":" in value or "," in value:
            raise ValueError(f"mount path {value!r} may not contain ':' or ','")
        return value

    def spec(self) -> str:
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


class Container(StrictModel):
    runtime: Literal["enroot", "pyxis", "none"] = "none"
    image: str | None = None
    name: Name = "morphcpt-nemo"
    workdir: str = "/workspace"
    mounts: list[Mount] = []

    @model_validator(mode="after")
    def _image_needed(self) -> Container:
        if self.runtime != "none" and not self.image:
            raise ValueError(
                f"image: required when runtime is {self.runtime!r} "
                "(path of the .sqsh written by containers/setup_enroot.sh)"
            )
        return self


class ProfilePaths(StrictModel):
    """Relative paths resolve against `workdir`, which itself defaults to the directory render runs in."""

    workdir: str | None = None
    logs: str = "logs"
    data: str = "data"
    checkpoints: str = "checkpoints"
    models: str = "models"
    results: str = "results"
    runs: str = "runs"


class ClusterProfile(StrictModel):
    name: Name
    description: str = ""
    scheduler: str  # a registered scheduler (morphcpt.cluster): pbs, slurm, sge, local, or a plugin's
    project: str | None = Field(default=None, description="PBS -P / Slurm --account")
    queue: str | None = Field(default=None, description="PBS -q / Slurm --partition")
    qos: str | None = None
    max_array_size: PositiveInt = 1000
    max_concurrent_tasks: PositiveInt | None = None
    resources: StageResources = StageResources()
    container: Container = Container()
    paths: ProfilePaths = ProfilePaths()
    python: str = "python3"
    modules: list[str] = []
    env: dict[str, str] = {}
    setup: list[str] = Field(default=[], description="raw shell lines run before each stage, as written")
    extra_directives: list[str] = []

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return value

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        from morphcpt.cluster import get_scheduler

        try:
            get_scheduler(value)
        except ConfigError as exc:  # pydantic reports ValueErrors with the file and line
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _scheduler_rules(self) -> ClusterProfile:
        from morphcpt.cluster import get_scheduler

        if self.container.runtime == "pyxis" and not get_scheduler(self.scheduler).supports_pyxis:
            raise ValueError(f"container.runtime: pyxis works only with Slurm (srun), not {self.scheduler!r}")
        return self


# ---------------------------------------------------------------- experiments


class DataSource(StrictModel):
    repo_id: str = "aisingapore/SEA-PILE-v2"
    subset: str = "tl"
    revision: str | None = None
    local_path: str | None = Field(default=None, description="a local JSONL/parquet corpus used instead")
    keep_fields: list[str] = []


class DataConfig(StrictModel):
    source: DataSource = DataSource()
    corpus: str = "data/corpora/seapile_tl.jsonl"
    chunks_dir: str = "data/chunks"
    processed_dir: str = "data/processed"
    num_chunks: PositiveInt = 20
    text_key: str = "text"
    tokenizer: str = "google/gemma-3-1b-pt"
    # Documents are tokenized and edited in batches of up to batch_size documents or batch_chars characters
    # of text, whichever comes first: large batches amortise the per-batch cost of the vectorized
    # processors, and the character cap bounds memory on corpora of long documents.
    batch_size: PositiveInt = 4096
    batch_chars: PositiveInt = 1_000_000


_Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class VanillaVariant(StrictModel):
    processor: Literal["vanilla"]


# What `expand_prop` means (docs/architecture.md, "StochasTok's rate", has the measured difference):
# - attempts_per_document: int(len(document) x expand_prop) attempts, each on a uniformly random token of
#   the current (growing) list; an attempt on a token without a split fails. What the StochasTok authors'
#   code does (Sims et al. 2025), and the default, so that published settings mean the same here.
# - per_token: each token is attempted with probability expand_prop and both halves of a split once more
#   (this project's first definition; it realises more splits at the same value).
# - splits_per_document: expand_prop is the target realised rate: about len(document) x expand_prop
#   splits (rounded at random, so short documents are not rounded down), on random splittable tokens.
Expansion = Literal["attempts_per_document", "per_token", "splits_per_document"]


class StochastokVariant(StrictModel):
    processor: Literal["stochastok"]
    expand_prop: _Probability = 0.1
    expansion: Expansion = "attempts_per_document"


class PatokVariant(StrictModel):
    processor: Literal["patok"]
    contract_prop: _Probability = 0.9
    expand_prop: _Probability = 0.1
    # Patok's own code expands non-affix tokens as StochasTok's authors do (int(len x expand_prop) attempts,
    # an affix drawn is drawn again), so it shares the definitions and the default.
    expansion: Expansion = "attempts_per_document"
    affix_awareness: _Probability = 0.95
    num_toks_to_cont: list[PositiveInt] = [2, 3, 4]
    contract_prob: list[_Probability] = [0.35, 0.35, 0.3]

    @model_validator(mode="after")
    def _weights_match(self) -> PatokVariant:
        if len(self.num_toks_to_cont) != len(self.contract_prob):
            raise ValueError("contract_prob: needs one weight per entry of num_toks_to_cont")
        if abs(sum(self.contract_prob) - 1.0) > 1e-6:
            raise ValueError(f"contract_prob: weights must sum to 1, got {sum(self.contract_prob)}")
        if min(self.num_toks_to_cont) < 2:
            raise ValueError("num_toks_to_cont: a contraction joins at least 2 tokens")
        return self


Variant = Annotated[VanillaVariant | StochastokVariant | PatokVariant, Field(discriminator="processor")]


class RunConfig(StrictModel):
    variant: str


def wandb_run_name_fields(template: str) -> set[str]:
    """The placeholders of a `training.wandb_run_name` template; ValueError when it is not a format string."""
    import string

    try:
        return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ValueError(f"{template!r} is not a name template ({exc})") from None


class TrainingConfig(StrictModel):
    backend: str = "nemo"  # a registered training backend (morphcpt.training.backends): nemo, cpu, or a plugin's
    recipe: str = "gemma3_1b"
    pretrained: str = "google/gemma-3-1b-pt"
    seq_length: PositiveInt = 2048
    global_batch_size: PositiveInt = 256
    micro_batch_size: PositiveInt = 2
    lr: float = Field(default=1e-4, gt=0)
    min_lr: float = Field(default=1e-5, ge=0)
    warmup_steps: NonNegativeInt = 500
    weight_decay: float = Field(default=0.1, ge=0)
    clip_grad: float = Field(default=1.0, gt=0)
    precision: Literal["bf16-mixed", "16-mixed", "32"] = "bf16-mixed"
    max_steps: PositiveInt = 10_000
    checkpoint_interval: PositiveInt = 1_000
    val_interval: PositiveInt = 500
    log_interval: PositiveInt = 10
    gpus_per_node: PositiveInt = 8
    num_nodes: PositiveInt = 1
    tensor_parallel: PositiveInt = 1
    pipeline_parallel: PositiveInt = 1
    checkpoints_dir: str = "checkpoints"
    models_dir: str = "models"
    time_budget_margin_seconds: NonNegativeInt = 600
    wandb_project: str = "morphcpt"
    # The W&B name of each run: `{run}` is the run's name, `{experiment}` the experiment's (the seed plan names
    # its runs gemma3-1b-baseline, ...: `wandb_run_name: "gemma3-1b-{run}"`).
    wandb_run_name: str = "{experiment}-{run}"
    tiny_model: dict[str, int] = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128}

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from morphcpt.training.backends import available_backends

        if value not in available_backends():
            raise ValueError(f"unknown training backend {value!r} (known: {', '.join(available_backends())})")
        return value

    @field_validator("wandb_run_name")
    @classmethod
    def _run_name_template(cls, value: str) -> str:
        names = wandb_run_name_fields(value)
        unknown = sorted(names - {"experiment", "run"})
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} in {value!r}; use {{run}} and {{experiment}}")
        if "run" not in names:
            raise ValueError(f"{value!r} has no {{run}}: every run of the experiment would log under one name")
        return value

    @model_validator(mode="after")
    def _batch_arithmetic(self) -> TrainingConfig:
        world = self.gpus_per_node * self.num_nodes
        model_parallel = self.tensor_parallel * self.pipeline_parallel
        if world % model_parallel:
            raise ValueError(f"tensor_parallel x pipeline_parallel ({model_parallel}) must divide GPUs ({world})")
        data_parallel = world // model_parallel
        if self.backend == "nemo" and self.global_batch_size % (data_parallel * self.micro_batch_size):
            raise ValueError(
                f"global_batch_size: {self.global_batch_size} is not divisible by data-parallel size "
                f"{data_parallel} x micro_batch_size {self.micro_batch_size}"
            )
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr: {self.min_lr} is larger than lr {self.lr}")
        return self


class EvaluationConfig(StrictModel):
    benchmarks: list[Literal["pacute", "hierarchical"]] = ["pacute", "hierarchical"]
    eval_mode: Literal["mcq", "gen", "both"] = "both"
    benchmarks_dir: str = "data/benchmarks"
    results_dir: str = "results"
    base_model: str | None = "google/gemma-3-1b-pt"
    items_per_suite: PositiveInt = 300


class StageEntry(StrictModel):
    """One entry of an experiment's `stages:` list (see morphcpt.graph for how entries become jobs)."""

    name: Name
    uses: str
    description: str = ""
    after: list[str] = []
    params: dict[str, Any] = {}
    foreach: dict[str, list[str] | str] | None = None
    array: PositiveInt | None = None
    resources: dict[str, str | int | dict[str, str | int]] = {}
    max_concurrent: PositiveInt | None = None


class Experiment(StrictModel):
    name: Name
    description: str = ""
    seed: int = 1234
    # The language pack (src/morphcpt/languages/<code>/, or one registered by another package) that supplies
    # affixes, segmenter rules, syllabification, benchmark generators and the answer cue.
    language: str = "tl"
    data: DataConfig = DataConfig()
    variants: dict[Name, Variant]
    runs: dict[Name, RunConfig]
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    stages: list[StageEntry]

    @model_validator(mode="after")
    def _runs_use_known_variants(self) -> Experiment:
        for run, config in self.runs.items():
            if config.variant not in self.variants:
                known = ", ".join(sorted(self.variants))
                raise ValueError(f"runs.{run}.variant: unknown variant {config.variant!r} (known: {known})")
        return self

    @model_validator(mode="after")
    def _graph_is_valid(self) -> Experiment:
        from morphcpt.graph import build_graph

        build_graph(self)  # raises GraphError naming the key, e.g. "stages.3.after.0: ..."
        return self


# ---------------------------------------------------------------- loading


def _format_validation_error(source: YamlSource, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        # Cross-field validators name the key they blame at the start of their message ("runs.x.variant: ...").
        named = _NAMED_KEY.match(message)
        if named:
            loc = (*loc, *(int(p) if p.isdigit() else p for p in named.group(1).split(".")))
            message = named.group(2)
        loc = source.file_path_of(loc)
        key = ".".join(str(part) for part in loc) or "(top level)"
        line = source.line_of(loc)
        where = f"{source.path}:{line}" if line else str(source.path)
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and indentation)"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(f"{where}: {key}: {message}")
    return "\n".join(problems)


def _validate(model: type[ModelT], source: YamlSource) -> ModelT:
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None


def resolve_config_path(name_or_path: str | Path, directory: Path, kind: str) -> Path:
    """A config given by name (`local-slurm`) or by path (`configs/clusters/x.yaml`)."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return path
    candidate = directory / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
    raise ConfigError(f"no {kind} named {name_or_path!r} in {directory} (known: {known})")


def load_profile(name_or_path: str | Path) -> ClusterProfile:
    source = load_yaml(resolve_config_path(name_or_path, CLUSTERS_DIR, "cluster profile"))
    return _validate(ClusterProfile, source)


def load_experiment(name_or_path: str | Path) -> Experiment:
    source = load_yaml(resolve_config_path(name_or_path, EXPERIMENTS_DIR, "experiment"))
    return _validate(Experiment, source)
