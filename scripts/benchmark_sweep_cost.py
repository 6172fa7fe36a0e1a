"""What a fusion comparison costs: a cost model for sweeps, from measured job times.

Each fusion of the default experiment (with each text encoder of ``experiment=fusion_sweep``)
and of the large one (128 px images, transformer text) is trained one epoch by
``rolefusion-train`` in a fresh process, and the job's time is cut, from the timestamps of its
``train.log``, into three parts:

- **start-up**: everything that is neither an epoch nor the test: the interpreter, imports,
  composing the config, reading the (cached) data set, building the model, exiting;
- **epoch**: from the Trainer's creation to the epoch's log line (training, validation,
  checkpoints; the first epoch also holds the sanity check, a few batches);
- **test**: from there to the job's last line (testing the best checkpoint, writing results).

Each job is measured ``--repeats`` times, in rounds (every job, then every job again), and its
figures are the medians; the rounds give the spread. A job of ``E`` epochs then costs
``start-up + E x epoch + test``. The sweep's core-hours are the sum over its jobs times the
cores a job holds; its wall time for ``S`` jobs at once (the smaller of ``array_parallelism``
and what the nodes hold) comes from starting the jobs in sweep order, each as soon as a slot is
free, as Slurm starts an array's tasks. The model is checked against real sweeps:
``hydra/launcher=local`` with ``hydra.sweeper.max_batch_size`` 1 and 2 (one job at a time, then
two at once, each pair after the previous one) is predicted, then run, and both are reported.

On a GPU node, ``--device cuda`` measures the same jobs under ``trainer=gpu`` (one GPU a job)
and adds them to the figures as the GPU rows, keeping the CPU ones; the local-launcher check is
a CPU one and is not repeated there.

Writes ``docs/scaling.json`` and ``docs/scaling.md``.

    .venv/bin/python scripts/benchmark_sweep_cost.py                # ~45 min on 2 cores
    .venv/bin/python scripts/benchmark_sweep_cost.py --device cuda  # on a GPU node: the GPU rows
    .venv/bin/python scripts/benchmark_sweep_cost.py --report-only
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import torch

from benchmark_data import _cpu_model

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "scaling.json"
FUSIONS = ["channel", "sequence", "spatial", "concat", "late", "gated", "tensor",
           "low_rank_tensor", "film", "cross_attention", "image_only", "text_only"]  # fmt: skip
"""experiment=fusion_sweep's fusions (conf/experiment/fusion_sweep.yaml)."""
EXPERIMENTS = {
    "default": {"overrides": [], "text_encoders": ["lstm", "transformer"]},
    "large (128 px, transformer text)": {
        "overrides": ["data.source.image_size=128"], "text_encoders": ["transformer"],
    },
}  # fmt: skip
SEEDS = 3
EPOCHS = 5
"""conf/trainer/cpu.yaml's max_epochs: what a sweep's job trains."""
CORES_PER_JOB = 2
"""A job here uses the machine's 2 cores (2 torch threads): what its core-hours count."""
DEVICE_OVERRIDES = {"cpu": [], "cuda": ["trainer=gpu"]}
"""What each ``--device`` adds to every job: a GPU job is ``trainer=gpu``, one GPU."""
SLOTS = (1, 2, 8, 16, 72)
PARTS = ("startup_s", "epoch_s", "test_s", "wall_s")
REPEATS = 3
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
VALIDATION_JOBS = 4
"""The validation sweeps: the first fusions measured, with the LSTM."""
VALIDATION_BATCHES = (1, 2)
"""... one at a time, then two at a time (hydra.sweeper.max_batch_size)."""


def stamp(line: str) -> float | None:
    match = STAMP.match(line)
    if match is None:
        return None
    return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def parts(log: str, wall_s: float) -> dict[str, float]:
    """A one-epoch job's start-up, epoch and test seconds, from its train.log and wall time."""
    lines = [(stamp(line), line) for line in log.splitlines()]
    lines = [(t, line) for t, line in lines if t is not None]
    trainer = next(t for t, line in lines if "GPU available:" in line)
    epoch = next(t for t, line in lines if "epoch 1/1" in line)
    end = lines[-1][0]
    timings = {"epoch_s": epoch - trainer, "test_s": end - epoch}
    return {**timings, "startup_s": wall_s - sum(timings.values())}


def train(args: argparse.Namespace, run_dir: Path, *overrides: str) -> tuple[str, float]:
    command = [sys.executable, "-m", "rolefusion.train", f"paths.data_dir={args.data_dir}",
               f"paths.log_dir={args.work}", f"hydra.run.dir={run_dir}", "logger=none",
               *args.base, *DEVICE_OVERRIDES[args.device], *overrides]  # fmt: skip
    shutil.rmtree(run_dir, ignore_errors=True)  # a finished run would not be trained again
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return (run_dir / "train.log").read_text(), wall


def measure(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Each job ``args.repeats`` times, the repeats outermost (every job, then every job again),
    so that a change in the machine's load touches all jobs alike. A job's figures are the
    medians of its repeats; the repeats are kept for the spread."""
    repeats: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for repeat in range(args.repeats):
        for name, experiment in EXPERIMENTS.items():
            if repeat == 0:
                train(args, args.work / "warm-up", *experiment["overrides"], "trainer.max_epochs=1")
            for encoder in experiment["text_encoders"]:
                for fusion in args.fusions:
                    run_dir = args.work / "jobs" / f"{name.split()[0]}-{fusion}-{encoder}"
                    log, wall = train(
                        args, run_dir, *experiment["overrides"], "trainer.max_epochs=1",
                        f"model/fusion={fusion}", f"model/text_encoder={encoder}",
                    )  # fmt: skip
                    cut = {"wall_s": wall, **parts(log, wall)}
                    repeats.setdefault((name, fusion, encoder), []).append(cut)
                    print(f"repeat {repeat + 1}/{args.repeats}: {name}: {fusion} + {encoder}: "
                          f"start-up {cut['startup_s']:.1f} s, epoch {cut['epoch_s']:.1f} s, "
                          f"test {cut['test_s']:.1f} s", flush=True)  # fmt: skip
    jobs: dict[str, list[dict[str, Any]]] = {name: [] for name in EXPERIMENTS}
    for (name, fusion, encoder), cuts in repeats.items():
        medians = {part: statistics.median(cut[part] for cut in cuts) for part in PARTS}
        jobs[name].append({"fusion": fusion, "text_encoder": encoder, **medians, "repeats": cuts})
    return jobs


def job_seconds(job: dict[str, Any], epochs: int) -> float:
    return job["startup_s"] + epochs * job["epoch_s"] + job["test_s"]


def wall_time(durations: Sequence[float], slots: int) -> float:
    """Seconds until the last job ends when ``slots`` run at once and each next job, in order,
    starts as soon as one is free."""
    free = [0.0] * min(slots, len(durations))
    for duration in durations:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free, default=0.0)


def batched_wall_time(durations: Sequence[float], batch: int) -> float:
    """Seconds for ``hydra.sweeper.max_batch_size=batch``: each batch runs at once and the next
    starts when its slowest job ends."""
    return sum(max(durations[i : i + batch]) for i in range(0, len(durations), batch))


def sweep(
    jobs: list[dict[str, Any]], seeds: int, epochs: int, device: str = "cpu"
) -> dict[str, Any]:
    """The sweep of every measured configuration x ``seeds``, in Hydra's order (the last
    swept key, the seed, varies fastest). A CPU job holds :data:`CORES_PER_JOB` cores, a GPU
    job one GPU."""
    durations = [job_seconds(job, epochs) for job in jobs for _ in range(seeds)]
    hours, per_job = ("core_hours", CORES_PER_JOB) if device == "cpu" else ("gpu_hours", 1)
    # The sweep as each repeat measured it (every job's r-th run): the spread of the total.
    totals = [
        seeds * sum(job_seconds(job["repeats"][r], epochs) for job in jobs) * per_job / 3600
        for r in range(min(len(job["repeats"]) for job in jobs))
    ]
    return {
        "jobs": len(durations),
        hours: sum(durations) * per_job / 3600,
        f"{hours}_range": [min(totals), max(totals)],
        "wall_h": {str(s): wall_time(durations, s) / 3600 for s in SLOTS},
    }


def validate(
    args: argparse.Namespace, default_jobs: list[dict[str, Any]], batch: int
) -> dict[str, Any]:
    """Predict, then run, a 4-job sweep ``batch`` at a time with the local launcher."""
    chosen = [j for j in default_jobs if j["text_encoder"] == "lstm"][:VALIDATION_JOBS]
    fusions = ",".join(j["fusion"] for j in chosen)
    epochs = 2
    predicted = batched_wall_time([job_seconds(j, epochs) for j in chosen], batch=batch)
    command = [sys.executable, "-m", "rolefusion.train", "-m", "hydra/launcher=local",
               f"hydra.sweeper.max_batch_size={batch}", f"paths.data_dir={args.data_dir}",
               f"paths.log_dir={args.work / 'validation'}", "logger=none", *args.base,
               f"trainer.max_epochs={epochs}",
               f"model/fusion={fusions}"]  # fmt: skip
    shutil.rmtree(args.work / "validation", ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    measured = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"the validation sweep failed:\n{done.stderr[-3000:]}")
    return {
        "batch": batch,
        "command": "rolefusion-train -m hydra/launcher=local "
        f"hydra.sweeper.max_batch_size={batch} trainer.max_epochs={epochs} "
        f"model/fusion={fusions}",
        "predicted_s": predicted,
        "measured_s": measured,
    }


def job_table(title: str, jobs: list[dict[str, Any]]) -> list[str]:
    def spread(job: dict[str, Any]) -> str:
        each = [job_seconds(cut, EPOCHS) for cut in job["repeats"]]
        return f"{job_seconds(job, EPOCHS):.0f} ({min(each):.0f}-{max(each):.0f})"

    return [
        f"## {title}",
        "",
        "| fusion | text encoder | start-up s | s/epoch | test s | "
        f"job of {EPOCHS} epochs, s (range) |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {j['fusion']} | {j['text_encoder']} | {j['startup_s']:.1f} | "
            f"{j['epoch_s']:.1f} | {j['test_s']:.1f} | {spread(j)} |"
            for j in jobs
        ),
        "",
    ]


def hours(sweep: dict[str, Any], key: str) -> str:
    """``1.49 (1.45-1.54)``: the median jobs' total, and the range of the rounds' totals."""
    low, high = sweep[f"{key}_range"]
    return f"{sweep[key]:.2f} ({low:.2f}-{high:.2f})"


def measured_on(figures: dict[str, Any]) -> str:
    load = figures["load_average"]
    return (
        f"{figures['date']}: `{figures['command']}` on {figures['machine']} (torch "
        f"{figures['torch']}; load average {load['start']} at the start, {load['end']} at the "
        "end)."
    )


def rounds(figures: dict[str, Any]) -> int:
    """How many times each job was measured (the first job's repeats; all have as many)."""
    first_job = next(iter(figures["jobs"].values()))[0]
    return len(first_job["repeats"])


def markdown(figures: dict[str, Any]) -> str:
    gpu = figures.get("gpu", {})
    lines = [
        "# What a sweep costs",
        "",
        f"_Measured {measured_on(figures)} "
        + (
            f"GPU rows measured {measured_on(gpu)}_"
            if gpu
            else "No GPU has been lent to this project yet: `python "
            "scripts/benchmark_sweep_cost.py --device cuda` on a GPU node adds the GPU rows._"
        ),
        "",
        "Each fusion trained one epoch in a fresh process, its job cut by the timestamps of "
        "`train.log` into start-up (interpreter, imports, config, cached data, model, exit), "
        "one epoch (training, validation, checkpoints) and the test of the best checkpoint "
        "(the docstring of `scripts/benchmark_sweep_cost.py`). A job of E epochs costs "
        f"start-up + E x epoch + test; core-hours count {CORES_PER_JOB} cores a CPU job, "
        "GPU-hours one GPU a GPU job (`trainer=gpu`). Every job was measured "
        f"{rounds(figures)} times, all jobs in turn "
        "before the next round: the figures are medians, the ranges those of the rounds "
        "(a job's, or the whole sweep's as each round measured it).",
        "",
    ]
    for name, jobs in figures["jobs"].items():
        lines += job_table(name, jobs)
    for name, jobs in gpu.get("jobs", {}).items():
        lines += job_table(f"{name}, one GPU", jobs)
    lines += [
        f"## The sweep: every fusion x text encoder x {SEEDS} seeds, {EPOCHS} epochs",
        "",
        "Wall time for S jobs at once, S the smaller of `hydra.launcher.array_parallelism` and "
        "the jobs the nodes hold together (nodes x cores per node / cores per job, or their "
        "GPUs); jobs start in sweep order as slots free up. Queue waits and Slurm's own latency "
        "(about a second a job on the local cluster) are not in it.",
        "",
        "| experiment | jobs | core-hours (CPU) | GPU-hours | "
        + " | ".join(f"wall, S={s}" for s in SLOTS)
        + " |",
        "|---|---:|---:|---:|" + "---:|" * len(SLOTS),
    ]
    rows = [(name, hours(s, "core_hours"), "-", s) for name, s in figures["sweeps"].items()]
    rows += [(f"{name}, one GPU a job", "-", hours(s, "gpu_hours"), s)
             for name, s in gpu.get("sweeps", {}).items()]  # fmt: skip
    for name, cpu_hours, gpu_hours, s in rows:
        walls = " | ".join(f"{s['wall_h'][str(slots)]:.2f} h" for slots in SLOTS)
        lines.append(f"| {name} | {s['jobs']} | {cpu_hours} | {gpu_hours} | {walls} |")
    lines += [
        "",
        "## The model against real sweeps",
        "",
        "The same four jobs (the first fusions, LSTM text, 2 epochs) through the local launcher, "
        "predicted from the one-epoch jobs above, then run:",
        "",
        "| jobs at once | command | predicted s | measured s | measured / predicted |",
        "|---:|---|---:|---:|---:|",
        *(
            f"| {v['batch']} | `{v['command']}` | {v['predicted_s']:.0f} | "
            f"{v['measured_s']:.0f} | {v['measured_s'] / v['predicted_s']:.2f} |"
            for v in figures["validation"]
        ),
        "",
        "One at a time, the jobs hold the machine as the measured ones did, and the model holds "
        "(Hydra's own start and submitit's hand-over are the rest). Two at a time, two jobs of "
        f"{CORES_PER_JOB} torch threads each share 2 cores: each runs far slower than alone, "
        "and the pair slower than one after the other. The model assumes each job holds the "
        "cores it was measured with, as on a cluster where `cpus_per_task` reserves them; "
        "run as many jobs at once as the cores hold (cores / cores per job), never more.",
        "",
    ]
    return "\n".join(lines)


def conditions(args: argparse.Namespace, began: float, load: float) -> dict[str, Any]:
    """When, where and with what the jobs were measured."""
    cores = f"{os.cpu_count()} cores"
    return {
        "date": str(date.today()),
        "command": "python scripts/benchmark_sweep_cost.py"
        + (" --quick" if args.quick else "")
        + (f" --repeats {args.repeats}" if args.repeats != REPEATS else "")
        + (f" --device {args.device}" if args.device != "cpu" else ""),
        "machine": f"{torch.cuda.get_device_name()}, {cores}"
        if args.device == "cuda"
        else f"{_cpu_model()}, {cores}",
        "torch": torch.__version__,
        "runtime_s": round(time.perf_counter() - began, 1),
        "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fusions", nargs="+", default=FUSIONS)
    parser.add_argument("--repeats", type=int, default=REPEATS, help="rounds of every job")
    parser.add_argument("--device", choices=sorted(DEVICE_OVERRIDES), default="cpu",
                        help="cuda: the GPU rows, added to --out's CPU figures")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=ROOT / "outputs" / "benchmark" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark" / "sweep_cost")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="tiny data: checks the script only")
    parser.add_argument("--report-only", action="store_true", help="the Markdown from --out")
    parser.add_argument(
        "--validate-only", type=int, metavar="BATCH",
        help="run the validation sweep BATCH at a time against --out's jobs, replacing its entry",
    )  # fmt: skip
    args = parser.parse_args()
    args.base = (
        ["data.source.num_train=128", "data.source.num_val=32", "data.source.num_test=32"]
        if args.quick else []
    )  # fmt: skip
    if args.report_only or args.validate_only:
        figures = json.loads(args.out.read_text())
        if args.validate_only:
            kept = [v for v in figures["validation"] if v["batch"] != args.validate_only]
            entry = validate(args, figures["jobs"]["default"], args.validate_only)
            figures["validation"] = sorted([*kept, entry], key=lambda v: v["batch"])
            args.out.write_text(json.dumps(figures, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(figures) + "\n")
        return
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA GPU visible to torch on this machine")
        if not args.out.is_file():
            raise SystemExit(f"--device cuda adds the GPU rows to {args.out}'s CPU figures, and "
                             "there is none: run the script without --device first")  # fmt: skip
    began, load = time.perf_counter(), os.getloadavg()[0]
    jobs = measure(args)
    sweeps = {name: sweep(j, SEEDS, EPOCHS, args.device) for name, j in jobs.items()}
    if args.device == "cuda":
        figures = json.loads(args.out.read_text())
        figures["gpu"] = {"jobs": jobs, "sweeps": sweeps, **conditions(args, began, load)}
    else:
        validation = [validate(args, jobs["default"], batch) for batch in VALIDATION_BATCHES]
        figures = {"jobs": jobs, "sweeps": sweeps, "validation": validation,
                   **conditions(args, began, load)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(figures) + "\n")
    print(markdown(figures))


if __name__ == "__main__":
    main()
