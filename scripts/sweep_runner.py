"""Run Hydra multiruns of ``rolefusion-train`` as parallel processes, one thread each.

Shared by the scripts that measure whole sweeps (``fusion_results.py``, ``fusion_benchmark.py``):
small models use two threads poorly, and two processes of two threads each fight over the cores,
so a sweep is cut into parts by fusion and the parts run side by side.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def split_by_fusion(name: str, overrides: list[str], parts: int) -> list[tuple[str, list[str]]]:
    """Cut a sweep into ``parts`` processes by dealing its fusions out round-robin; the parts of
    sweep ``name`` are ``name/part1ofN``, ... so that its jobs stay under one directory."""
    fusions = next(o for o in overrides if o.startswith("model/fusion=")).split("=", 1)[1]
    chunks = [c for c in (fusions.split(",")[i::parts] for i in range(parts)) if c]
    if len(chunks) == 1:
        return [(name, overrides)]
    return [
        (f"{name}/part{i + 1}of{len(chunks)}",
         [f"model/fusion={','.join(c)}" if o.startswith("model/fusion=") else o
          for o in overrides])
        for i, c in enumerate(chunks)
    ]  # fmt: skip


def run_sweeps(sweeps: dict[str, list[str]], work: Path, parallel: int, extra: list[str]) -> None:
    """Start each named sweep (its multirun overrides) as processes, ``parallel`` at a time.

    Every part writes under ``work / <part name>`` with its log beside it; ``extra`` overrides
    apply to every job. Re-running skips finished jobs (each job's ``metrics.json``).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if parallel > 1 else dict(os.environ)
    pending = [part for n, o in sweeps.items() for part in split_by_fusion(n, o, parallel)]
    running: list[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < parallel:
            name, overrides = pending.pop(0)
            (work / name).mkdir(parents=True, exist_ok=True)
            log = (work / f"{name}.log").open("w")
            command = [sys.executable, "-m", "rolefusion.train", "-m", *overrides, *extra,
                       "logger=none", f"hydra.sweep.dir={work / name}"]  # fmt: skip
            print("started:", " ".join(command[2:]), flush=True)
            running.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
        finished = next((p for p in running if p.poll() is not None), None)
        if finished is None:
            time.sleep(2)
            continue
        running.remove(finished)
        if finished.returncode != 0:
            raise SystemExit(f"a sweep failed (exit {finished.returncode}); see {work}/*.log")
