"""Parameter models and command lines the built-in stage types share."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from morphcpt.stages.base import StageParams

if TYPE_CHECKING:
    from morphcpt.context import RunContext


class VariantParams(StageParams):
    variant: str


class RunParams(StageParams):
    run: str


def morphcpt_command(ctx: RunContext, *args: str, python: str = sys.executable) -> list[str]:
    """`python -m morphcpt <args> --experiment <file>`: the same command the stage templates run."""
    return [python, "-m", "morphcpt", args[0], "--experiment", ctx.experiment_ref, *args[1:]]


def known_variant(experiment: object, variant: str) -> list[str]:
    variants = experiment.variants  # type: ignore[attr-defined]
    if variant in variants:
        return []
    return [f"foreach.variant: unknown variant {variant!r} (the experiment's variants: {', '.join(variants)})"]


def known_run(experiment: object, run: str) -> list[str]:
    runs = experiment.runs  # type: ignore[attr-defined]
    if run in runs:
        return []
    return [f"foreach.run: unknown run {run!r} (the experiment's runs: {', '.join(runs)})"]
