"""Tables and plots from evaluation results. Thin entry point for `morphcpt analyze`.

python scripts/analyze_inference_results.py --results-dir results/ [--reference baseline] [--data-stats F]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from morphcpt.cli import cli

if __name__ == "__main__":
    cli(["analyze", *sys.argv[1:]], prog_name="analyze_inference_results.py")
