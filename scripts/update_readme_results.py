"""Write the demo's PACUTE MCQ table and plot into README.md from the demo's own results (after `make demo`).

The table between the `demo-results` comment markers is replaced by the MCQ rows of results/report.md's
PACUTE section, and results/pacute_mcq.png is copied to docs/demo_pacute_mcq.png: README figures come from a
command, never by hand.
"""

from __future__ import annotations

import re
import shutil
import sys
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


def main(results: Path = REPO / "results") -> int:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    table = pacute_mcq_table(results / "report.md")
    block = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not block.search(text):
        raise SystemExit(f"{readme}: no {START} ... {END} block")
    readme.write_text(block.sub(lambda _: f"{START}\n{table}\n{END}", text), encoding="utf-8")
    shutil.copyfile(results / "pacute_mcq.png", REPO / "docs" / "demo_pacute_mcq.png")
    print(f"README.md: demo table from {results / 'report.md'}; docs/demo_pacute_mcq.png from {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "results"))
