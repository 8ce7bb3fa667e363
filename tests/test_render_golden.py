"""The rendered job sets are the ones the code rendered before stages became plugins.

tests/golden/render/<experiment>-<profile>/ was written by `morphcpt render` at commit 51e62c0 (the fixed
pipeline), with the workdir and the repository path replaced by @WORKDIR@ and @REPO@. A difference here means a
job file changed: if that is intended, re-render the golden copy and say why in the commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, morphcpt

GOLDEN = REPO / "tests" / "golden" / "render"


@pytest.mark.parametrize(
    ("experiment", "profile"), [("seapile-tl-cpt", "pbs-a100"), ("seapile-tl-cpt", "slurm-a100"), ("demo", "local")]
)
def test_rendered_job_set_matches_the_golden_copy(tmp_path: Path, experiment: str, profile: str) -> None:
    name = f"{experiment}-{profile}"
    out = tmp_path / "jobs" / name
    morphcpt("render", "--profile", profile, "--experiment", experiment, "--out", str(out), "--workdir", str(tmp_path))
    golden = GOLDEN / name
    expected = sorted(p.name for p in golden.iterdir())
    assert sorted(p.name for p in out.iterdir()) == expected
    for file_name in expected:
        rendered = (out / file_name).read_text().replace(str(tmp_path), "@WORKDIR@").replace(str(REPO), "@REPO@")
        assert rendered == (golden / file_name).read_text(), f"{name}/{file_name} differs from the golden copy"
