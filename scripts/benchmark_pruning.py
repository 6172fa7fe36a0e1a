"""Compute saved by pruning an Optuna search (docs/sweeps.md, docs/pruning_search.json).

Runs the same search of the default experiment twice: ``hparams_search=optuna`` (default data,
model and epochs; its search space and TPE sampler with their fixed seed), once with the median
pruner and once without pruning (``hydra/sweeper/pruner=none``). The data set is generated
before either clock starts. Each search starts a fresh study; the numbers are read back from its
``optuna.db``: trials run, pruned and completed, epochs trained (the epochs each trial
reported), the time the trials took (their start to end, summed) and the search's wall time,
the best value found, and the best value after each trial against the epochs spent so far.

    .venv/bin/python scripts/benchmark_pruning.py          # ~40 min on 2 CPU cores
    .venv/bin/python scripts/benchmark_pruning.py --trials 5 --out /tmp/pruning   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib
import optuna
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from rolefusion.config import register_configs

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
PRUNERS = ("median", "none")
STUDY = "optuna"
"""``hparams_search=optuna`` names its study after ``task_name``, which is ``optuna`` there."""
STUDY_METRIC = "val/f1_best"
"""What ``hparams_search=optuna`` maximises (its ``optimized_metric``)."""


def prepare_data() -> None:
    """Generate (or check) the default data set, so that neither search pays for it."""
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        instantiate(compose("train", ["hparams_search=optuna"]).data).prepare_data()


def run_search(pruner: str, trials: int, sweep_dir: Path) -> dict[str, Any]:
    """One search with ``pruner`` into ``sweep_dir`` (emptied first: the same command would
    continue the study that it holds), and what its study says about it."""
    shutil.rmtree(sweep_dir, ignore_errors=True)
    command = [sys.executable, "-m", "rolefusion.train", "hparams_search=optuna",
               f"hydra/sweeper/pruner={pruner}", f"hydra.sweeper.n_trials={trials}",
               f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{sweep_dir}/optuna.db")
    return {"pruner": pruner, "command": " ".join(command[1:]), "wall_s": round(wall, 1),
            **summary(study)}  # fmt: skip


def summary(study: optuna.Study) -> dict[str, Any]:
    """Trials by state, epochs trained, the best trial, and the best value after each trial."""
    trials = study.get_trials(deepcopy=False)
    states = Counter(trial.state.name.lower() for trial in trials)
    best = study.best_trial
    spent, best_so_far, curve = 0, None, []
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    for trial in trials:
        spent += len(trial.intermediate_values)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            best_so_far = trial.value if best_so_far is None else max(best_so_far, trial.value)
        curve.append({"trial": trial.number, "epochs": spent, "best_value": best_so_far})
    return {
        "trials": len(trials),
        "states": dict(states),
        "epochs": spent,
        "trial_s": round(seconds, 1),
        "best_value": best.value,
        "best_trial": best.number,
        "best_params": best.params,
        "best_by_trial": curve,
    }


def table(results: list[dict[str, Any]]) -> str:
    """The Markdown table of docs/sweeps.md."""
    lines = [
        "| pruner | trials | pruned | epochs | trials' time | wall time | best value (trial) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['pruner']} | {r['trials']} | {r['states'].get('pruned', 0)} | {r['epochs']} | "
            f"{r['trial_s'] / 60:.1f} min | {r['wall_s'] / 60:.1f} min | "
            f"{r['best_value']:.4f} (#{r['best_trial']}) |"
        )
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """The best value found against the epochs spent so far, one line per search: how much
    training each search needed to reach its best."""
    figure, axes = plt.subplots(figsize=(6, 3.6))
    for r in results:
        curve = [point for point in r["best_by_trial"] if point["best_value"] is not None]
        label = f"pruner={r['pruner']} ({r['epochs']} epochs)"
        axes.step([p["epochs"] for p in curve], [p["best_value"] for p in curve], where="post",
                  marker="o", markersize=3, label=label)  # fmt: skip
    axes.set_xlabel("epochs trained by the search so far")
    axes.set_ylabel(f"best {STUDY_METRIC} so far")
    axes.set_title("20-trial Optuna search of the default experiment")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmark_pruning")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "pruning_search.json")
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "docs" / "images" / "pruning_search.png"
    )
    args = parser.parse_args()
    prepare_data()
    results = [run_search(pruner, args.trials, args.out / pruner) for pruner in PRUNERS]
    record = {
        "date": str(date.today()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores",
        "optuna": optuna.__version__,
        "searches": results,
    }
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    plot(results, args.plot)
    print(table(results))
    print(f"written: {args.json}, {args.plot}")


if __name__ == "__main__":
    main()
