"""morphcpt: continued-pretraining experiments on PBS Pro, Slurm or this machine."""

__version__ = "0.1.0"
