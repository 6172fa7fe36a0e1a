"""The fusion benchmark: every fusion x every interaction family x seeds, and learning curves.

``run`` trains ``experiment=fusion_benchmark`` once per family (Hydra multiruns over fusion and
seed, cut into ``--parallel`` processes) and, for the families where inductive biases should show
most with little data, once per training-set size (the other sizes with ``--curve-seeds``). Every
run of a family sees the same number of training examples (:data:`BUDGETS`, i.e. ``budget /
num_train`` epochs), so a learning curve compares data, not compute. Expected duration with
``--parallel 2`` on 2 cores: measured 3.1 h of jobs on 2026-12-02, but tests ran beside part of
it and slowed those jobs up to 1.8x; about 2.75 h on an idle machine. There are 184 runs: 112
on synergy and grounding, 40,000 examples seen each, which they need to learn their interaction
(the twelve fusions x one seed on both, 24 runs, took 28 min), and 72 on redundant and additive
with a quarter of that. A run cut short resumes where it stopped (finished jobs are skipped,
interrupted ones resume from their last checkpoint); the report states the time during which
jobs ran, summed over the sittings.

Then (and alone, with ``report``) it runs ``rolefusion-report``'s statistics on each (family,
size) group (paired bootstrap against the best by validation, Holm) and writes
docs/fusion_benchmark.md with the ranking per family beside each fusion's derived ceiling, a
heatmap of test F1 relative to the full ceiling with the theory's bound where there is one, and
the learning curves.

    .venv/bin/python scripts/fusion_benchmark.py run --parallel 2   # trains, then reports
    .venv/bin/python scripts/fusion_benchmark.py report             # again, from the runs
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

from rolefusion.commands.report import report
from rolefusion.data.roleplay_scenes.interactions import INTERACTIONS
from sweep_runner import ROOT, run_sweeps

FUSIONS = ("channel", "sequence", "spatial", "concat", "late", "gated", "tensor",
           "low_rank_tensor", "film", "cross_attention", "image_only", "text_only")  # fmt: skip
MAIN_SIZE = 2000
"""Training examples of the main grid (the experiment's ``data.source.num_train``)."""
CURVE_FAMILIES = ("synergy", "grounding")
CURVE_SIZES = (500, 2000, 8000)
UNIMODAL = ("image_only", "text_only")
"""Trained at the main size only: their ceilings bound them at every size, so the learning curves'
other sizes spend the time on the fusions."""
BUDGETS = {"redundant": 10_000, "additive": 10_000, "synergy": 40_000, "grounding": 40_000}
"""Training examples seen per run (epochs = budget / num_train): 5 epochs of 2000 reach the
ceiling on the additive scenes; the interaction families need longer to leave the plateau where
each modality's own information is learnt first. After 12 epochs of 2000, concat had left it on
synergy for seed 0 but not for seeds 1-3 (0.446, 0.678, 0.462), cross_attention on grounding not
for seed 1 (0.630); after 20, cross_attention had for seeds 0-3 (0.906-0.938)
(docs/roleplay_scenes.md#interaction-families)."""


VALIDATE_EVERY = 2000
"""Training examples seen between validations: small sets would otherwise spend as long
validating (300 examples every epoch) as training."""


def schedule(budget: int, size: int) -> tuple[int, int]:
    """``(max_epochs, validate every n epochs)`` for ``budget`` examples seen from ``size``:
    validation about every :data:`VALIDATE_EVERY` examples, and at the last epoch (the epochs
    are rounded up to a multiple of the interval)."""
    every = max(1, VALIDATE_EVERY // size)
    return every * max(1, math.ceil(budget / size / every)), every


def sweeps(
    seeds: list[int], curve_seeds: list[int], fusions: list[str], families: list[str],
    sizes: list[int], budgets: dict[str, int], main_size: int,
) -> dict[str, list[str]]:  # fmt: skip
    """Name (``<family>_n<size>``) -> multirun overrides of ``experiment=fusion_benchmark``.

    The main grid runs ``seeds`` and comes first, so that a run cut short (re-running resumes it)
    already holds the comparison; the other sizes of a learning curve run ``curve_seeds`` and
    leave out the :data:`UNIMODAL` baselines.
    """

    def sweep(family: str, size: int, trained: list[str], chosen: list[int]) -> list[str]:
        epochs, every = schedule(budgets[family], size)
        return [
            "experiment=fusion_benchmark",
            f"model/fusion={','.join(trained)}",
            f"seed={','.join(map(str, chosen))}",
            f"data.source.interaction={family}",
            f"data.source.num_train={size}",
            f"trainer.max_epochs={epochs}",
            f"+trainer.check_val_every_n_epoch={every}",
        ]

    runs = {
        f"{family}_n{main_size}": sweep(family, main_size, fusions, seeds) for family in families
    }
    curve_fusions = [f for f in fusions if f not in UNIMODAL]
    for family in (f for f in families if f in CURVE_FAMILIES):
        for size in sorted(set(sizes) - {main_size}):
            runs[f"{family}_n{size}"] = sweep(family, size, curve_fusions, curve_seeds)
    return runs


def _overrides(job: Path) -> dict[str, str]:
    listed = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
    return dict(item.split("=", 1) for item in listed)


def collect(work: Path, resamples: int) -> pd.DataFrame:
    """One row per (family, size, fusion): the report's statistics beside the ceilings."""
    frames = []
    for group in sorted(p for p in work.iterdir() if p.is_dir()):
        jobs = sorted(group.glob("**/metrics.json"))
        if not jobs:
            continue
        report(group, out=group / "report", resamples=resamples)
        table = pd.read_csv(group / "report" / "report.csv")
        first = jobs[0].parent
        overrides = _overrides(first)
        ceilings: dict[str, dict] = {}
        seconds: dict[str, list[float]] = defaultdict(list)
        for metrics_file in jobs:
            result = json.loads(metrics_file.read_text())
            fusion = _overrides(metrics_file.parent)["model/fusion"]
            ceilings[fusion] = result["ceilings"]
            seconds[fusion].append(_duration(metrics_file.parent))
        table["family"] = overrides["data.source.interaction"]
        table["num_train"] = int(overrides["data.source.num_train"])
        table["epochs"] = int(overrides["trainer.max_epochs"])
        fusion = table["model/fusion"]
        table["applies"] = fusion.map({f: c["applies"] for f, c in ceilings.items()})
        table["ceiling"] = fusion.map({f: c["accuracy"] for f, c in ceilings.items()})
        table["full"] = fusion.map({f: c["all"]["fused"] for f, c in ceilings.items()})
        table["minutes"] = fusion.map({f: np.median(s) / 60 for f, s in seconds.items()})
        frames.append(table)
    if not frames:
        raise SystemExit(f"{work}: no finished jobs; run `fusion_benchmark.py run` first")
    return pd.concat(frames, ignore_index=True)


SITTING_GAP = 600
"""Seconds without a running job that separate two sittings of a resumed benchmark."""


def busy_time(work: Path) -> tuple[float, int]:
    """Seconds during which at least one job ran (the union of the jobs' intervals), and in how
    many sittings: unlike one ``run``'s wall time, it adds up a benchmark cut short and resumed,
    without the hours in between."""
    intervals = sorted(
        (_start(job.parent), (job.parent / "metrics.json").stat().st_mtime)
        for job in work.glob("**/metrics.json")
    )
    total, end, sittings = 0.0, -math.inf, 0
    for start, stop in intervals:
        sittings += start - end > SITTING_GAP
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total, sittings


def _start(job: Path) -> float:
    """When the job started training: its ``config.yaml``, which ``rolefusion-train`` writes
    only when it trains (Hydra rewrites ``.hydra/`` even for a finished job it then skips)."""
    return (job / "config.yaml").stat().st_mtime


def _duration(job: Path) -> float:
    """Seconds from the job's first file (its config) to its last (metrics.json)."""
    return (job / "metrics.json").stat().st_mtime - _start(job)


def bound_text(row: pd.Series) -> str:
    """The theory's prediction for a cell: its model class's ceiling, when below the full one."""
    if row["ceiling"] >= row["full"] - 1e-9:
        return "-"
    return f"≤ {row['ceiling']:.3f} ({row['applies']})"


def family_table(rows: pd.DataFrame) -> list[str]:
    lines = [
        "| rank | fusion | seeds | val F1 | test macro-F1 (95% CI) | test acc | ceiling of its "
        "class | theory's bound | F1 / full ceiling | p (Holm) | verdict |",
        "|---:|---|---:|---:|---|---:|---|---|---:|---:|---|",
    ]
    for rank, (_, row) in enumerate(rows.iterrows(), start=1):
        ci = (f"[{row['test/f1_ci_low']:.3f}, {row['test/f1_ci_high']:.3f}]"
              if not math.isnan(row["test/f1_ci_low"]) else "(n=1)")  # fmt: skip
        p = "-" if math.isnan(row["p"]) else ("<0.0001" if row["p"] < 1e-4 else f"{row['p']:.4f}")
        lines.append(
            f"| {rank} | {row['model/fusion']} | {int(row['n'])} | {row['val/f1_best_mean']:.3f} "
            f"| {row['test/f1_mean']:.3f} {ci} | {row['test/acc_mean']:.3f} "
            f"| {row['applies']} {row['ceiling']:.3f} | {bound_text(row)} "
            f"| {row['test/f1_mean'] / row['full']:.3f} | {p} | {row['verdict']} |"
        )
    return lines


def plot_heatmap(main: pd.DataFrame, path: Path) -> None:
    """Fusion x family: test F1 / full ceiling, the theory's bound under it where one exists."""
    families = [f for f in INTERACTIONS if f in set(main["family"])]
    fusions = [f for f in FUSIONS if f in set(main["model/fusion"])]
    grid = np.full((len(fusions), len(families)), np.nan)
    for _, row in main.iterrows():
        grid[fusions.index(row["model/fusion"]), families.index(row["family"])] = (
            row["test/f1_mean"] / row["full"]
        )
    figure, axis = plt.subplots(figsize=(2.0 * len(families) + 3, 0.45 * len(fusions) + 1.8))
    image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for _, row in main.iterrows():
        i, j = fusions.index(row["model/fusion"]), families.index(row["family"])
        text = f"{grid[i, j]:.2f}"
        if row["ceiling"] < row["full"] - 1e-9:
            text += f"\n≤{row['ceiling'] / row['full']:.2f}"
        axis.text(j, i, text, ha="center", va="center", fontsize=7,
                  color="white" if grid[i, j] < 0.6 else "black")  # fmt: skip
    axis.set_xticks(range(len(families)), families)
    axis.set_yticks(range(len(fusions)), fusions)
    seeds = int(main["n"].max())
    axis.set_title(f"test macro-F1 / full ceiling, mean over {seeds} seeds\n"
                   "(≤: the bound the theory puts on that model class)", fontsize=9)  # fmt: skip
    figure.colorbar(image, label="F1 / full ceiling")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_learning_curves(curves: pd.DataFrame, path: Path) -> None:
    """Test F1 against training examples, one line per fusion, one panel per family."""
    families = [f for f in CURVE_FAMILIES if f in set(curves["family"])]
    figure, axes = plt.subplots(1, len(families), figsize=(6.5 * len(families), 4.6), sharey=True,
                                squeeze=False)  # fmt: skip
    colours = plt.get_cmap("tab20")
    for axis, family in zip(axes[0], families, strict=True):
        rows = curves[curves["family"] == family]
        for k, fusion in enumerate(f for f in FUSIONS if f in set(rows["model/fusion"])):
            line = rows[rows["model/fusion"] == fusion].sort_values("num_train")
            style = "--" if fusion in (*UNIMODAL, "late") else "-"
            label = fusion if len(line) > 1 else f"{fusion} (n={line['num_train'].iloc[0]} only)"
            axis.plot(line["num_train"], line["test/f1_mean"], style, marker="o", markersize=3,
                      color=colours(k), label=label)  # fmt: skip
        for name, value in rows.iloc[0][["full"]].items():
            axis.axhline(value, color="grey", linewidth=1, linestyle=":")
            axis.annotate(f"{name} ceiling", (rows["num_train"].min(), value), fontsize=7,
                          va="bottom", color="grey")  # fmt: skip
        additive = rows[rows["applies"] == "additive"]["ceiling"]
        if len(additive):
            axis.axhline(additive.iloc[0], color="grey", linewidth=1, linestyle="-.")
            axis.annotate("additive ceiling", (rows["num_train"].min(), additive.iloc[0]),
                          fontsize=7, va="bottom", color="grey")  # fmt: skip
        axis.set_xscale("log")
        axis.minorticks_off()  # the sizes themselves are the ticks
        sizes = sorted(set(rows["num_train"]))
        axis.set_xticks(sizes, [str(n) for n in sizes])
        axis.set_xlabel("training examples (same number seen per run)")
        seeds = "/".join(str(int(rows[rows["num_train"] == n]["n"].max())) for n in sizes)
        axis.set_title(f"{family} (seeds per size: {seeds})")
        axis.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("test macro-F1")
    axes[0][-1].legend(fontsize=7, ncol=2, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown(table: pd.DataFrame, meta: dict) -> str:
    main = table[table["num_train"] == meta["main_size"]]
    lines = [
        "# Fusion benchmark: which fusion for which interaction",
        "",
        f"Measured {meta['date']} by `{meta['command']}` on a 2-core CPU: {meta['wall']}. "
        "Each job is `experiment=fusion_benchmark` with one fusion and one "
        "family: synthetic role-play scenes at 32 px, 8 roles, 5% label noise, "
        f"{meta['main_size']}/300/500 examples unless a learning curve says otherwise; small "
        "CNN and bidirectional LSTM encoders, `model.dim=128`, AdamW, cosine schedule; each run "
        "sees the same number of training examples per family ("
        + ", ".join(f"{family}: {seen:,}" for family, seen in meta["budgets"].items())
        + "); the test split "
        "is scored with the best checkpoint by validation F1. Families and their ceilings: "
        "[roleplay_scenes.md](roleplay_scenes.md#interaction-families).",
        "",
        "Rows are ranked by validation F1 (the sweep's optimised metric); each is compared with "
        "the first by a paired bootstrap on the same 500 test examples (10,000 resamples, seeds "
        "as strata, two-sided), Holm-corrected within the family: `worse` and `better` at "
        "p < 0.05, `tied` otherwise. *Ceiling of its class* is the best accuracy any model of "
        "that class can reach (full: reads both modalities with any interaction; additive: "
        "class scores a sum of one function per modality, as late fusion's are; image_only, "
        "text_only); *theory's bound* repeats it where it is below the full ceiling, as the "
        "prediction the measured cell must respect. Macro-F1 of a model at its ceiling equals "
        "the accuracy ceiling only for balanced predictions; it can be lower, never higher in "
        "expectation.",
        "",
        "![F1 relative to the full ceiling, fusion x family](images/fusion_benchmark.png)",
        "",
    ]
    for family in [f for f in INTERACTIONS if f in set(main["family"])]:
        rows = main[main["family"] == family]
        lines += [f"## {family}", "", *family_table(rows), ""]
    curves = table[table["family"].isin(CURVE_FAMILIES)]
    if curves["num_train"].nunique() > 1:
        lines += [
            "## Learning curves",
            "",
            "Inductive biases show most with little data: the same runs at "
            f"{', '.join(str(n) for n in sorted(set(curves['num_train'])))} training examples "
            "(epochs scaled so that every run sees the same number of examples; seeds per size "
            "in the plot's title). Each cell is test macro-F1 and its verdict against the best by "
            "validation at that size, from the same paired bootstrap. The unimodal baselines "
            f"train at {meta['main_size']} only: their ceilings bound them at any size.",
            "",
            "![Test macro-F1 against training examples](images/fusion_benchmark_curves.png)",
            "",
        ]
        for family in CURVE_FAMILIES:
            rows = curves[curves["family"] == family]
            if rows.empty:
                continue
            cells = rows.assign(cell=[
                f"{f1:.3f} {verdict}" for f1, verdict in zip(rows["test/f1_mean"], rows["verdict"],
                                                             strict=True)
            ]).pivot(index="model/fusion", columns="num_train", values="cell")  # fmt: skip
            cells = cells.reindex([f for f in FUSIONS if f in set(rows["model/fusion"])])
            sizes = list(cells.columns)
            header = "| fusion | " + " | ".join(f"n={n}" for n in sizes) + " |"
            lines += [f"### {family}", "", header, "|---|" + "---|" * len(sizes)]
            lines += [
                f"| {fusion} | " + " | ".join("-" if pd.isna(c) else c for c in row) + " |"
                for fusion, row in cells.iterrows()
            ]
            lines += [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--curve-seeds", type=int, nargs="+", default=[1],
                        help="seeds of the learning curves' other sizes")  # fmt: skip
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--fusions", nargs="+", default=list(FUSIONS))
    parser.add_argument("--families", nargs="+", default=list(INTERACTIONS))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(CURVE_SIZES),
                        help="training-set sizes of the learning curves")  # fmt: skip
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every family's training budget (e.g. 0.01 to try it out)",
    )
    parser.add_argument("--main-size", type=int, default=MAIN_SIZE,
                        help="training examples of the main grid")  # fmt: skip
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides for every job")
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "fusion_benchmark")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "fusion_benchmark.md")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    budgets = {f: max(1, round(b * args.budget_scale)) for f, b in BUDGETS.items()}
    timing = args.work / "timing.json"
    if args.action == "run":
        chosen = sweeps(args.seeds, args.curve_seeds, args.fusions, args.families, args.sizes,
                        budgets, args.main_size)  # fmt: skip
        run_sweeps(chosen, args.work, args.parallel, args.override)
        timing.write_text(json.dumps({"parallel": args.parallel, "main_size": args.main_size,
                                      "budgets": budgets,
                                      "command": shlex.join(["python", *sys.argv]),
                                      "date": str(date.today())}) + "\n")  # fmt: skip
    table = collect(args.work, args.resamples)
    measured = json.loads(timing.read_text()) if timing.is_file() else {}
    busy, sittings = busy_time(args.work)
    wall = f"{busy / 3600:.2f} h while jobs ran" + (
        f" ({sittings} sittings)" if sittings > 1 else ""
    )
    if measured:
        wall += f", {measured['parallel']} processes side by side"
    main_size = measured.get("main_size", MAIN_SIZE)
    meta = {
        "date": measured.get("date", str(date.today())),
        "wall": wall,
        "main_size": main_size,
        "budgets": measured.get("budgets", budgets),
        "command": measured.get("command", "python scripts/fusion_benchmark.py run"),
    }
    images = args.out.parent / "images"
    images.mkdir(parents=True, exist_ok=True)
    main_grid = table[table["num_train"] == main_size]
    plot_heatmap(main_grid, images / "fusion_benchmark.png")
    plot_learning_curves(table[table["family"].isin(CURVE_FAMILIES)],
                         images / "fusion_benchmark_curves.png")  # fmt: skip
    args.out.write_text(markdown(table, meta))
    table.to_json(args.out.with_suffix(".json"), orient="records", indent=1)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
