"""Score models on the benchmarks, independent of any experiment file.

python scripts/run_evaluation.py --models models/baseline models/patok --benchmarks pacute hierarchical \
    --eval-mode both [--benchmarks-dir data/benchmarks] [--results-dir results] [--language tl] [--lang en tl]

A model is a Hugging Face folder, a hub id, or a training checkpoint: a NeMo 2 checkpoint (a directory with
context/ and weights/, or one holding such checkpoints: the latest is taken) or a CPU run's checkpoint
directory (checkpoints/<run>). A checkpoint is converted by the export stage's code into <path>.hf/ beside it,
once; NeMo's conversion needs NeMo (containers/run_in_enroot.sh python scripts/run_evaluation.py ...).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.run import evaluate_models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models", nargs="+", required=True, help="HF model directories, hub ids or training checkpoint directories"
    )
    parser.add_argument(
        "--tokenizer",
        help="for checkpoints that carry no tokenizer (the CPU backend's): the experiment's data.tokenizer",
    )
    parser.add_argument("--benchmarks", nargs="+", default=["pacute", "hierarchical"])
    parser.add_argument("--eval-mode", choices=["mcq", "gen", "both"], default="both")
    parser.add_argument("--benchmarks-dir", type=Path, default=Path("data/benchmarks"))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--language", default="tl", help="language pack of the benchmarks (its answer cues)")
    parser.add_argument("--lang", nargs="+", default=["en"], help="prompt language(s) of that pack")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    try:
        for path in evaluate_models(
            args.models,
            args.benchmarks,
            args.eval_mode,
            args.benchmarks_dir,
            args.results_dir,
            args.lang,
            args.device,
            language=args.language,
            tokenizer=args.tokenizer,
        ):
            print(f"summary: {path}")
    except MorphcptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
