"""Continued pretraining of one run. Thin entry point kept for the seed's command line:

    ./containers/run_in_enroot.sh python training/nemo/run_cpt.py \
        --data-path data/processed/patok/all --checkpoint-dir checkpoints/patok \
        --wandb-name gemma3-1b-patok --max-steps 10000

The run is found from --run, --wandb-name or --data-path; every other setting comes from the experiment
(default seapile-tl-cpt), so this and `morphcpt train --run patok` train the same thing. Exit status 3
means the time budget was reached with a checkpoint: submit again to resume.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from morphcpt.training.entry import run_seed_command

if __name__ == "__main__":
    sys.exit(run_seed_command(sys.argv[1:]))
