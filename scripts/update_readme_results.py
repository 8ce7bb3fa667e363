"""Write the demo's PACUTE MCQ table and plot into README.md from a demo run's own results.

The table between the `demo-results` comment markers is replaced by the MCQ rows of the run's
results/report.md PACUTE section, with a line naming the commit and date of the run, and its
results/pacute_mcq.png is copied to docs/demo_pacute_mcq.png: README figures come from a command, never by hand.

    make demo-readme     # a fresh demo in a clean clone of HEAD (build/demo-readme), then this script on it
    make readme-results  # this script on the last `make demo` in this checkout (commit: this checkout's HEAD)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- demo-results:start -->", "<!-- demo-results:end -->"


def pacute_mcq_table(report: Path) -> str:
    rows = [line for line in report.read_text(encoding="utf-8").splitlines() if line.startswith("| pacute |")]
    mcq = [line.split("|")[1:-1] for line in rows if line.split("|")[3].strip() == "mcq"]
    if not mcq:
        raise SystemExit(f"{report}: no PACUTE MCQ rows; run `make demo` first")
    header = next(line for line in report.read_text(encoding="utf-8").splitlines() if line.startswith("| benchmark"))
    models = [cell.strip() for cell in header.split("|")[1:-1]][3:]
    lines = ["| suite | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    lines += ["| " + " | ".join([cells[1].strip(), *(c.strip() for c in cells[3:])]) + " |" for cells in mcq]
    return "\n".join(lines)


def run_stamp(checkout: Path, report: Path) -> str:
    """'commit abc1234 (2026-12-02)': the checkout's HEAD, marked when it has uncommitted changes to tracked
    files (then the run is not exactly that commit), and the day the report was written."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True).stdout

    commit = git("rev-parse", "--short=10", "HEAD").strip()
    dirty = " plus uncommitted changes" if git("status", "--porcelain", "--untracked-files=no").strip() else ""
    day = datetime.fromtimestamp(report.stat().st_mtime, UTC).strftime("%Y-%m-%d")
    return f"commit {commit}{dirty} ({day})"


def main(results: Path, checkout: Path) -> int:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    table = pacute_mcq_table(results / "report.md")
    table += f"\n\nFrom the demo run of {run_stamp(checkout, results / 'report.md')}, written by `make demo-readme`."
    block = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not block.search(text):
        raise SystemExit(f"{readme}: no {START} ... {END} block")
    readme.write_text(block.sub(lambda _: f"{START}\n{table}\n{END}", text), encoding="utf-8")
    shutil.copyfile(results / "pacute_mcq.png", REPO / "docs" / "demo_pacute_mcq.png")
    print(f"README.md: demo table from {results / 'report.md'}; docs/demo_pacute_mcq.png from {results}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="README's demo table and plot from a demo run's results")
    parser.add_argument("results", nargs="?", type=Path, default=REPO / "results")
    parser.add_argument("--checkout", type=Path, default=REPO, help="the git checkout the run ran from")
    args = parser.parse_args()
    raise SystemExit(main(args.results, args.checkout))
