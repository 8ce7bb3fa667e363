"""Pre-flight checks for a cluster profile. Thin entry point: `morphcpt verify-setup` does the work.

python scripts/verify_setup.py --profile pbs-a100 [--experiment seapile-tl-cpt]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from morphcpt.cli import cli

if __name__ == "__main__":
    cli(["verify-setup", *sys.argv[1:]], prog_name="verify_setup.py")
