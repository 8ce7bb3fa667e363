"""The Jinja environment: undefined names fail, and every value bound for the shell goes through `q`."""

from __future__ import annotations

import re
import shlex
from functools import cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from morphcpt.config import REPO_ROOT
from morphcpt.errors import MorphcptError

TEMPLATES_DIR = REPO_ROOT / "job_templates"


def shell_quote(value: Any) -> str:
    """Quote for bash: the value reaches the job verbatim and is never expanded or executed."""
    return shlex.quote(str(value))


_DIRECTIVE_SAFE = re.compile(r"[\w@%+=:,./^-]+")


def directive_quote(value: Any) -> str:
    """Quote a scheduler directive's value only when needed: PBS and Slurm both parse quotes there."""
    text = str(value)
    return text if _DIRECTIVE_SAFE.fullmatch(text) else shlex.quote(text)


def _scheduler_loaders() -> list[FileSystemLoader]:
    """Template folders that scheduler plugins bring (their headers), after morphcpt's own."""
    from morphcpt.cluster import get_scheduler, scheduler_names

    folders = [str(d) for name in scheduler_names() for d in get_scheduler(name).template_dirs]
    return [FileSystemLoader(folders)] if folders else []


@cache
def template_environment() -> Environment:
    if not TEMPLATES_DIR.is_dir():
        raise MorphcptError(
            f"no job templates at {TEMPLATES_DIR}: run morphcpt inside a morphcpt checkout (its job_templates/ and "
            "configs/ are the repository's), or point MORPHCPT_REPO at one"
        )
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(TEMPLATES_DIR)), *_scheduler_loaders()]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        # bash uses {# in ${#array[@]}, so Jinja comments need other delimiters.
        comment_start_string="{##",
        comment_end_string="##}",
    )
    env.filters["q"] = shell_quote
    env.filters["dq"] = directive_quote
    return env
