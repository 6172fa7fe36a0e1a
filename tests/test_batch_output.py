"""Runs you can follow in batch mode (Slurm, nohup, CI): with stdout not a terminal, one log line
per epoch, on stdout and in the run's train.log, each record printed once, the run directory said
first, and a sweep that ends with its jobs' outcomes and the report command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rolefusion.runs.sweep_summary import sweep_summary

from conftest import TINY_DATA

LOG_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\]\[[\w.]+\]\[[A-Z]+\] - ")
"""A line of Hydra's log format: ``[date time][logger][LEVEL] - message``."""


def epochs_of(lines: list[str]) -> list[str]:
    """``["1/3", "2/3", ...]``: the epoch of each per-epoch metrics line."""
    found = (re.search(r"\]\[rolefusion\.runs\.epoch_lines\]\[INFO\] - epoch (\d+/\d+) ", line)
             for line in lines)  # fmt: skip
    return [match[1] for match in found if match]


@pytest.mark.slow
def test_a_piped_sweep_logs_each_epoch_once_and_ends_with_its_summary(
    tmp_path: Path, data_dir: Path
) -> None:
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "rolefusion.train", "-m", "seed=1,2", *TINY_DATA,
         "trainer.max_epochs=3", "test=false", f"paths.data_dir={data_dir}",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    records = [line for line in lines if LOG_RECORD.match(line)]
    assert len(records) == len(set(records)), "a log record printed twice"
    # Lightning's records go through Hydra's handlers only, not also through its own (stderr).
    assert not [line for line in done.stderr.splitlines() if line.startswith(("INFO:", "WARN"))]
    assert not [line for line in lines if line.startswith("Epoch ")]  # no progress bar
    assert epochs_of(lines) == ["1/3", "2/3", "3/3"] * 2
    for job in ("0", "1"):
        log_file = (sweep / job / "train.log").read_text().splitlines()
        epoch_lines = [line for line in log_file if epochs_of([line])]
        assert epochs_of(epoch_lines) == ["1/3", "2/3", "3/3"]
        assert all("train/loss=" in line and "val/f1=" in line for line in epoch_lines)
        assert set(log_file) <= set(records)  # the job's log file says what stdout said
        announced = next(i for i, line in enumerate(lines)
                         if line.endswith(f" - run directory: {sweep / job}"))  # fmt: skip
        assert announced < lines.index(epoch_lines[0])
    assert lines[-6:] == [
        f"sweep {sweep}: 2 jobs",
        "  done          2",
        "  failed        0",
        "  pruned        0",
        "  not finished  0",
        f"next: rolefusion-report {sweep}",
    ]


def job(sweep: Path, number: int, seed: int, **files: dict) -> None:
    """A job directory of ``sweep`` as a run leaves it: its overrides and ``files``."""
    (sweep / str(number) / ".hydra").mkdir(parents=True)
    (sweep / str(number) / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
    for name, content in files.items():
        (sweep / str(number) / f"{name}.json").write_text(json.dumps(content))


def test_the_sweep_summary_counts_each_outcome_and_names_the_failures(tmp_path: Path) -> None:
    job(tmp_path, 0, 1, metrics={"metrics": {"val/f1_best": 0.9}})
    job(tmp_path, 1, 2, failed={"error": "ValueError", "message": "no scenes\nat all"})
    job(tmp_path, 2, 3)  # killed, or still running
    assert sweep_summary(tmp_path).splitlines() == [
        f"sweep {tmp_path}: 3 jobs",
        "  done          1",
        "  failed        1",
        "  pruned        0",
        "  not finished  1",
        "  failed: 1: ValueError: no scenes",
        f"next: rolefusion-report {tmp_path}",
    ]
