"""Rendering of PBS, Slurm and local job scripts from job_templates/."""

from morphcpt.render.scripts import RenderTarget, render_experiment, render_job, submission_script

__all__ = ["RenderTarget", "render_experiment", "render_job", "submission_script"]
