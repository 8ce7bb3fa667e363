"""Download SEA-PILE v2 Filipino as JSONL. Thin entry point for `morphcpt download`.

HF_TOKEN=... python scripts/download_seapile.py --output data/corpora/seapile-v2-filipino.jsonl --language fil
HF_TOKEN=... python scripts/download_seapile.py --experiment seapile-tl-cpt

--output and --language (fil, tgl or tl) stand in for the experiment's data.corpus and data.source.subset.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from morphcpt.cli import cli

if __name__ == "__main__":
    cli(["download", *sys.argv[1:]], prog_name="download_seapile.py")
