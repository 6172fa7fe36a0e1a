"""``scripts/benchmark.py`` end to end on tiny data: every section runs and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_benchmark_measures_every_section_and_writes_its_report(tmp_path, data_dir):
    out = tmp_path / "performance.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", f"--out={out}",
         f"--work={tmp_path}", f"--data-dir={data_dir}"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    for row in figures["overhead"].values():
        assert len(row["framework_examples_per_s"]) == len(row["hand_written_examples_per_s"]) == 1
        assert row["ratio"] > 0 and all(r > 0 for r in row["paired_ratios"])
    assert 0 <= figures["data"]["wait_share"] < 1
    assert figures["data"]["loader_over_model"] > 0
    assert set(figures["startup"]) >= {"rolefusion-train --help", "import torch, lightning"}
    assert [row["examples"] for row in figures["scaling"]["by_data_size"]] == [128, 256]
    assert [row["pixels"] for row in figures["scaling"]["by_image_size"]] == [32, 64]
    assert 0 < figures["utilisation"]["mfu"] < 1
    report = out.with_suffix(".md").read_text()
    for heading in ("## Framework overhead", "## Data supply", "## Start-up", "## Scaling",
                    "## Model FLOP utilisation", "## Distributed runs"):  # fmt: skip
        assert heading in report, heading
