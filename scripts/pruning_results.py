"""Test F1 against weight sparsity with ``callbacks=pruning`` (docs/pruning.md).

One Hydra multirun over ``callbacks.pruning.sparsity`` x seeds on the synthetic scenes; sparsity
0 is the same training without pruning (the "before"). Writes the medians over seeds as a
table (docs/pruning.md), the numbers (docs/pruning.json) and a plot
(docs/images/pruning_f1.png).

    .venv/bin/python scripts/pruning_results.py          # ~10 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from rolefusion.commands.report import read_jobs

ROOT = Path(__file__).resolve().parents[1]
DATA = [
    "data.source.num_train=1200", "data.source.num_val=200", "data.source.num_test=500",
    "data.source.image_size=32", "logger=none",
]  # fmt: skip
SPARSITIES = ("0.0", "0.5", "0.8", "0.9", "0.95", "0.98")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "pruning_results")
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, "-m", "rolefusion.train", "-m", *DATA, "callbacks=pruning",
         f"callbacks.pruning.sparsity={','.join(SPARSITIES)}",
         f"seed={','.join(map(str, args.seeds))}", f"hydra.sweep.dir={args.out}",
         "task_name=pruning_results"],
        check=True, cwd=ROOT,
    )  # fmt: skip
    runs = defaultdict(list)
    for job in read_jobs(args.out):
        if job.metrics is None:
            raise SystemExit(f"{job.directory}: no metrics.json ({job.error or 'incomplete'})")
        runs[job.overrides["callbacks.pruning.sparsity"]].append(job.metrics)
    rows = [
        {
            "target": float(target),
            "sparsity": statistics.median(m["pruning/sparsity"] for m in runs[target]),
            "f1": statistics.median(m["test/f1"] for m in runs[target]),
            "f1_runs": [m["test/f1"] for m in runs[target]],
        }
        for target in SPARSITIES
    ]
    lines = [
        "# Pruning: test F1 against sparsity",
        "",
        f"Measured {date.today()} with `python scripts/pruning_results.py` (seeds "
        f"{', '.join(map(str, args.seeds))}; default model, channel fusion; data: "
        f"`{' '.join(DATA[:4])}`). Global L1 magnitude pruning of every linear and convolutional "
        "weight, spread over the epochs; sparsity is the share of those weights at zero in the "
        "tested model. Target 0 is the same training without pruning. Medians over seeds.",
        "",
        "| target | sparsity reached | test macro-F1 | change from unpruned |",
        "|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['target']:g} | {row['sparsity']:.3f} | {row['f1']:.4f} | "
            f"{row['f1'] - rows[0]['f1']:+.4f} |"
        )
    lines += ["", "![F1 against sparsity](images/pruning_f1.png)", ""]
    (ROOT / "docs" / "pruning.md").write_text("\n".join(lines))
    (ROOT / "docs" / "pruning.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    figure, axis = plt.subplots(figsize=(4.5, 3.2))
    axis.plot([r["sparsity"] for r in rows], [r["f1"] for r in rows], marker="o")
    axis.set_xlabel("weight sparsity")
    axis.set_ylabel("test macro-F1 (median over seeds)")
    axis.set_ylim(0, 1.0)
    figure.tight_layout()
    figure.savefig(ROOT / "docs" / "images" / "pruning_f1.png", dpi=110)
    plt.close(figure)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
