"""Where the framework's training loop spends time the hand-written loop does not.

The two loops of ``scripts/benchmark.py --sections overhead`` (same model, batches, optimizer,
schedule; two epochs, the second timed whole), profiled on the same batches: Lightning's
``SimpleProfiler`` on the framework (every hook, callback and strategy call it makes), and a
timer around each part of the hand-written loop. Both are cut into the same rows, in
milliseconds per training step (per-epoch work, validation and checkpoints, divided by the
steps), median over ``--repeats`` pairs whose order alternates; the gap column is the median of
the per-pair differences. Writes ``docs/overhead_profile.json`` and the table into
``docs/performance.md`` (through ``scripts/benchmark.py``'s report).

    .venv/bin/python scripts/profile_overhead.py                 # ~6 min on 2 cores
    .venv/bin/python scripts/profile_overhead.py --repeats 2 --experiments default  # a check

The profiler costs the framework a few microseconds per recorded call (about 40 a step), which
the "rest of the loop" row carries.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.profilers import SimpleProfiler

from benchmark import (
    EXPERIMENTS,
    PROFILE_OUT,
    QUICK_DATA,
    Sections,
    add_pass_arguments,
    epoch_batches,
    experiment,
    framework_pass,
    hand_written_pass,
    made_process_wide,
    rewrite_report,
)
from benchmark_data import _cpu_model, _quiet

CLOSURE_HOOKS = (
    "on_before_backward", "on_after_backward", "on_before_optimizer_step",
    "on_before_zero_grad", "configure_gradient_clipping",
)  # fmt: skip
"""Hooks Lightning calls inside the optimizer's closure, so inside ``optimizer_step``'s record."""
STEP_HOOKS = (*CLOSURE_HOOKS, "on_train_batch_start", "on_train_batch_end")
GUARD = "[Callback]NonFiniteLossGuard."
ROWS = (
    "forward, loss, metric update",
    "zero_grad",
    "backward",
    "optimizer step",
    "non-finite guard, per step",
    "other callbacks' and hooks' per-step work",
    "rest of the loop (batch handling, loop bookkeeping)",
    "validation and epoch end",
    "checkpoint writes",
    "non-finite guard, weights before a checkpoint",
)


def _hook(action: str) -> str:
    return action.rsplit(".", 1)[-1]


def _total(profile: dict[str, float], prefix: str, hook: str) -> float:
    return sum(s for a, s in profile.items() if a.startswith(prefix) and _hook(a) == hook)


def framework_rows(run: dict[str, Any]) -> dict[str, float]:
    """The framework's timed epoch in the rows, in seconds, from Lightning's profile."""
    p = run["profile"]
    forward = _total(p, "[Strategy]", "training_step")
    backward = _total(p, "[Strategy]", "backward")
    zero_grad = _total(p, "[LightningModule]", "optimizer_zero_grad")
    guard_step = sum(s for a, s in p.items() if a.startswith(GUARD) and _hook(a) in STEP_HOOKS)
    closure_hooks = sum(
        s for a, s in p.items() if a.startswith(("[Callback]", "[LightningModule]"))
        and _hook(a) in CLOSURE_HOOKS
    )  # fmt: skip
    other_hooks = sum(
        s for a, s in p.items() if a.startswith(("[Callback]", "[LightningModule]"))
        and not a.startswith(GUARD) and _hook(a) in STEP_HOOKS
    )  # fmt: skip
    optimizer = _total(p, "[LightningModule]", "optimizer_step")
    guard_weights = p.get(GUARD + "on_save_checkpoint", 0.0) + p.get(GUARD + "on_train_end", 0.0)
    checkpoints = p.get("save_checkpoint", 0.0) - p.get(GUARD + "on_save_checkpoint", 0.0)
    rows = {
        "forward, loss, metric update": forward,
        "zero_grad": zero_grad,
        "backward": backward,
        "optimizer step": optimizer - forward - backward - zero_grad - closure_hooks,
        "non-finite guard, per step": guard_step,
        "other callbacks' and hooks' per-step work": other_hooks,
    }
    rows[ROWS[6]] = run["train_s"] - sum(rows.values())
    rows["checkpoint writes"] = checkpoints
    rows["non-finite guard, weights before a checkpoint"] = guard_weights
    rows["validation and epoch end"] = run["epoch_s"] - run["train_s"] - checkpoints - guard_weights
    return rows


def hand_written_rows(run: dict[str, Any]) -> dict[str, float]:
    """The hand-written loop's timed epoch in the rows, in seconds, from its section timers."""
    t = run["sections"]
    step = ("forward, loss, metric update", "zero_grad", "backward", "optimizer step")
    rows = {name: t.get(name, 0.0) for name in step}
    rows["non-finite guard, per step"] = rows[ROWS[5]] = 0.0
    rows[ROWS[6]] = run["train_s"] - sum(rows.values())
    rows["checkpoint writes"] = t["checkpoint writes"]
    rows["non-finite guard, weights before a checkpoint"] = 0.0
    rows["validation and epoch end"] = run["epoch_s"] - run["train_s"] - t["checkpoint writes"]
    return rows


def profile(args: argparse.Namespace, name: str, overrides: list[str]) -> dict[str, Any]:
    cfg, data = experiment(args, *overrides)
    made_process_wide(cfg)
    batches, val = epoch_batches(data, args.batches)
    device = torch.device("cpu")
    pairs = []
    for index in range(args.repeats):
        order = ["framework", "hand_written"][:: -1 if index % 2 else 1]
        pair: dict[str, Any] = {"order": order}
        for runner in order:
            if runner == "framework":
                run = framework_pass(cfg, data, batches, val, profiler=SimpleProfiler())
                pair[runner] = {**run, "rows": framework_rows(run)}
            else:
                run = hand_written_pass(cfg, data, batches, val, sections=Sections(device))
                pair[runner] = {**run, "rows": hand_written_rows(run)}
        pairs.append(pair)
        print(f"profile {name} {index}: framework {pair['framework']['epoch_s']:.2f} s, "
              f"hand-written {pair['hand_written']['epoch_s']:.2f} s")  # fmt: skip
    steps = len(batches)

    def ms(runner: str, row: str) -> float:
        return 1000 * statistics.median(p[runner]["rows"][row] / steps for p in pairs)

    rows = [
        {
            "row": row,
            "framework_ms": ms("framework", row),
            "hand_written_ms": ms("hand_written", row),
            "gap_ms": 1000
            * statistics.median(
                (p["framework"]["rows"][row] - p["hand_written"]["rows"][row]) / steps
                for p in pairs
            ),
        }
        for row in ROWS
    ]
    totals = {
        runner: 1000 * statistics.median(p[runner]["epoch_s"] / steps for p in pairs)
        for runner in ("framework", "hand_written")
    }
    gap = 1000 * statistics.median(
        (p["framework"]["epoch_s"] - p["hand_written"]["epoch_s"]) / steps for p in pairs
    )
    for p in pairs:  # the raw profile is kept, summed per action
        p["framework"]["profile"] = {a: round(s, 6) for a, s in p["framework"]["profile"].items()}
    return {
        "rows": rows,
        "framework_ms": totals["framework"],
        "hand_written_ms": totals["hand_written"],
        "gap_ms": gap,
        "steps": steps,
        "batch_size": cfg.data.batch_size,
        "pairs": pairs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="pairs, order alternating")
    add_pass_arguments(parser)
    parser.add_argument("--out", type=Path, default=PROFILE_OUT)
    parser.add_argument("--note", default="", help="a sentence on the run, for the report")
    parser.add_argument("--quick", action="store_true", help="tiny data: checks the script only")
    args = parser.parse_args()
    args.base = QUICK_DATA if args.quick else []
    _quiet()
    began, load = time.perf_counter(), os.getloadavg()[0]
    experiments = {
        name: profile(args, name, overrides)
        for name, overrides in EXPERIMENTS.items()
        if name.split()[0] in args.experiments
    }
    figures = {
        "experiments": experiments,
        "date": str(date.today()),
        "command": "python scripts/profile_overhead.py "
        + f"--repeats {args.repeats} --batches {args.batches}"
        + (" --quick" if args.quick else ""),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "lightning": L.__version__,
        "threads": torch.get_num_threads(),
        "runtime_s": round(time.perf_counter() - began, 1),
        "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
        "note": args.note,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    if args.out == PROFILE_OUT:
        rewrite_report()
    for name, experiment_rows in experiments.items():
        print(name)
        for row in experiment_rows["rows"]:
            print(f"  {row['row']:<55} {row['framework_ms']:8.2f} {row['hand_written_ms']:8.2f} "
                  f"{row['gap_ms']:+7.2f} ms/step")  # fmt: skip


if __name__ == "__main__":
    main()
