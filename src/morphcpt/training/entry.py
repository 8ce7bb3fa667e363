"""The seed's `training/nemo/run_cpt.py` command line, mapped onto the experiment's run plan."""

from __future__ import annotations

import sys

from morphcpt.config import EXPERIMENTS_DIR, load_experiment, resolve_config_path
from morphcpt.errors import MorphcptError
from morphcpt.training.backends import get_backend
from morphcpt.training.plan import deadline_from_environment, plan_from_seed_args, seed_argument_parser


def run_seed_command(argv: list[str]) -> int:
    args = seed_argument_parser().parse_args(argv)
    try:
        experiment = load_experiment(resolve_config_path(args.experiment, EXPERIMENTS_DIR, "experiment"))
        plan = plan_from_seed_args(experiment, args)
        backend = get_backend(plan.backend)
        if args.dry_run:
            from morphcpt.cli import print_plans

            print_plans([plan])
            description = backend.describe(experiment, [plan])
            if description:
                print(description)
            return 0
        deadline = deadline_from_environment(experiment.training.time_budget_margin_seconds, args.time_budget)
        result = backend.train(experiment, plan, deadline)
    except MorphcptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{plan.run}: step {result.step}, exit status {result.status}")
    return result.status
