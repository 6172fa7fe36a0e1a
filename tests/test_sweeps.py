"""Sweeps as users run them: a multirun, its report, a killed sweep resumed, a failing job."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolefusion.commands.report import report

from conftest import TINY_DATA

pytestmark = pytest.mark.slow

FAST = [*TINY_DATA, "trainer.max_epochs=1", "data.source.num_train=48"]


def sweep_command(tmp_path: Path, data_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "rolefusion.train", "-m", *overrides, *FAST,
            f"paths.log_dir={tmp_path / 'outputs'}", f"paths.data_dir={data_dir}"]  # fmt: skip


def run_sweep(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip


def the_sweep_dir(tmp_path: Path, task: str) -> Path:
    [sweep_dir] = (tmp_path / "outputs" / task / "multirun").iterdir()
    return sweep_dir


def test_quick_sweep_and_its_report(tmp_path: Path, data_dir: Path) -> None:
    result = run_sweep(sweep_command(tmp_path, data_dir, "experiment=quick_sweep"), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = the_sweep_dir(tmp_path, "quick_sweep")
    report(sweep_dir)
    with (sweep_dir / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["model/fusion"] for row in rows) == ["concat", "gated"]
    for row in rows:
        assert (row["n"], row["jobs"], row["failed"]) == ("2", "2", "0")
        jobs = [
            job
            for job in sweep_dir.iterdir()
            if job.is_dir()
            and f"model/fusion={row['model/fusion']}"
            in (job / ".hydra" / "overrides.yaml").read_text()
        ]
        f1 = [json.loads((job / "metrics.json").read_text())["metrics"]["test/f1"] for job in jobs]
        assert float(row["test/f1_mean"]) == pytest.approx(sum(f1) / 2, abs=1e-6)
        assert float(row["test/f1_std"]) == pytest.approx(abs(f1[0] - f1[1]) / 2**0.5, abs=1e-6)
        assert float(row["test/f1_ci_low"]) <= float(row["test/f1_mean"])
        assert all((job / "predictions.csv").is_file() for job in jobs)
        # Which modality each configuration rests on, and its calibration, averaged like F1.
        shares = [float(row[f"test/share_{m}_mean"]) for m in ("image", "text")]
        assert sum(shares) == pytest.approx(1, abs=1e-6) and min(shares) > 0
        assert 0 <= float(row["test/ece_mean"]) <= 1 and 0 <= float(row["test/brier_mean"]) <= 2
    # Ranked by the sweep's optimised metric on validation; the runner-up tested against it.
    assert float(rows[0]["val/f1_best_mean"]) >= float(rows[1]["val/f1_best_mean"])
    assert rows[0]["verdict"] == "best" and rows[0]["p"] == ""
    assert rows[1]["verdict"] in ("tied", "worse", "better") and 0 <= float(rows[1]["p"]) <= 1
    text = (sweep_dir / "report.md").read_text()
    assert text.count("| concat |") == 1 and "p (Holm)" in text
    assert "test/share_image" in text and "test/share_text" in text
    for plot in ("f1_by_configuration.png", "per_class_f1.png", "confusion_best.png"):
        assert (sweep_dir / plot).stat().st_size > 1000


def test_a_killed_sweep_resumes_without_retraining_finished_jobs(
    tmp_path: Path, data_dir: Path
) -> None:
    command = sweep_command(tmp_path, data_dir, "model/fusion=concat,late,gated")
    sweep = subprocess.Popen(command, cwd=tmp_path, env=os.environ | {"OMP_NUM_THREADS": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while not list((tmp_path / "outputs").glob("train/multirun/*/0/metrics.json")):
        assert time.monotonic() < deadline and sweep.poll() is None
        time.sleep(0.5)
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.wait()
    sweep_dir = the_sweep_dir(tmp_path, "train")
    first = sweep_dir / "0" / "metrics.json"
    finished_at = first.stat().st_mtime_ns
    assert not (sweep_dir / "2" / "metrics.json").exists()

    result = run_sweep(command, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert first.stat().st_mtime_ns == finished_at  # not trained again
    assert "already holds this run's metrics.json" in result.stderr + result.stdout
    assert all((sweep_dir / str(n) / "metrics.json").is_file() for n in range(3))


def test_a_failing_job_is_recorded_and_the_others_run(tmp_path: Path, data_dir: Path) -> None:
    # head_dropout=2 is no probability: the config check refuses it, naming the key.
    command = sweep_command(tmp_path, data_dir, "model.head_dropout=0.1,2.0")
    result = run_sweep(command, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = the_sweep_dir(tmp_path, "train")
    assert (sweep_dir / "0" / "metrics.json").is_file()
    failure = json.loads((sweep_dir / "1" / "failed.json").read_text())
    assert "model.head_dropout: expected float >= 0 and < 1" in failure["message"]
    report(sweep_dir)
    text = (sweep_dir / "report.md").read_text()
    assert "## Failed jobs" in text and "ConfigError" in text
