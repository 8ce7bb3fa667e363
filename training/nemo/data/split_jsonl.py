"""Split the experiment's JSONL corpus into chunks. Thin entry point for `morphcpt split`.

python training/nemo/data/split_jsonl.py --experiment seapile-tl-cpt
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from morphcpt.cli import cli

if __name__ == "__main__":
    cli(["split", *sys.argv[1:]], prog_name="split_jsonl.py")
