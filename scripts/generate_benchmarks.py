"""Generate the benchmarks of an experiment. Thin entry point for `morphcpt benchmarks`.

python scripts/generate_benchmarks.py --experiment demo [--count 300] [--out data/benchmarks]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from morphcpt.cli import cli

if __name__ == "__main__":
    cli(["benchmarks", *sys.argv[1:]], prog_name="generate_benchmarks.py")
