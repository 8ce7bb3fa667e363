"""Exit statuses that stages, job scripts and the controller agree on."""

OK = 0
FAILED = 1
USAGE = 2
# Training stopped at its time budget with a checkpoint: not a failure; resubmit to resume.
TIME_BUDGET_REACHED = 3
