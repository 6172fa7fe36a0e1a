"""``scripts/benchmark_sweep_cost.py``: the cost model's arithmetic on hand-made numbers, the
published figures against their JSON, and the script end to end on tiny data (its GPU rows
where there is a GPU)."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark_sweep_cost import (  # noqa: E402
    CORES_PER_JOB,
    EPOCHS,
    OUT,
    SEEDS,
    batched_wall_time,
    job_seconds,
    markdown,
    parts,
    sweep,
    wall_time,
)

LOG = """[2026-12-02 10:00:00,000][rolefusion.commands.train][INFO] - run directory: /x
[2026-12-02 10:00:02,500][lightning.pytorch.utilities.rank_zero][INFO] - GPU available: False
[2026-12-02 10:00:10,500][rolefusion.runs.epoch_lines][INFO] - epoch 1/1  train/loss=1.0
an unstamped line
[2026-12-02 10:00:13,000][rolefusion.commands.train][INFO] - metrics: /x/metrics.json
"""


def test_a_job_is_cut_into_start_up_epoch_and_test_by_its_log():
    cut = parts(LOG, wall_s=20.0)
    assert cut == pytest.approx({"epoch_s": 8.0, "test_s": 2.5, "startup_s": 9.5})
    assert job_seconds(cut, epochs=5) == pytest.approx(9.5 + 5 * 8.0 + 2.5)


def test_jobs_start_in_order_as_slots_free_up():
    assert wall_time([4, 1, 1, 1, 1], slots=2) == 4  # the long one, the short ones beside it
    assert wall_time([1, 1, 1, 1, 4], slots=2) == 6  # the long one last waits for a slot
    assert wall_time([3, 3, 3], slots=1) == 9 == sum([3, 3, 3])
    assert wall_time([3, 3, 3], slots=72) == 3
    assert batched_wall_time([4, 1, 1, 1], batch=2) == 5  # each pair waits for its slowest


def job(startup_s: float, epoch_s: float, test_s: float, *repeats: float) -> dict:
    """A measured job: its median parts, and its rounds' epoch times (the other parts equal)."""
    cuts = [{"startup_s": startup_s, "epoch_s": e, "test_s": test_s} for e in repeats]
    return {"startup_s": startup_s, "epoch_s": epoch_s, "test_s": test_s, "repeats": cuts}


def test_a_sweep_counts_every_seed_and_its_cores():
    jobs = [job(10, 20, 5, 19, 20, 22), job(10, 2, 5, 2, 3, 2)]
    result = sweep(jobs, seeds=3, epochs=5)
    assert result["jobs"] == 6
    assert result["core_hours"] == pytest.approx(3 * (115 + 25) * CORES_PER_JOB / 3600)
    assert result["wall_h"]["1"] == pytest.approx(3 * (115 + 25) / 3600)
    # Slots of 115 and 115 s, then the third 115 s job after one, the 25 s ones after the other.
    assert result["wall_h"]["2"] == pytest.approx(2 * 115 / 3600)
    # Rounds: 110 + 25, 115 + 30, 125 + 25 seconds a seed; the spread is theirs.
    rounds = [3 * total * CORES_PER_JOB / 3600 for total in (135, 145, 150)]
    assert result["core_hours_range"] == pytest.approx([min(rounds), max(rounds)])
    on_gpus = sweep(jobs, seeds=3, epochs=5, device="cuda")  # one GPU a job, not its cores
    assert on_gpus["gpu_hours"] == pytest.approx(3 * (115 + 25) / 3600)
    assert on_gpus["gpu_hours_range"] == pytest.approx([3 * 135 / 3600, 3 * 150 / 3600])
    assert "core_hours" not in on_gpus and on_gpus["wall_h"] == result["wall_h"]


def test_gpu_rows_join_the_cpu_ones_in_the_report():
    figures = json.loads(OUT.read_text())
    assert "No GPU has been lent" in markdown(figures) and "one GPU a job" not in markdown(figures)
    jobs = [{"fusion": "concat", "text_encoder": "lstm", **job(12.0, 1.5, 0.5, 1.5, 1.4, 1.7)}]
    figures["gpu"] = {
        "jobs": {"default": jobs}, "sweeps": {"default": sweep(jobs, SEEDS, EPOCHS, "cuda")},
        "date": "2027-01-01", "command": "python scripts/benchmark_sweep_cost.py --device cuda",
        "machine": "a GPU, 16 cores", "torch": "2.x", "load_average": {"start": 1, "end": 2},
    }  # fmt: skip
    report = markdown(figures)
    assert "GPU rows measured 2027-01-01: `python scripts/benchmark_sweep_cost.py --device " in (
        report
    )
    assert "## default, one GPU\n" in report
    assert "| concat | lstm | 12.0 | 1.5 | 0.5 | 20 (20-21) |" in report  # 12.5 + 5 x 1.4-1.7
    hours = [SEEDS * seconds / 3600 for seconds in (20, 19.5, 21)]
    assert (f"| default, one GPU a job | {SEEDS} | - | {hours[0]:.2f} ({hours[1]:.2f}-"
            f"{hours[2]:.2f}) | 0.02 h |") in report  # fmt: skip
    cpu = figures["sweeps"]["default"]
    assert report.count(f"| default | 72 | {cpu['core_hours']:.2f} (") == 1  # the CPU row kept


def test_gpu_rows_are_refused_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the GPU rows are measured by the test below")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_sweep_cost.py"), "--device", "cuda",
         f"--out={tmp_path / 'scaling.json'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--device cuda: no CUDA GPU visible to torch on this machine" in done.stderr
    assert not (tmp_path / "scaling.json").exists()


def test_the_published_figures_hold_together():
    if not OUT.exists():
        pytest.skip("docs/scaling.json not measured yet")
    figures = json.loads(OUT.read_text())
    for name, jobs in figures["jobs"].items():
        assert figures["sweeps"][name] == sweep(jobs, SEEDS, EPOCHS)
        for measured in jobs:
            assert len(measured["repeats"]) >= 3
            for part in ("startup_s", "epoch_s", "test_s", "wall_s"):
                assert measured[part] == statistics.median(r[part] for r in measured["repeats"])
            for cut in measured["repeats"]:
                assert cut["startup_s"] + cut["epoch_s"] + cut["test_s"] == pytest.approx(
                    cut["wall_s"]
                )
    assert (ROOT / "docs" / "scaling.md").read_text() == markdown(figures) + "\n"


@pytest.mark.slow
def test_the_script_measures_models_and_checks_them_against_a_sweep(tmp_path, data_dir):
    out = tmp_path / "scaling.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_sweep_cost.py"), "--quick",
         "--fusions", "concat", "--repeats", "2", f"--out={out}", f"--work={tmp_path}",
         f"--data-dir={data_dir}"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert [len(jobs) for jobs in figures["jobs"].values()] == [2, 1]  # lstm, transformer; large
    for measured in (j for jobs in figures["jobs"].values() for j in jobs):
        assert len(measured["repeats"]) == 2
        assert all(cut["startup_s"] > 1 and cut["epoch_s"] > 0 and cut["test_s"] > 0
                   for cut in measured["repeats"])  # fmt: skip
        assert measured["epoch_s"] == statistics.median(r["epoch_s"] for r in measured["repeats"])
    assert [v["batch"] for v in figures["validation"]] == [1, 2]
    assert all(v["predicted_s"] > 0 and v["measured_s"] > 0 for v in figures["validation"])
    low, high = figures["sweeps"]["default"]["core_hours_range"]
    assert 0 < low <= figures["sweeps"]["default"]["core_hours"] <= high
    assert "The model against real sweeps" in out.with_suffix(".md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_script_adds_gpu_rows_and_keeps_the_cpu_figures(tmp_path, data_dir):
    out = tmp_path / "scaling.json"
    shutil.copy(OUT, out)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_sweep_cost.py"), "--quick",
         "--device", "cuda", "--fusions", "concat", "--repeats", "2", f"--out={out}",
         f"--work={tmp_path}", f"--data-dir={data_dir}"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    published = json.loads(OUT.read_text())
    assert {k: figures[k] for k in published} == published
    assert [len(jobs) for jobs in figures["gpu"]["jobs"].values()] == [2, 1]
    assert all(s["gpu_hours"] > 0 for s in figures["gpu"]["sweeps"].values())
    assert "one GPU a job" in out.with_suffix(".md").read_text()


def test_the_readme_quotes_the_published_sweep_cost():
    figures = json.loads(OUT.read_text())
    default = figures["sweeps"]["default"]
    low, high = default["core_hours_range"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    quote = (f"`experiment=fusion_sweep` ({default['jobs']} jobs of {EPOCHS} epochs) is "
             f"{default['core_hours']:.2f} core-hours here ({low:.2f}-{high:.2f} over "
             f"{len(figures['jobs']['default'][0]['repeats'])} rounds of measurement), "
             f"{default['wall_h']['1']:.2f} h one job at a time and "
             f"{default['wall_h']['16']:.2f} h sixteen at once")  # fmt: skip
    assert quote in readme
