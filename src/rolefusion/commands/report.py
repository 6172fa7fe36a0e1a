"""``rolefusion-report SWEEP_DIR``: one row per configuration of a sweep, seeds averaged.

Reads every job directory of a Hydra multirun (its ``.hydra/overrides.yaml`` and its
``metrics.json``, or ``failed.json``), groups jobs whose overrides differ only in ``seed``, and
writes ``report.md``, ``report.csv`` and plots (macro-F1 by configuration with error bars,
per-class F1 as a heatmap, the best configuration's confusion matrix) into the sweep directory
or ``--out``, and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from rolefusion.runs.plots import plot_confusion_matrix

IGNORED_KEYS = ("seed", "hydra.", "paths.")
"""Overrides that do not make a configuration: seeds are averaged over; paths are plumbing."""


@dataclass
class Job:
    directory: Path
    overrides: dict[str, str]
    metrics: dict[str, float] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.metrics is not None:
            return "done"
        return "failed" if self.error is not None else "incomplete"


@dataclass
class Configuration:
    settings: dict[str, str]
    jobs: list[Job] = field(default_factory=list)

    @property
    def done(self) -> list[Job]:
        return [job for job in self.jobs if job.status == "done"]

    def values(self, metric: str) -> list[float]:
        return [job.metrics[metric] for job in self.done if metric in job.metrics]

    def mean(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.mean(values) if values else float("nan")

    def std(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else 0.0


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job directory (one holding ``.hydra/overrides.yaml``) under ``sweep_dir``."""
    jobs = []
    for overrides_file in sorted(sweep_dir.glob("**/.hydra/overrides.yaml")):
        directory = overrides_file.parent.parent
        overrides = dict(o.split("=", 1) for o in yaml.safe_load(overrides_file.read_text()) or [])
        job = Job(directory, {k.lstrip("+~"): v for k, v in overrides.items()})
        if (directory / "metrics.json").is_file():
            job.result = json.loads((directory / "metrics.json").read_text())
            job.metrics = job.result["metrics"]
        elif (directory / "failed.json").is_file():
            failure = json.loads((directory / "failed.json").read_text())
            job.error = f"{failure['error']}: {failure['message']}"
        jobs.append(job)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job directories (*/.hydra/overrides.yaml)")
    return jobs


def configurations(jobs: list[Job]) -> tuple[list[str], list[Configuration]]:
    """The swept keys (those whose value differs between jobs, seeds aside) and one
    :class:`Configuration` per combination of their values."""
    keys = sorted({k for job in jobs for k in job.overrides if not k.startswith(IGNORED_KEYS)})
    swept = [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1] or keys
    groups: dict[tuple, Configuration] = {}
    for job in jobs:
        settings = {k: job.overrides.get(k, "-") for k in swept}
        key = tuple(settings.items())
        groups.setdefault(key, Configuration(settings)).jobs.append(job)
    return swept, list(groups.values())


def test_metrics(configs: list[Configuration]) -> list[str]:
    """``test/*`` metrics present in any finished job, the usual ones first."""
    present = {m for c in configs for j in c.done for m in j.metrics if m.startswith("test/")}
    first = ["test/f1", "test/acc", "test/precision", "test/recall", "test/auroc", "test/f1_micro"]
    return [m for m in first if m in present] + sorted(present - set(first) - {"test/loss"})


def rank(configs: list[Configuration], metric: str) -> list[Configuration]:
    """Best first by the mean of ``metric``; configurations without a finished job last."""
    return sorted(configs, key=lambda c: (not c.done, -np.nan_to_num(c.mean(metric), nan=-1)))


def table_rows(swept: list[str], configs: list[Configuration], metrics: list[str]) -> list[list]:
    rows = []
    for config in configs:
        failed = sum(job.status == "failed" for job in config.jobs)
        incomplete = sum(job.status == "incomplete" for job in config.jobs)
        rows.append(
            [
                *(config.settings[k] for k in swept),
                len(config.done),
                len(config.jobs),
                failed,
                incomplete,
                *(f"{config.mean(m):.4f} ± {config.std(m):.4f}" if config.done else "-"
                  for m in metrics),
            ]
        )  # fmt: skip
    return rows


def write_markdown(path: Path, sweep_dir: Path, header: list[str], rows: list[list],
                   failures: list[Job], plots: list[tuple[str, str]]) -> None:  # fmt: skip
    lines = [
        f"# Sweep report: {sweep_dir}",
        "",
        "Mean ± standard deviation over the finished jobs (seeds) of each configuration, "
        "best first by test F1.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(str(v) for v in row) + " |" for row in rows),
        "",
    ]
    if failures:
        lines += ["## Failed jobs", ""]
        lines += [f"- `{job.directory}`: {job.error}" for job in failures]
        lines += [""]
    for title, name in plots:
        lines += [f"![{title}]({name})", ""]
    path.write_text("\n".join(lines))


def _label(config: Configuration) -> str:
    return " ".join(f"{k.split('/')[-1]}={v}" for k, v in config.settings.items())


def plot_f1(configs: list[Configuration], metric: str, path: Path) -> None:
    shown = [c for c in configs if c.done]
    figure, axis = plt.subplots(figsize=(max(6, 0.55 * len(shown) + 2), 4.5))
    axis.bar(range(len(shown)), [c.mean(metric) for c in shown],
             yerr=[c.std(metric) for c in shown], capsize=3, color="tab:blue")  # fmt: skip
    axis.set_xticks(range(len(shown)), [_label(c) for c in shown], rotation=40, ha="right",
                    fontsize=8)  # fmt: skip
    axis.set_ylabel(f"{metric} (mean ± std over seeds)")
    axis.set_ylim(0, 1.05)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_per_class(configs: list[Configuration], path: Path) -> bool:
    shown = [c for c in configs if any(j.result and "per_class" in j.result for j in c.done)]
    if not shown:
        return False
    classes = list(next(j.result for j in shown[0].done if "per_class" in j.result)["per_class"])
    grid = np.array(
        [[statistics.mean(j.result["per_class"][name]["f1"] for j in c.done
                          if "per_class" in j.result) for name in classes] for c in shown]
    )  # fmt: skip
    figure, axis = plt.subplots(
        figsize=(max(5, 0.6 * len(classes) + 3), max(3, 0.35 * len(shown) + 1.5))
    )
    image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axis.set_xticks(range(len(classes)), classes, rotation=40, ha="right", fontsize=8)
    axis.set_yticks(range(len(shown)), [_label(c) for c in shown], fontsize=8)
    figure.colorbar(image, label="test F1 (mean over seeds)")
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
    title = f"{_label(config)} (summed over {len(results)} seeds)"
    plot_confusion_matrix(matrix, classes, title, path)
    return True


def report(sweep_dir: Path, out: Path | None = None, metric: str = "test/f1") -> Path:
    """Write the report of ``sweep_dir`` into ``out`` (default: the sweep directory)."""
    out = out or sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    jobs = read_jobs(sweep_dir)
    swept, configs = configurations(jobs)
    configs = rank(configs, metric)
    metrics = test_metrics(configs)
    header = [*swept, "done", "jobs", "failed", "incomplete", *metrics]
    rows = table_rows(swept, configs, metrics)
    with (out / "report.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    failures = [job for job in jobs if job.status == "failed"]
    plots = []
    if any(c.done for c in configs):
        plot_f1(configs, metric, out / "f1_by_configuration.png")
        plots.append(("test F1 by configuration", "f1_by_configuration.png"))
    if plot_per_class(configs, out / "per_class_f1.png"):
        plots.append(("per-class test F1", "per_class_f1.png"))
    if configs[0].done and plot_confusion(configs[0], out / "confusion_best.png"):
        plots.append(("confusion matrix of the best configuration", "confusion_best.png"))
    write_markdown(out / "report.md", sweep_dir, header, rows, failures, plots)
    table = Table(title=f"{sweep_dir}: {len(jobs)} jobs", title_justify="left")
    for column in header:
        table.add_column(column, justify="left" if column in swept else "right")
    for row, config in zip(rows, configs, strict=True):
        style = "red" if any(j.status == "failed" for j in config.jobs) else None
        table.add_row(*(str(v) for v in row), style=style)
    console = Console()
    console.print(table)
    for job in failures:
        console.print(f"[red]failed[/] {job.directory}: {job.error}")
    console.print(f"written: {out / 'report.md'}, {out / 'report.csv'} and plots")
    return out / "report.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="rolefusion-report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory")
    parser.add_argument("--out", type=Path, default=None, help="default: the sweep directory")
    parser.add_argument("--metric", default="test/f1", help="what the rows are sorted by")
    args = parser.parse_args()
    report(args.sweep_dir, args.out, args.metric)


if __name__ == "__main__":
    main()
