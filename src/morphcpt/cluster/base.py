"""What a scheduler is to morphcpt: everything about it in one class, so no other module branches on its name.

A scheduler module (cluster/pbs.py, slurm.py, sge.py, local.py, or one from another package registered through
the `morphcpt.schedulers` entry-point group) defines a `Scheduler` subclass with the facts below and a
`backend()` that the controller submits, polls and cancels through.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from morphcpt.config import Resources
    from morphcpt.controller.executors import Backend
    from morphcpt.render.scripts import RenderTarget


class Scheduler:
    name: ClassVar[str]  # the profile's `scheduler:` value
    script_suffix: ClassVar[str]  # of rendered scripts: .pbs, .sbatch, .sge, .sh
    header_template: ClassVar[str]  # under job_templates/, e.g. "pbs/header.j2"
    index_variable: ClassVar[str | None] = None  # the array task index the scheduler sets, e.g. PBS_ARRAY_INDEX
    job_id_variable: ClassVar[str | None] = None  # the job id it sets, e.g. PBS_JOBID
    native_dependencies: ClassVar[bool] = True  # jobs wait for their dependencies in the scheduler itself
    min_array_size: ClassVar[int] = 1  # PBS Pro rejects an array of one subjob: 2
    supports_pyxis: ClassVar[bool] = False  # container.runtime: pyxis (srun --container-image)
    first_array_index: ClassVar[int] = 0  # of the controller's arrays (Grid Engine counts from 1)
    tools: ClassVar[tuple[str, ...]] = ()  # commands a login node needs (verify-setup checks them)
    template_dirs: ClassVar[tuple[Path, ...]] = ()  # extra template folders (a plugin's header lives there)

    # ---------------------------------------------------------------- rendering

    def array_directive(self, count: int) -> bool:
        """Whether `count` tasks are submitted as an array (else a plain job with a fixed index)."""
        return self.native_dependencies and count >= self.min_array_size

    def memory(self, resources: Resources) -> str:
        """The memory request as the header writes it."""
        mb = resources.mem_mb
        return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"

    def log_path(self, logs: Path, job_name: str, array: bool) -> str:
        """Where a hand-submitted job logs (array: one file per task, named by the scheduler)."""
        return str(logs / f"{job_name}.log")

    def submit_line(
        self,
        var: str,
        job_name: str,
        script: str,
        depends: list[str],
        array_size: int | None,
        after_any: tuple[str, ...] | list[str] = (),
    ) -> str:
        """The line of submit_all that submits `script` and stores its id in `var`. It starts after the jobs
        whose ids are in the shell variables `depends` succeeded (afterok: it needs their outputs), and after
        those in `after_any` ended, whatever their outcome (its turn under its entry's max_concurrent)."""
        raise NotImplementedError

    def submit_preamble(self) -> list[str]:
        """Comment lines at the top of submit_all, after `cd`."""
        return []

    def node_list(self) -> str:
        """bash that prints the job's hosts, one per line (multi-node jobs)."""
        return "printf '%s\\n' localhost"

    def remote_launch(self) -> str:
        """bash words that run the next words on host "${MORPHCPT_NODES[$rank]}" (multi-node jobs)."""
        raise NotImplementedError(f"scheduler {self.name} has no multi-node launcher")

    # ---------------------------------------------------------------- controller

    def backend(self, target: RenderTarget, folder: Path) -> Backend:
        raise NotImplementedError
