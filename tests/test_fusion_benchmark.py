"""scripts/fusion_benchmark.py end to end on a tiny budget: the sweeps run through the sweep
runner, and the report ranks every family's fusions with their ceilings, the paired test's
verdicts, a heatmap and learning curves, in one command and again from the finished runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "fusion_benchmark.py"


@pytest.mark.slow
def test_the_benchmark_runs_and_reports_every_family_with_ceilings_and_verdicts(tmp_path) -> None:
    work, out = tmp_path / "work", tmp_path / "docs" / "fusion_benchmark.md"
    tiny = [
        "data.source.num_val=32", "data.source.num_test=64", "data.source.image_size=16",
        "data.batch_size=32", f"paths.root_dir={tmp_path}", f"paths.data_dir={tmp_path}/data",
    ]  # fmt: skip
    common = ["--work", str(work), "--out", str(out)]
    subprocess.run(
        [sys.executable, str(SCRIPT), "run", "--parallel", "2", "--seeds", "1",
         "--fusions", "late", "concat", "text_only", "--families", "synergy",
         "--sizes", "50", "--main-size", "100", "--budget-scale", "0.01", "--resamples", "200",
         "--override", *tiny, *common],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert (work / "timing.json").is_file()
    assert "## Learning curves" in out.read_text()  # one command trains and reports
    out.unlink()
    subprocess.run(
        [sys.executable, str(SCRIPT), "report", "--resamples", "200", *common],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    text = out.read_text()
    for section in ("## synergy", "### synergy", "## Learning curves"):
        assert section in text
    assert "additive 0.714" in text  # late fusion's ceiling on synergy, beside its row
    assert "≤ 0.714 (additive)" in text  # the theory's bound where it is below the full one
    rows = [line for line in text.splitlines() if line.startswith("| 1 | ")]
    assert len(rows) == 1 and rows[0].rstrip().endswith("| best |")
    assert (out.parent / "images" / "fusion_benchmark.png").stat().st_size > 10_000
    assert (out.parent / "images" / "fusion_benchmark_curves.png").stat().st_size > 10_000
    table = json.loads(out.with_suffix(".json").read_text())
    sizes = defaultdict(set)
    for row in table:
        sizes[row["model/fusion"]].add(row["num_train"])
    assert sizes == {"late": {50, 100}, "concat": {50, 100}, "text_only": {100}}
    assert "| text_only | - | " in text  # the curve's other size leaves the baseline out
    assert {row["verdict"] for row in table} <= {"best", "tied", "worse", "better"}
    assert all(row["n"] == 1 for row in table)
    assert "(n=1)" in text  # one seed: no interval, said so


def test_the_reported_time_adds_up_sittings_without_the_gap_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    from fusion_benchmark import busy_time

    # Two jobs side by side (overlapping), then a resumed sitting an hour later, which skipped
    # "a" and "b" (Hydra rewrote their .hydra/ then) and trained "c".
    for name, start, stop in (("a", 0, 100), ("b", 50, 150), ("c", 3600, 3700)):
        job = tmp_path / "family_n100" / name
        (job / ".hydra").mkdir(parents=True)
        for file, stamp in ((job / "config.yaml", start), (job / "metrics.json", stop),
                            (job / ".hydra" / "config.yaml", 3600)):  # fmt: skip
            file.write_text("{}")
            os.utime(file, (stamp, stamp))
    assert busy_time(tmp_path) == (250, 2)
