"""Which runs of a sweep Slurm still has: what ``rolefusion-report`` counts as running.

A stand-in ``squeue`` on the ``PATH`` plays Slurm here; ``test_slurm.py`` asks a real one."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rolefusion.commands.report import read_jobs
from rolefusion.runs.job_states import (
    SubmittedRun,
    queued,
    record_submitted,
    still_queued,
    submitted_runs,
)
from rolefusion.runs.sweep_summary import SweepSummary


@pytest.fixture
def squeue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``squeue`` that lists job 7_0 (as ``squeue --me -h -r -o %i`` would), first on the
    ``PATH``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "squeue"
    script.write_text("#!/bin/sh\necho 7_0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return script


def sweep_of_two(tmp_path: Path) -> Path:
    """A sweep of two runs as the launcher records them; run 1 has started (its directory)."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    record_submitted(sweep, [SubmittedRun("7_0", "0", ["model/fusion=concat"]),
                             SubmittedRun("7_1", "1", ["model/fusion=late"])])  # fmt: skip
    (sweep / "1" / ".hydra").mkdir(parents=True)
    (sweep / "1" / ".hydra" / "overrides.yaml").write_text("- model/fusion=late\n")
    return sweep


def test_a_run_slurm_still_has_counts_as_running_even_before_its_directory_exists(
    tmp_path: Path, squeue: Path
) -> None:
    jobs = {job.directory.name: job for job in read_jobs(sweep_of_two(tmp_path))}
    assert jobs["0"].status == "running"  # pending: no directory yet, known from the record
    assert jobs["0"].overrides == {"model/fusion": "concat"}
    assert jobs["1"].status == "incomplete"  # no longer queued, no metrics.json


def test_without_squeue_nothing_counts_as_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert queued(["7_0"]) is None
    jobs = read_jobs(sweep_of_two(tmp_path))
    assert [(job.directory.name, job.status) for job in jobs] == [("1", "incomplete")]


def test_a_resubmitted_run_keeps_its_newest_slurm_id(tmp_path: Path) -> None:
    sweep = sweep_of_two(tmp_path)
    record_submitted(sweep, [SubmittedRun("9_0", "1", ["model/fusion=late"])])
    assert [(run.directory, run.slurm_id) for run in submitted_runs(sweep)] == [
        ("0", "7_0"),
        ("1", "9_0"),
    ]


def test_a_run_directory_whose_job_slurm_still_has_is_named_before_a_new_submission(
    tmp_path: Path, squeue: Path
) -> None:
    sweep = sweep_of_two(tmp_path)
    assert still_queued(sweep, ["0", "1"]) == ["7_0"]
    assert still_queued(sweep, ["1", "2"]) == []  # 7_1 has ended: its directory is free


@pytest.mark.parametrize(
    ("wait", "counted"), [(True, "failed        1"), (False, "running       1")]
)
def test_a_waited_sweep_counts_a_job_slurm_still_lists_by_its_result(
    tmp_path: Path, squeue: Path, capsys: pytest.CaptureFixture[str], wait: bool, counted: str
) -> None:
    """The launcher has a job's result as soon as its function returns, and a multi-node job
    may stay in ``squeue`` a moment longer while its tasks exit: once a sweep has waited for
    every job, none is running. Without waiting, Slurm's word is all there is."""
    sweep = sweep_of_two(tmp_path)
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text("- model/fusion=concat\n")
    (sweep / "0" / "failed.json").write_text(json.dumps({"error": "E", "message": "m"}))
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}, "launcher": {"wait": wait}}})
    SweepSummary().on_multirun_end(config)
    summary = capsys.readouterr().out
    assert counted in summary, summary
    assert ("  failed: 0: E: m" in summary) is wait
