"""Time per training epoch with and without host memory reuse (``callbacks.host_memory_reuse``).

The setting belongs to a process and cannot be undone in it, so each pass runs in a fresh
process: ``rolefusion-train``'s loop as ``scripts/benchmark.py --sections overhead`` runs it
(same batches in memory, two epochs, the second timed whole), with the run's callbacks, or with
them less ``host_memory_reuse``. Pairs alternate which goes first; the figure is the median of
the per-pair ratios (with reuse / without) and its distribution-free 95% interval
(``benchmark.median_ci``). Writes ``docs/host_memory.json`` and its section of
``docs/performance.md``.

    .venv/bin/python scripts/benchmark_host_memory.py            # ~15 min on 2 cores
    .venv/bin/python scripts/benchmark_host_memory.py --pairs 2 --experiments default
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import lightning as L
import torch

from benchmark import (
    EXPERIMENTS,
    HOST_MEMORY_OUT,
    QUICK_DATA,
    ROOT,
    add_pass_arguments,
    epoch_batches,
    experiment,
    framework_pass,
    median_ci,
    rewrite_report,
)
from benchmark_data import _cpu_model, _quiet

SETTINGS = {"reuse": [], "no_reuse": ["~callbacks.host_memory_reuse"]}


def one_pass(args: argparse.Namespace) -> None:
    """The child: one framework pass, its figures printed as the last line of JSON."""
    _quiet()
    overrides = [*EXPERIMENTS[args.experiment], *SETTINGS[args.one_pass]]
    cfg, data = experiment(args, *overrides)
    batches, val = epoch_batches(data, args.batches)
    run = framework_pass(cfg, data, batches, val)
    print(json.dumps({**run, "steps": len(batches)}))


def child(args: argparse.Namespace, name: str, setting: str) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--one-pass", setting, "--experiment", name,
        "--batches", str(args.batches), "--data-dir", str(args.data_dir), "--work", str(args.work),
        *(["--quick"] if args.quick else []), "--overrides", *args.overrides,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace, name: str) -> dict[str, Any]:
    pairs = []
    for index in range(args.pairs):
        order = list(SETTINGS)[:: -1 if index % 2 else 1]
        pair: dict[str, Any] = {"order": order}
        for setting in order:
            pair[setting] = child(args, name, setting)
        pair["ratio"] = pair["reuse"]["epoch_s"] / pair["no_reuse"]["epoch_s"]
        pairs.append(pair)
        print(f"{name} pair {index}: with reuse {pair['reuse']['epoch_s']:.2f} s, without "
              f"{pair['no_reuse']['epoch_s']:.2f} s, ratio {pair['ratio']:.3f}")  # fmt: skip
    ratios = [p["ratio"] for p in pairs]
    lower, upper, coverage = median_ci(ratios)
    return {
        "pairs": pairs,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "ci95": {"lower": lower, "upper": upper, "coverage": coverage},
        **{
            f"{setting}_epoch_s": statistics.median(p[setting]["epoch_s"] for p in pairs)
            for setting in SETTINGS
        },
        "steps": pairs[0]["reuse"]["steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    add_pass_arguments(parser)
    parser.add_argument("--out", type=Path, default=HOST_MEMORY_OUT)
    parser.add_argument("--one-pass", choices=list(SETTINGS), help=argparse.SUPPRESS)
    parser.add_argument("--experiment", choices=list(EXPERIMENTS), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="tiny data: checks the script only")
    parser.add_argument("--overrides", nargs="*", default=[], help="more config overrides")
    args = parser.parse_args()
    args.base = [*(QUICK_DATA if args.quick else []), *args.overrides]
    if args.one_pass:
        one_pass(args)
        return
    began, load = time.perf_counter(), os.getloadavg()[0]
    experiments = {
        name: measure(args, name) for name in EXPERIMENTS if name.split()[0] in args.experiments
    }
    figures = {
        "experiments": experiments,
        "date": str(date.today()),
        "command": f"python scripts/benchmark_host_memory.py --pairs {args.pairs} "
        f"--batches {args.batches}" + (" --quick" if args.quick else ""),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "lightning": L.__version__,
        "runtime_s": round(time.perf_counter() - began, 1),
        "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    if args.out == HOST_MEMORY_OUT:
        rewrite_report()


if __name__ == "__main__":
    main()
