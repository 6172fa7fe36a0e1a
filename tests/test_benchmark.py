"""``scripts/benchmark.py``: the overhead statistics and their wording on hand-made numbers,
and the script end to end on tiny data, every section bounded."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import (  # noqa: E402
    HOST_MEMORY_OUT,
    PROFILE_OUT,
    SHARED_COMPUTE,
    describe_run,
    host_memory_lines,
    median_ci,
    merged,
    overhead_profile_lines,
    overhead_sentence,
)
from benchmark_feature_cache import section, summary  # noqa: E402
from profile_overhead import ROWS, framework_rows, hand_written_rows  # noqa: E402


def test_the_median_interval_takes_the_binomial_order_statistics():
    # 9 values: P(B <= 1) = 10/512, so the 2nd and 8th smallest, coverage 1 - 20/512.
    values = [1.08, 0.91, 1.00, 0.97, 1.03, 0.99, 1.01, 0.95, 1.05]
    assert statistics.median(values) == 1.00
    lower, upper, coverage = median_ci(values)
    assert (lower, upper) == (0.95, 1.05)
    assert coverage == pytest.approx(1 - 20 / 512)
    # The textbook table at 95%: n=10 -> 2nd and 9th, n=20 -> 6th and 15th.
    assert median_ci(range(1, 11))[:2] == (2, 9)
    assert median_ci(range(1, 21))[:2] == (6, 15)
    assert median_ci(range(1, 21))[2] == pytest.approx(1 - 2 * 0.020695, abs=1e-5)
    # 6 is the fewest values that reach 95% (2/64 in the tails); 5 cannot and say so.
    assert median_ci([3, 1, 2, 6, 5, 4]) == (1, 6, pytest.approx(1 - 2 / 64))
    lower, upper, coverage = median_ci([5, 1, 4, 2, 3])
    assert (lower, upper) == (1, 5) and coverage == pytest.approx(1 - 2 / 32)
    assert coverage < 0.95
    assert median_ci([1.0] * 9)[:2] == (1.0, 1.0)
    with pytest.raises(ValueError):
        median_ci([])


def test_the_median_interval_holds_the_median_at_every_size():
    for n in range(1, 40):
        values = [math.sin(7 * i) for i in range(n)]  # scattered, distinct
        lower, upper, coverage = median_ci(values)
        assert lower <= statistics.median(values) <= upper
        assert (coverage >= 0.95) == (n >= 6)


def test_the_wording_follows_the_interval():
    assert overhead_sentence(1.0, 1.0, 1.0) == "no overhead detected within ±0.0%"
    assert overhead_sentence(1.0, 0.95, 1.05) == "no overhead detected within ±5.0%"
    # The farther end counts, rounded up: 1 - 0.9612 = 3.88% -> 3.9%.
    assert overhead_sentence(1.01, 0.9612, 1.02) == "no overhead detected within ±3.9%"
    assert overhead_sentence(1.0, 1.0, 1.031) == "no overhead detected within ±3.1%"
    assert overhead_sentence(1.05, 1.02, 1.08) == "an overhead of +5.0% (95% CI +2.0% to +8.0%)"
    assert overhead_sentence(0.95, 0.92, 0.98) == (
        "an overhead of −5.0% (95% CI −8.0% to −2.0%; the framework was the faster)"
    )
    with pytest.raises(ValueError):
        overhead_sentence(1.1, 0.9, 1.05)  # a median outside its interval


def test_a_partial_run_keeps_the_other_sections_and_their_dates():
    old = {"overhead": {"old": 1}, "data": {"wait_share": 0.05}, "date": "2026-11-29",
           "command": "python scripts/benchmark.py", "repeats": 5,
           "load_average": {"start": 0.85, "end": 2.05}}  # fmt: skip
    run = {"sections": ["overhead"], "date": "2026-12-01", "load_average": {"start": 3.0}}
    figures = merged(old, {"overhead": {"new": 1}}, run)
    assert figures["overhead"] == {"new": 1} and figures["data"] == {"wait_share": 0.05}
    assert [(r["sections"], r["date"]) for r in figures["runs"]] == [
        (["data"], "2026-11-29"), (["overhead"], "2026-12-01"),
    ]  # fmt: skip
    again = merged(figures, {"data": {"wait_share": 0.04}}, {**run, "sections": ["data"]})
    assert [r["sections"] for r in again["runs"]] == [["overhead"], ["data"]]


def test_a_busy_machine_is_named_in_the_report():
    run = {"sections": ["overhead"], "date": "2026-12-01", "command": "c", "machine": "m",
           "torch": "t", "lightning": "l", "threads": 2, "pairs": 9, "repeats": 5, "cores": 2,
           "load_average": {"start": 3.2, "end": 4.0}}  # fmt: skip
    assert "Other work had been running on the machine" in describe_run(1, run)
    idle = {**run, "load_average": {"start": 0.3, "end": 2.0}}
    assert "Other work" not in describe_run(1, idle)


def test_the_published_overhead_figures_hold_together_and_are_quoted():
    figures = json.loads((ROOT / "docs" / "performance.json").read_text())
    [run] = [run for run in figures["runs"] if "overhead" in run["sections"]]
    assert run["pairs"] >= 9
    report = (ROOT / "docs" / "performance.md").read_text()
    readme = " ".join((ROOT / "README.md").read_text().split())
    for row in figures["overhead"].values():
        ratios = [p["ratio"] for p in row["pairs"]]
        assert ratios == row["ratios"] and len(ratios) == run["pairs"]
        assert [p["order"][0] for p in row["pairs"]] == [
            ["framework", "hand_written"][i % 2] for i in range(len(ratios))
        ]
        for p in row["pairs"]:
            assert p["ratio"] == p["framework"]["epoch_s"] / p["hand_written"]["epoch_s"]
        assert all(0.5 < r < 2 for r in ratios)
        ci = row["ci95"]
        assert row["median_ratio"] == statistics.median(ratios)
        assert median_ci(ratios) == (ci["lower"], ci["upper"], ci["coverage"])
        assert ci["coverage"] >= 0.95
        assert row["sentence"] == overhead_sentence(row["median_ratio"], ci["lower"], ci["upper"])
        assert row["sentence"] in report and row["sentence"] in readme
    default = figures["overhead"]["default"]
    assert f"ratio {default['median_ratio']:.3f}, 95% CI {default['ci95']['lower']:.3f}–" in readme


def test_the_published_overhead_profile_holds_together_and_is_quoted():
    figures = json.loads(PROFILE_OUT.read_text())
    report = (ROOT / "docs" / "performance.md").read_text()
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "\n".join(overhead_profile_lines(figures)) in report
    for e in figures["experiments"].values():
        for p in e["pairs"]:  # each pair's rows follow from its raw profile and timers
            assert framework_rows(p["framework"]) == pytest.approx(p["framework"]["rows"], abs=1e-4)
            hand = hand_written_rows(p["hand_written"])
            assert hand == pytest.approx(p["hand_written"]["rows"], abs=1e-9)
        assert [r["row"] for r in e["rows"]] == list(ROWS)
        for r in e["rows"]:
            gaps = [(p["framework"]["rows"][r["row"]] - p["hand_written"]["rows"][r["row"]])
                    / e["steps"] for p in e["pairs"]]  # fmt: skip
            assert r["gap_ms"] == pytest.approx(1000 * statistics.median(gaps))
    default = figures["experiments"]["default"]
    own = sum(r["gap_ms"] for r in default["rows"] if r["row"] not in SHARED_COMPUTE)
    assert f"{own:.1f} ms a step" in readme


def test_the_published_host_memory_figures_hold_together_and_are_quoted():
    figures = json.loads(HOST_MEMORY_OUT.read_text())
    report = (ROOT / "docs" / "performance.md").read_text()
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "\n".join(host_memory_lines(figures)) in report
    for e in figures["experiments"].values():
        ratios = [p["reuse"]["epoch_s"] / p["no_reuse"]["epoch_s"] for p in e["pairs"]]
        assert ratios == e["ratios"] and e["median_ratio"] == statistics.median(ratios)
        ci = e["ci95"]
        assert median_ci(ratios) == (ci["lower"], ci["upper"], ci["coverage"])
        assert [p["order"][0] for p in e["pairs"]] == [
            ["reuse", "no_reuse"][i % 2] for i in range(len(ratios))
        ]
        assert f"{e['median_ratio']:.3f}" in readme


@pytest.mark.slow
def test_the_overhead_profile_runs_and_finds_the_framework_only_work(tmp_path, data_dir):
    out = tmp_path / "profile.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile_overhead.py"), "--quick", "--repeats=1",
         "--batches=3", "--experiments", "default", f"--out={out}", f"--work={tmp_path}",
         f"--data-dir={data_dir}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [e] = json.loads(out.read_text())["experiments"].values()
    rows = {r["row"]: r for r in e["rows"]}
    assert rows["non-finite guard, per step"]["framework_ms"] > 0
    for row in (r for r in ROWS if r not in SHARED_COMPUTE and "validation" not in r
                and "checkpoint writes" not in r):  # fmt: skip
        assert rows[row]["hand_written_ms"] == pytest.approx(0, abs=0.5), row
    for row in SHARED_COMPUTE:
        assert rows[row]["framework_ms"] > 0 and rows[row]["hand_written_ms"] > 0, row


@pytest.mark.slow
def test_the_host_memory_benchmark_compares_fresh_processes(tmp_path, data_dir):
    out = tmp_path / "host_memory.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_host_memory.py"), "--quick",
         "--pairs=1", "--batches=2", "--experiments", "default", f"--out={out}",
         f"--work={tmp_path}", f"--data-dir={data_dir}", "--overrides", "data.batch_size=128"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [e] = json.loads(out.read_text())["experiments"].values()
    [pair] = e["pairs"]
    assert pair["reuse"]["val_f1"] == pair["no_reuse"]["val_f1"]  # the same training
    # Each in its own process, so only one reused freed memory: in the timed epoch, far fewer
    # pages had to be handed to it. Batches of 128 make activations of 67 MB, above the 32 MiB
    # up to which glibc's own threshold adapts (smaller ones it comes to reuse by itself).
    assert pair["reuse"]["page_faults"] < 0.5 * pair["no_reuse"]["page_faults"]


def test_the_published_feature_cache_figures_hold_together_and_are_quoted():
    figures = json.loads((ROOT / "docs" / "feature_cache.json").read_text())
    assert figures["summary"] == summary(figures["sweeps"])
    epochs = figures["settings"]["epochs"]
    for sweep in figures["sweeps"].values():
        assert len(sweep["jobs"]) == len(figures["settings"]["seeds"].split(","))
        assert all(len(job["epoch_s"]) == epochs for job in sweep["jobs"])
    report = (ROOT / "docs" / "performance.md").read_text()
    assert "\n".join(section(figures)) in report


def run_benchmark(tmp_path: Path, data_dir: Path, *options: str) -> dict:
    out = tmp_path / "performance.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", *options,
         f"--out={out}", f"--work={tmp_path}", f"--data-dir={data_dir}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_the_benchmark_pairs_alternate_and_its_overhead_figures_hold_together(tmp_path, data_dir):
    # One torch thread: two on a busy 2-core machine wait on each other, erratically slow.
    figures = run_benchmark(tmp_path, data_dir, "--pairs=2", "--threads=1", "--sections",
                            "overhead", "data", "utilisation")  # fmt: skip
    [row] = figures["overhead"].values()  # --quick: the default experiment only
    pairs = row["pairs"]
    assert len(pairs) == len(row["ratios"]) == 2 and row["warmup_pairs"] == []
    # ABBA: the runner that goes first alternates from pair to pair.
    assert [p["order"] for p in pairs] == [
        ["framework", "hand_written"], ["hand_written", "framework"],
    ]  # fmt: skip
    for p in pairs:
        assert p["ratio"] == pytest.approx(p["framework"]["epoch_s"] / p["hand_written"]["epoch_s"])
        for runner in ("framework", "hand_written"):
            # The timed window holds the training steps and more: validation, checkpoints.
            assert 0 < p[runner]["train_s"] < p[runner]["epoch_s"] < 60
        # Same seed, batches, optimizer and schedule: both loops train the same model.
        assert p["framework"]["val_f1"] == pytest.approx(p["hand_written"]["val_f1"], abs=1e-6)
    # Tiny epochs on a shared machine are noisy, but a framework twice as slow (or as fast)
    # as the same work written by hand is a bug in one of the loops.
    assert 0.5 < row["median_ratio"] < 2
    assert all(1 / 3 < r < 3 for r in row["ratios"])
    ci = row["ci95"]
    assert ci["lower"] <= row["median_ratio"] <= ci["upper"]
    assert row["median_ratio"] == pytest.approx(statistics.median(row["ratios"]))
    assert (ci["lower"], ci["upper"]) == (min(row["ratios"]), max(row["ratios"]))  # n=2
    assert ci["coverage"] == pytest.approx(0.5)  # 1 - 2/4: too few pairs for 95%, and said
    assert row["sentence"] == overhead_sentence(row["median_ratio"], ci["lower"], ci["upper"])
    assert row["train_batches"] == 3 and row["val_batches"] == 1
    assert 0 <= figures["data"]["wait_share"] < 1
    assert 1 < figures["data"]["loader_over_model"] < 1000
    assert 0 < figures["utilisation"]["mfu"] < 1
    [run] = figures["runs"]
    assert run["pairs"] == 2 and run["sections"] == ["overhead", "data", "utilisation"]
    report = (tmp_path / "performance.md").read_text()
    for text in ("## Framework overhead", "## Data supply", "## Model FLOP utilisation",
                 "## Distributed runs", row["sentence"]):  # fmt: skip
        assert text in report, text


@pytest.mark.slow
def test_the_benchmark_times_start_up_and_scaling(tmp_path, data_dir):
    figures = run_benchmark(tmp_path, data_dir, "--sections", "startup", "scaling")
    startup = figures["startup"]
    assert set(startup) >= {"rolefusion-train --help", "import torch, lightning"}
    assert all(0 < row["median_s"] < 120 for row in startup.values())
    assert [row["examples"] for row in figures["scaling"]["by_data_size"]] == [128, 256]
    assert [row["pixels"] for row in figures["scaling"]["by_image_size"]] == [32, 64]
    assert all(0 < row["epoch_s"] < 120 for row in figures["scaling"]["by_data_size"])
    report = (tmp_path / "performance.md").read_text()
    assert "## Start-up" in report and "## Scaling" in report
