"""Split a JSONL corpus into chunks. Thin entry point for `morphcpt split`.

python training/nemo/data/split_jsonl.py --input data/corpora/seapile-v2-filipino.jsonl \
    --output-dir data/chunks --num-chunks 20
python training/nemo/data/split_jsonl.py --experiment seapile-tl-cpt

--input, --output-dir and --num-chunks stand in for the experiment's data.corpus, data.chunks_dir and
data.num_chunks.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from morphcpt.cli import cli

if __name__ == "__main__":
    cli(["split", *sys.argv[1:]], prog_name="split_jsonl.py")
