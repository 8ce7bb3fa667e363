"""batchsh: this machine's processes as a "scheduler" with its own header and script suffix, from outside
morphcpt. It reuses morphcpt's local backend for the controller; a real scheduler would bring its own."""

from __future__ import annotations

from pathlib import Path

from morphcpt.cluster.local import LocalScheduler


class BatchShScheduler(LocalScheduler):
    name = "batchsh"
    script_suffix = ".batch"
    header_template = "batchsh/header.j2"
    template_dirs = (Path(__file__).parent / "templates",)  # where morphcpt's Jinja loader finds the header
    job_id_variable = "BATCHSH_JOB_ID"
