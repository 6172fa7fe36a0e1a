"""Figures for the README: the cost of `make train` and the test F1 of every fusion.

Measures, on this machine, after set-up (the virtual environment exists, the data is cached):

1. wall time and peak memory (max RSS) of `make train`, repeated; the median is reported;
2. test accuracy and macro-F1 of each fusion and unimodal baseline with the default
   configuration, over several training seeds (a Hydra multirun), beside the ceilings that
   follow from the synthetic data's construction.

Writes a Markdown report (default ``docs/core_benchmark.md``) and its numbers as JSON beside it.

    .venv/bin/python scripts/benchmark_core.py                      # ~35 min on 2 cores
    .venv/bin/python scripts/benchmark_core.py --repeats 1 --seeds 1 # quicker, noisier
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from rolefusion.data.roleplay_scenes import ceilings

ROOT = Path(__file__).resolve().parents[1]
FUSIONS = ("channel", "sequence", "spatial", "concat", "image_only", "text_only")
DEFAULT_DATA = {"num_roles": 8, "ambiguity": 2, "label_noise": 0.05}


def time_make_train(output_root: Path, repeats: int) -> dict[str, object]:
    """Run `make train` ``repeats`` times in a row; wall seconds and peak RSS of each."""
    walls, peaks = [], []
    for repeat in range(repeats):
        args = f"ARGS=paths.log_dir={output_root}/make_train logger=none"
        start = time.perf_counter()
        subprocess.run(["make", "-s", "train", args], cwd=ROOT, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        # ru_maxrss of children is the largest of any child waited for so far, in KiB.
        peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        print(f"make train #{repeat + 1}: {walls[-1]:.1f} s", flush=True)
    return {"wall_s": walls, "wall_s_median": statistics.median(walls), "peak_rss_mib": max(peaks)}


def fusion_scores(output_root: Path, seeds: list[int]) -> dict[str, dict[str, list[float]]]:
    """One multirun over fusions x seeds with everything else at its default."""
    sweep_dir = output_root / "fusions"
    command = [
        sys.executable, "-m", "rolefusion.train", "-m",
        f"model/fusion={','.join(FUSIONS)}", f"seed={','.join(map(str, seeds))}",
        "logger=none", f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True)
    scores: dict[str, dict[str, list[float]]] = {f: {"acc": [], "f1": []} for f in FUSIONS}
    for metrics_file in sorted(sweep_dir.glob("*/metrics.json")):
        result = json.loads(metrics_file.read_text())
        overrides = dict(o.split("=", 1) for o in result["overrides"])
        fusion = overrides["model/fusion"]
        scores[fusion]["acc"].append(result["metrics"]["test/acc"])
        scores[fusion]["f1"].append(result["metrics"]["test/f1"])
    return scores


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def report(timing: dict, scores: dict, seeds: list[int], command: str) -> str:
    ceiling = ceilings(**DEFAULT_DATA)
    rows = []
    for fusion in FUSIONS:
        acc, f1 = scores[fusion]["acc"], scores[fusion]["f1"]
        bound = ceiling.get(fusion, ceiling["fused"])
        rows.append(f"| {fusion} | {_mean_std(acc)} | {_mean_std(f1)} | {bound:.3f} |")
    walls = ", ".join(f"{w:.0f}" for w in timing["wall_s"])
    return "\n".join(
        [
            "# Core benchmark: cost of `make train` and F1 of every fusion",
            "",
            f"Measured {date.today()} on {platform.machine()} with {os.cpu_count()} CPU cores, "
            f"Python {platform.python_version()}, by `{command}`.",
            "",
            "## `make train` (after set-up, data cached)",
            "",
            f"- wall time, median of {len(timing['wall_s'])}: **{timing['wall_s_median']:.0f} s** "
            f"(each: {walls} s)",
            f"- peak memory (max RSS of the training process): "
            f"**{timing['peak_rss_mib']:.0f} MiB**",
            "",
            "## Test scores of each fusion on the default data",
            "",
            "Default configuration (2000/500/500 synthetic scenes at 64 px, 8 roles, ambiguity 2, "
            "5% label noise; small CNN + BiLSTM, `model.dim=128`, AdamW, cosine, 10 epochs), "
            f"training seeds {', '.join(map(str, seeds))}, mean ± standard deviation over seeds. "
            "The ceiling is the accuracy of a Bayes-optimal predictor reading its cues perfectly "
            "(docs/roleplay_scenes.md); macro-F1 has the same ceiling for fused models, and a "
            "unimodal one lies between 0.319 and 0.479 depending on how it breaks ties.",
            "",
            "| fusion | test accuracy | test macro-F1 | accuracy ceiling |",
            "|---|---:|---:|---:|",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of `make train`")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "core_benchmark.md")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark_core")
    parser.add_argument(
        "--timing-from", type=Path, help="reuse the `make train` timing of an earlier JSON report"
    )
    args = parser.parse_args()

    subprocess.run(["make", "-s", "install"], cwd=ROOT, check=True)
    # Generate the default data once, so the timed runs measure training, not generation.
    subprocess.run(
        [sys.executable, "-m", "rolefusion.train", "train=false", "test=false", "logger=none",
         f"paths.log_dir={args.work}/warmup"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    if args.timing_from:
        timing = json.loads(args.timing_from.read_text())["make_train"]
    else:
        timing = time_make_train(args.work, args.repeats)
        (args.work / "make_train.json").write_text(json.dumps({"make_train": timing}, indent=2))
    scores = fusion_scores(args.work, args.seeds)
    command = "python scripts/benchmark_core.py " + " ".join(sys.argv[1:])
    args.out.write_text(report(timing, scores, args.seeds, command.strip()))
    args.out.with_suffix(".json").write_text(
        json.dumps({"make_train": timing, "scores": scores, "seeds": args.seeds}, indent=2) + "\n"
    )
    print(args.out.read_text())


if __name__ == "__main__":
    main()
