"""``rolefusion-report SWEEP_DIR``: a sweep's configurations, seeds averaged, vs the best one.

One row per configuration, the best (C1) first, and whether its difference from C1 is real.

Reads every job directory of a Hydra multirun (``.hydra/overrides.yaml``, ``config.yaml``,
``metrics.json`` or ``failed.json``, ``predictions.csv``), groups jobs whose overrides differ only
in ``seed``, ranks the configurations by the sweep's optimised metric on validation
(``optimized_metric``, ``val/f1_best`` by default) and compares each with the best on the same
test examples: a paired bootstrap over examples with seeds as strata, Holm-corrected
(:mod:`rolefusion.runs.statistics`). Writes ``report.md``, ``report.csv`` and plots (the test
metric by configuration with 95% confidence intervals, per-class F1 as a heatmap, the best
configuration's confusion matrix) into the sweep directory or ``--out``, and prints the table.
Pruned Optuna trials are counted beside failed and incomplete jobs, never averaged; a sweep
directory holding an Optuna study gets a section on it (:mod:`rolefusion.runs.optuna_report`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.container import BarContainer, ErrorbarContainer
from rich.console import Console
from rich.table import Table

from rolefusion.runs.optuna_report import optuna_section
from rolefusion.runs.plots import plot_confusion_matrix
from rolefusion.runs.predictions import (
    PREDICTIONS_FILE,
    aligned,
    class_names_of,
    decoded,
    read_predictions,
)
from rolefusion.runs.statistics import (
    ALPHA,
    RESAMPLES,
    PairedComparison,
    SeedSummary,
    holm,
    paired_bootstrap,
    seed_summary,
    verdict,
)
from rolefusion.runs.sweep_jobs import Job, read_jobs

IGNORED_KEYS = ("seed", "hydra.", "paths.")
"""Overrides that do not make a configuration: seeds are averaged over; paths are plumbing."""

DEFAULT_RANKING = "val/f1_best"
PAIRED_METRICS = {"test/f1": "f1", "test/acc": "acc"}
"""The test metrics the paired test can recompute from ``predictions.csv``."""

MODALITIES = "modalities"
"""The pseudo-setting that tells apart jobs which read different modalities."""

LABEL_LENGTH = 34
"""Longest configuration label on a plot axis; the table holds the full settings."""


@dataclass
class Configuration:
    settings: dict[str, str]
    jobs: list[Job] = field(default_factory=list)
    name: str = ""
    """``C1``, ``C2``, ... in rank order: what the plots call it."""

    @property
    def done(self) -> list[Job]:
        return [job for job in self.jobs if job.status == "done"]

    def values(self, metric: str) -> list[float]:
        return [job.metrics[metric] for job in self.done if metric in job.metrics]

    def summary(self, metric: str) -> SeedSummary:
        """Mean, std and 95% confidence interval of ``metric`` over the finished seeds."""
        return seed_summary(self.values(metric))

    def mean(self, metric: str) -> float:
        return self.summary(metric).mean

    def count(self, status: str) -> int:
        return sum(job.status == status for job in self.jobs)

    @property
    def label(self) -> str:
        """Settings with keys shortened to their last component: ``fusion=concat``."""
        return " ".join(f"{_last(k)}={v}" for k, v in self.settings.items())


@dataclass(frozen=True)
class Tested:
    """A configuration's paired test against the best: ``p`` is Holm-adjusted (NaN when not
    tested), ``verdict`` is ``best``, ``better``, ``worse``, ``tied`` or ``-``."""

    verdict: str
    p: float = math.nan
    comparison: PairedComparison | None = None
    note: str | None = None


def _last(key: str) -> str:
    return key.replace("/", ".").split(".")[-1]


def _modalities(job: Job) -> str:
    """The modalities a job's model read (``image+text``), from its resolved config."""
    return "+".join(job.setting("data.modalities") or []) or "-"


def configurations(jobs: list[Job]) -> tuple[list[str], list[Configuration]]:
    """The swept keys (those whose value differs between jobs, seeds aside) and one
    :class:`Configuration` per combination of their values.

    Jobs whose models read different modalities are never one configuration, even with the
    same overrides: a data set that was text-only for some jobs of a sweep (MELD before its
    frames were extracted) would otherwise be averaged with itself multimodal.
    """
    keys = sorted({k for job in jobs for k in job.overrides if not k.startswith(IGNORED_KEYS)})
    swept = [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1] or keys
    if len({_modalities(job) for job in jobs if job.config}) > 1:
        swept.append(MODALITIES)
    groups: dict[tuple, Configuration] = {}
    for job in jobs:
        settings = {k: job.overrides.get(k, "-") for k in swept}
        if MODALITIES in settings:
            settings[MODALITIES] = _modalities(job)
        key = tuple(settings.items())
        groups.setdefault(key, Configuration(settings)).jobs.append(job)
    return swept, list(groups.values())


def test_metrics(configs: list[Configuration]) -> list[str]:
    """``test/*`` metrics present in any finished job, the usual ones first."""
    present = {m for c in configs for j in c.done for m in j.metrics if m.startswith("test/")}
    first = ["test/f1", "test/acc", "test/precision", "test/recall", "test/auroc", "test/f1_micro"]
    return [m for m in first if m in present] + sorted(present - set(first) - {"test/loss"})


def ranking_metric(jobs: list[Job]) -> str:
    """The sweep's ``optimized_metric`` (what a sweeper maximised), ``val/f1_best`` if unset."""
    named = {job.setting("optimized_metric") for job in jobs if job.status == "done"} - {None}
    return named.pop() if len(named) == 1 else DEFAULT_RANKING


def rank(configs: list[Configuration], metric: str) -> list[Configuration]:
    """Best first by the mean of ``metric`` (lowest first for a loss); configurations without
    a value last. Names them ``C1``, ``C2``, ... in that order."""
    sign = 1 if "loss" in metric else -1

    def key(config: Configuration) -> tuple[bool, float]:
        mean = config.mean(metric)
        return (math.isnan(mean), 0.0 if math.isnan(mean) else sign * mean)

    ranked = sorted(configs, key=key)
    for position, config in enumerate(ranked, 1):
        config.name = f"C{position}"
    return ranked


def _paired_setting(job: Job, metric: str) -> dict[str, Any]:
    """How ``metric`` is computed for the job's task: what :func:`paired_bootstrap` needs."""
    task = job.setting("data.task", "multiclass")
    average = job.setting("model.average", "macro")
    return {
        "metric": PAIRED_METRICS[metric],
        "average": "binary" if task == "binary" else average,
        "multilabel": task == "multilabel",
    }


def compare_with_best(
    configs: list[Configuration],
    metric: str = "test/f1",
    resamples: int = RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> list[Tested]:
    """Each configuration against the first (the best), on the same test examples: a paired
    bootstrap over ``predictions.csv`` rows aligned by id, every seed a stratum, then Holm's
    correction over the comparisons made. One :class:`Tested` per configuration, in order.

    Raises ``ValueError`` naming the files when two runs' predictions hold different examples.
    """
    best = configs[0]
    if not best.done:
        return [Tested("-", note="no finished job")] * len(configs)
    frames: dict[Path, pd.DataFrame] = {}

    def read(jobs: list[Job]) -> dict[Path, pd.DataFrame]:
        for job in jobs:
            if job.predictions not in frames:
                frames[job.predictions] = read_predictions(job.predictions)
        return {job.predictions: frames[job.predictions] for job in jobs}

    setting = _paired_setting(best.done[0], metric)
    multilabel = setting.pop("multilabel")
    missing_best = [str(j.predictions) for j in best.done if not j.predictions.is_file()]
    tested: list[Tested] = [Tested("best")]
    comparisons: dict[int, PairedComparison] = {}
    for position, config in enumerate(configs[1:], 1):
        missing = [str(j.predictions) for j in config.done if not j.predictions.is_file()]
        if not config.done:
            pruned = config.count("pruned") == len(config.jobs)
            tested.append(Tested("-", note="pruned: not tested" if pruned else "no finished job"))
        elif missing_best:
            tested.append(
                Tested(
                    "-",
                    note=f"not tested: the reference C1 has no "
                    f"{PREDICTIONS_FILE} in {', '.join(missing_best)}",
                )
            )
        elif missing:
            tested.append(
                Tested("-", note=f"not tested: no {PREDICTIONS_FILE} in {', '.join(missing)}")
            )
        else:
            rows = aligned(read(best.done) | read(config.done))
            decisions = [decoded(frame, multilabel) for frame in rows.values()]
            labels = decisions[0][0]
            predicted = [p for _, p in decisions]
            reference, candidate = predicted[: len(best.done)], predicted[len(best.done) :]
            num_classes = len(class_names_of(next(iter(rows.values()))))
            comparisons[position] = paired_bootstrap(
                labels,
                candidate,
                reference,
                num_classes=num_classes,
                resamples=resamples,
                seed=seed,
                **setting,
            )
            tested.append(Tested("tied"))
    adjusted = holm([c.p_value for c in comparisons.values()])
    for (position, comparison), p in zip(comparisons.items(), adjusted, strict=True):
        tested[position] = Tested(verdict(comparison.difference, p, alpha), p, comparison)
    return tested


# -- the tables -------------------------------------------------------------------------------


def summary_frame(
    swept: list[str], configs: list[Configuration], metrics: list[str], tested: list[Tested]
) -> pd.DataFrame:
    """``report.csv``: the swept keys, ``n`` (finished seeds), ``jobs``, ``failed``,
    ``incomplete``, ``pruned`` (Optuna trials stopped early: counted, never averaged),
    ``<metric>_mean``, ``_std``, ``_ci_low``, ``_ci_high`` per metric, then ``p``
    (Holm-adjusted) and ``verdict``; an undefined number is left empty (NaN)."""
    rows = []
    for config, test in zip(configs, tested, strict=True):
        row: dict[str, Any] = {k: config.settings[k] for k in swept}
        row |= {
            "n": len(config.done),
            "jobs": len(config.jobs),
            "failed": config.count("failed"),
            "incomplete": config.count("incomplete"),
            "pruned": config.count("pruned"),
            "running": config.count("running"),
        }
        for metric in metrics:
            s = config.summary(metric)
            row |= {
                f"{metric}_mean": s.mean,
                f"{metric}_std": s.std,
                f"{metric}_ci_low": s.ci_low,
                f"{metric}_ci_high": s.ci_high,
            }
        rows.append(row | {"p": test.p, "verdict": test.verdict})
    return pd.DataFrame(rows)


def readable(summary: SeedSummary) -> str:
    """``mean ± std [ci_low, ci_high]``; one seed: ``mean (n=1)``, no interval."""
    if summary.n == 0:
        return "-"
    if summary.n == 1:
        return f"{summary.mean:.4f} (n=1)"
    return f"{summary.mean:.4f} ± {summary.std:.4f} [{summary.ci_low:.4f}, {summary.ci_high:.4f}]"


def _p_text(test: Tested, resamples: int) -> str:
    if math.isnan(test.p):
        return "-"
    return f"<{1 / resamples:g}" if test.p < 1 / resamples else f"{test.p:.4f}"


def _difference_text(test: Tested) -> str:
    if test.verdict == "best":
        return "reference"
    if test.comparison is None:
        return "-"
    c = test.comparison
    return f"{c.difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"


def readable_table(
    swept: list[str],
    configs: list[Configuration],
    metrics: list[str],
    tested: list[Tested],
    metric: str,
    resamples: int,
) -> tuple[list[str], list[list[str]]]:
    """The header and rows that ``report.md`` and the terminal show."""
    header = [
        "config",
        *swept,
        "n",
        "jobs",
        "failed",
        "incomplete",
        "pruned",
        "running",
        *metrics,
        f"Δ {metric} vs C1 [95% CI]",
        "p (Holm)",
        "verdict",
    ]
    rows = [
        [
            config.name,
            *(config.settings[k] for k in swept),
            str(len(config.done)),
            str(len(config.jobs)),
            str(config.count("failed")),
            str(config.count("incomplete")),
            str(config.count("pruned")),
            str(config.count("running")),
            *(readable(config.summary(m)) for m in metrics),
            _difference_text(test),
            _p_text(test, resamples),
            test.verdict,
        ]
        for config, test in zip(configs, tested, strict=True)
    ]
    return header, rows


def write_markdown(
    path: Path,
    sweep_dir: Path,
    header: list[str],
    rows: list[list[str]],
    method: str,
    notes: list[str],
    failures: list[Job],
    plots: list[tuple[str, str]],
    sections: Sequence[str] = (),
) -> None:
    lines = [
        f"# Sweep report: {sweep_dir}",
        "",
        method,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(str(v) for v in row) + " |" for row in rows),
        "",
    ]
    if notes:
        lines += ["Notes:", "", *(f"- {note}" for note in notes), ""]
    if failures:
        lines += ["## Failed jobs", ""]
        lines += [f"- `{job.directory}`: {job.error}" for job in failures]
        lines += [""]
    for title, name in plots:
        lines += [f"![{title}]({name})", ""]
    lines += sections
    path.write_text("\n".join(lines))


def method_text(
    ranking: str,
    metric: str,
    configs: list[Configuration],
    tested: list[Tested],
    resamples: int,
    seed: int,
    alpha: float,
) -> str:
    """What ``report.md`` says the numbers mean and how the test was done."""
    compared = [t.comparison for t in tested if t.comparison is not None]
    examples = f"the same {compared[0].examples} test examples" if compared else "the same examples"
    return "\n".join(
        [
            "One row per configuration (C1, C2, ... in rank order; the plots use these names), "
            f"best first by {ranking}; the test metrics beside it. Each cell: mean ± standard "
            "deviation [95% confidence interval of the mean, "
            "Student t with n − 1 degrees of freedom] over the configuration's finished seeds; "
            "`(n=1)`: a single seed, so no spread and no interval.",
            "",
            f"**Is the difference real?** Every configuration is compared with C1 on {examples}, "
            f"by {_metric_title(metric, configs)}: a paired bootstrap with {resamples:,} resamples "
            f"of the examples drawn with replacement (seed {seed}). Every seed of both "
            "configurations is scored on the same resample (seeds are strata), and the statistic "
            "is the difference of the means over seeds (Δ, with its 95% percentile interval). "
            "Two-sided p = min(1, 2·min(P(Δ* ≤ 0), P(Δ* ≥ 0))), adjusted by Holm's step-down "
            f"method over the {len(compared)} comparison{'s' * (len(compared) != 1)}; "
            f"α = {alpha}. **worse** / **better**: "
            f"adjusted p < {alpha} and a lower / higher mean than C1; **better** means the "
            "configuration picked on validation was beaten on test. **tied**: no difference "
            "detected at this α, which does not prove there is none.",
        ]
    )


# -- the plots --------------------------------------------------------------------------------


def _axis_label(config: Configuration) -> str:
    label = f"{config.name} {config.label}"
    return label if len(label) <= LABEL_LENGTH else label[: LABEL_LENGTH - 1] + "…"


def _metric_title(metric: str, configs: list[Configuration]) -> str:
    job = next((j for c in configs for j in c.done), None)
    task = job.setting("data.task", "multiclass") if job else "multiclass"
    average = job.setting("model.average", "macro") if job else "macro"
    split, _, name = metric.partition("/")
    if name == "f1":
        return f"{split} F1 of the positive class" if task == "binary" else f"{split} {average}-F1"
    return {"acc": f"{split} accuracy"}.get(name, metric)


def _seeds_text(counts: Sequence[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low} seed{'s' * (high > 1)}" if low == high else f"{low}–{high} seeds"


def plot_metric(
    configs: list[Configuration], metric: str, path: Path
) -> tuple[BarContainer, ErrorbarContainer | None]:
    """Bars of ``metric``'s mean per configuration with 95% confidence intervals; a
    configuration with one seed gets no error bar (not a ±0 one). A score's interval is drawn
    cut at 0 and 1, the values it can take (few seeds make Student-t intervals wide); the tables
    keep it whole. Returns what was drawn."""
    shown = [c for c in configs if c.summary(metric).n]
    summaries = [c.summary(metric) for c in shown]
    bounded = all(0 <= s.mean <= 1 for s in summaries)
    figure, axis = plt.subplots(figsize=(max(6, 0.55 * len(shown) + 2.5), 4.8))
    positions = np.arange(len(shown))
    bars = axis.bar(positions, [s.mean for s in summaries], color="tab:blue")
    spread = [i for i, s in enumerate(summaries) if s.n > 1]
    low = [max(summaries[i].ci_low, 0) if bounded else summaries[i].ci_low for i in spread]
    high = [min(summaries[i].ci_high, 1) if bounded else summaries[i].ci_high for i in spread]
    errorbars = None
    if spread:
        means = np.array([summaries[i].mean for i in spread])
        errorbars = axis.errorbar(positions[spread], means, yerr=[means - low, high - means],
                                  fmt="none", ecolor="black", capsize=3)  # fmt: skip
    axis.set_xticks(positions, [_axis_label(c) for c in shown], rotation=40, ha="right", fontsize=8)
    counts = [s.n for s in summaries]
    interval = "mean ± 95% CI" if max(counts) > 1 else "mean, no interval"
    single = " (no interval where n=1)" if min(counts) == 1 < max(counts) else ""
    axis.set_title(
        f"{_metric_title(metric, configs)}, {interval} over {_seeds_text(counts)}{single}",
        fontsize=10,
    )
    axis.set_ylabel(metric)
    if bounded:
        axis.set_ylim(0, 1.05)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return bars, errorbars


def plot_per_class(configs: list[Configuration], path: Path) -> bool:
    """Configurations x classes, test F1 averaged over seeds, with the values written in when
    the grid is small enough to read them."""
    shown = [c for c in configs if any(j.result and "per_class" in j.result for j in c.done)]
    if not shown:
        return False
    classes = list(next(j.result for j in shown[0].done if "per_class" in j.result)["per_class"])
    grid = np.array(
        [
            [
                np.mean(
                    [j.result["per_class"][name]["f1"] for j in c.done if "per_class" in j.result]
                )
                for name in classes
            ]
            for c in shown
        ]
    )
    figure, axis = plt.subplots(
        figsize=(max(5, 0.65 * len(classes) + 4), max(3, 0.4 * len(shown) + 1.8))
    )
    image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    if grid.size <= 400:
        for (row, column), value in np.ndenumerate(grid):
            axis.text(
                column,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if value > 0.6 else "white",
            )
    axis.set_xticks(range(len(classes)), classes, rotation=40, ha="right", fontsize=8)
    axis.set_yticks(range(len(shown)), [_axis_label(c) for c in shown], fontsize=8)
    axis.set_xlabel("class")
    counts = [len([j for j in c.done if "per_class" in j.result]) for c in shown]
    axis.set_title(f"per-class test F1, mean over {_seeds_text(counts)}", fontsize=10)
    figure.colorbar(image, label="test F1")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_confusion(config: Configuration, path: Path) -> bool:
    results = [j.result for j in config.done if "confusion_matrix" in (j.result or {})]
    if not results:
        return False
    matrix = np.sum([np.array(r["confusion_matrix"]) for r in results], axis=0)
    if matrix.ndim == 3:  # multilabel: one 2x2 per class -> false negatives / positives per class
        return False
    classes = results[0].get("classes") or [str(i) for i in range(len(matrix))]
    title = f"{_axis_label(config)}: test, summed over {_seeds_text([len(results)])}"
    plot_confusion_matrix(matrix, classes, title, path)
    return True


# -- the command ------------------------------------------------------------------------------


def report(
    sweep_dir: Path,
    out: Path | None = None,
    metric: str = "test/f1",
    rank_by: str | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> Path:
    """Write the report of ``sweep_dir`` into ``out`` (default: the sweep directory).

    Args:
        metric: the test metric plotted and compared with the best (``test/f1``, ``test/acc``).
        rank_by: what ranks the rows (default: the jobs' ``optimized_metric``).
        resamples, seed, alpha: of the paired bootstrap and Holm's correction.
    """
    if metric not in PAIRED_METRICS:
        raise ValueError(
            f"metric: the paired test recomputes {list(PAIRED_METRICS)}, got {metric!r}"
        )
    out = out or sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    jobs = read_jobs(sweep_dir)
    swept, configs = configurations(jobs)
    notes = []
    if running := sum(job.status == "running" for job in jobs):
        notes.append(f"{running} of {len(jobs)} jobs still pending or running on Slurm: run "
                     "this command again once they have ended")  # fmt: skip
    available = {m for job in jobs if job.metrics for m in job.metrics}
    if rank_by is not None and rank_by not in available:
        raise ValueError(
            f"--rank-by {rank_by}: no finished job has it; they have {sorted(available)}"
        )
    if rank_by is not None:
        ranking = f"**{rank_by}** (`--rank-by`)"
    else:
        rank_by = ranking_metric(jobs)
        ranking = f"**{rank_by}**, the sweep's `optimized_metric` (validation)"
    if rank_by not in available and available:
        notes.append(f"no finished job has {rank_by}: ranked by {metric}, so C1 is chosen on test")
        rank_by, ranking = metric, f"**{metric}** (no job has {rank_by})"
    configs = rank(configs, rank_by)
    metrics = [rank_by, *(m for m in test_metrics(configs) if m != rank_by)]
    tested = compare_with_best(configs, metric, resamples, seed, alpha)
    notes += [f"{c.name}: {t.note}" for c, t in zip(configs, tested, strict=True) if t.note]
    summary_frame(swept, configs, metrics, tested).to_csv(out / "report.csv", index=False)

    failures = [job for job in jobs if job.status == "failed"]
    plots = []
    if any(c.summary(metric).n for c in configs):
        plot_metric(configs, metric, out / "f1_by_configuration.png")
        plots.append((f"{metric} by configuration", "f1_by_configuration.png"))
    if plot_per_class(configs, out / "per_class_f1.png"):
        plots.append(("per-class test F1", "per_class_f1.png"))
    if configs[0].done and plot_confusion(configs[0], out / "confusion_best.png"):
        plots.append(("confusion matrix of the best configuration", "confusion_best.png"))
    header, rows = readable_table(swept, configs, metrics, tested, metric, resamples)
    method = method_text(ranking, metric, configs, tested, resamples, seed, alpha)
    sections = optuna_section(sweep_dir, [job.directory for job in jobs], out)
    write_markdown(out / "report.md", sweep_dir, header, rows, method, notes, failures, plots,
                   sections)  # fmt: skip

    # The terminal gets the ranking and the tested metric; report.md holds every column.
    printed = [*swept, "config", "n", rank_by, metric, header[-3], "p (Holm)", "verdict"]
    shown = [i for i, column in enumerate(header) if column in printed]
    table = Table(title=f"{sweep_dir}: {len(jobs)} jobs, ranked by {rank_by}", title_justify="left")
    for i in shown:
        table.add_column(header[i], justify="left" if header[i] in swept else "right")
    for row, config in zip(rows, configs, strict=True):
        style = "red" if any(j.status == "failed" for j in config.jobs) else None
        table.add_row(*(row[i] for i in shown), style=style)
    console = Console()
    console.print(table)
    for note in notes:
        console.print(f"[yellow]note[/] {note}")
    for job in failures:
        console.print(f"[red]failed[/] {job.directory}: {job.error}")
    console.print(f"written: {out / 'report.md'}, {out / 'report.csv'} and plots")
    return out / "report.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="rolefusion-report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory")
    parser.add_argument("--out", type=Path, default=None, help="default: the sweep directory")
    parser.add_argument(
        "--metric",
        default="test/f1",
        choices=list(PAIRED_METRICS),
        help="the test metric plotted and compared with the best",
    )
    parser.add_argument(
        "--rank-by",
        default=None,
        help=f"what ranks the rows (default: the sweep's optimized_metric, else {DEFAULT_RANKING})",
    )
    parser.add_argument(
        "--resamples", type=int, default=RESAMPLES, help="bootstrap resamples of the test examples"
    )
    args = parser.parse_args()
    report(args.sweep_dir, args.out, args.metric, args.rank_by, args.resamples)


if __name__ == "__main__":
    main()
