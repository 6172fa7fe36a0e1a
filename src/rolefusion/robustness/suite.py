"""Robustness of a checkpoint: its score under each corruption, next to the clean score, with
the summaries multimodal robustness benchmarks (MultiBench, Liang et al. 2021) report.

- **relative robustness**: the area under the score-versus-strength curve, clean score at 0 and
  the strengths spread evenly over [0, 1]; higher is better, at most the clean score.
- **effective robustness**: the area between the curve and a reference model's curve shifted
  to the same clean score, i.e. how much less (negative) or more (positive) the score falls than
  the reference's, once both start equal. MultiBench's reference is late fusion; give another
  evaluation's ``robustness.json`` as ``robustness_reference``. Without one the reference is a
  model that does not degrade, and effective robustness is the mean fall from clean.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from rolefusion.data.batch import Batch
from rolefusion.robustness.corruptions import Corruption, InputEncoding

Score = Callable[[Iterable[Batch]], Mapping[str, float]]
"""Runs the model over batches and returns the split's metrics (``f1``, ``acc``, ...)."""


@dataclass
class CorruptedBatches:
    """The batches of a loader, each corrupted in the main process as it is drawn.

    Corrupting after the loader (rather than in its workers) keeps the random stream in one
    place, so the result does not depend on ``num_workers``.
    """

    batches: Iterable[Batch]
    corruption: Corruption
    strength: float | None
    encoding: InputEncoding
    seed: int

    def __iter__(self) -> Iterator[Batch]:
        generator = torch_generator(self.seed, self.corruption, self.strength)
        for batch in self.batches:
            yield self.corruption(batch, self.strength, generator, self.encoding)

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def torch_generator(seed: int, corruption: Corruption, strength: float | None) -> torch.Generator:
    """A generator seeded by the run's seed, the corruption and the strength: every
    (corruption, strength) pair draws the same noise whatever else runs."""
    key = f"{seed}/{corruption!r}/{strength}".encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def run_suite(
    score: Score,
    batches: Iterable[Batch],
    suite: Mapping[str, Corruption],
    encoding: InputEncoding,
    modalities: Sequence[str],
    clean: Mapping[str, float],
    seed: int = 0,
) -> dict[str, Any]:
    """The metrics under each corruption (at each of its strengths), next to the ``clean``
    ones that the same ``score`` gave on the same batches.

    A corruption of a modality the data does not have is listed under ``skipped`` with why.
    """
    results: dict[str, Any] = {"clean": dict(clean), "corruptions": {}, "skipped": {}, "seed": seed}
    for name, corruption in suite.items():
        if corruption.modality not in modalities:
            results["skipped"][name] = f"the data has no {corruption.modality}"
            continue
        levels = [float(s) for s in corruption.strengths] or [None]
        results["corruptions"][name] = [
            {
                "strength": strength,
                **score(CorruptedBatches(batches, corruption, strength, encoding, seed)),
            }
            for strength in levels
        ]
    return results


def area(scores: Sequence[float]) -> float:
    """Trapezoid area under ``scores`` placed evenly on [0, 1] (the first is the clean one)."""
    return float(np.trapezoid(scores, np.linspace(0.0, 1.0, len(scores))))


def summarize(
    results: Mapping[str, Any], metric: str = "f1", reference: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per corruption: the clean score, the score under it (the mean over its
    strengths when graded), the change from clean, and (graded ones) relative and effective
    robustness."""
    clean = results["clean"][metric]
    rows = []
    for name, levels in results["corruptions"].items():
        scores = [level[metric] for level in levels]
        row: dict[str, Any] = {
            "corruption": name,
            "clean": clean,
            "corrupted": float(np.mean(scores)),
            "change": float(np.mean(scores)) - clean,
            "strengths": [level["strength"] for level in levels],
            "scores": scores,
        }
        if levels[0]["strength"] is not None:
            curve = [clean, *scores]
            baseline = _reference_curve(reference, name, metric, len(curve)) or [clean] * len(curve)
            shifted = [b + (clean - baseline[0]) for b in baseline]
            row["relative_robustness"] = area(curve)
            row["effective_robustness"] = area([c - s for c, s in zip(curve, shifted, strict=True)])
        rows.append(row)
    return rows


def _reference_curve(
    reference: Mapping[str, Any] | None, name: str, metric: str, length: int
) -> list[float] | None:
    if reference is None or name not in reference["corruptions"]:
        return None
    levels = reference["corruptions"][name]
    curve = [reference["clean"][metric], *(level[metric] for level in levels)]
    if len(curve) != length:
        raise ValueError(
            f"robustness_reference: {name} was measured at {len(curve) - 1} strengths there and "
            f"{length - 1} here; evaluate both with the same corruption_suite"
        )
    return curve


def read_reference(path: str | Path) -> dict[str, Any]:
    """A ``robustness.json`` written by another ``rolefusion-eval`` run."""
    path = Path(path)
    try:
        reference = json.loads(path.read_text())
        reference["clean"], reference["corruptions"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"robustness_reference={path}: expected a robustness.json written by rolefusion-eval "
            f"({type(error).__name__}: {error})"
        ) from None
    return reference


def print_table(rows: Sequence[Mapping[str, Any]], metric: str) -> None:
    table = Table(title=f"robustness ({metric})", title_justify="left")
    for column in ("corruption", "clean", "corrupted", "change", "relative", "effective"):
        table.add_column(column, justify="left" if column == "corruption" else "right")
    for row in rows:
        table.add_row(*_cells(row))
    Console().print(table)


def write_markdown(path: Path, rows: Sequence[Mapping[str, Any]], metric: str, title: str) -> None:
    lines = [
        f"# Robustness: {title}",
        "",
        f"{metric} clean and under each corruption (graded ones: the mean over their strengths).",
        "Relative robustness is the area under the curve of the score against strength, effective",
        "robustness the area between it and the reference's curve started at the same clean score.",
        "",
        "| corruption | strengths | clean | corrupted | change | relative | effective |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        strengths = ", ".join(f"{s:g}" for s in row["strengths"] if s is not None) or "-"
        name, *numbers = _cells(row)
        lines.append(f"| {name} | {strengths} | " + " | ".join(numbers) + " |")
    path.write_text("\n".join(lines) + "\n")


def _cells(row: Mapping[str, Any]) -> list[str]:
    graded = "relative_robustness" in row
    return [
        row["corruption"],
        f"{row['clean']:.4f}",
        f"{row['corrupted']:.4f}",
        f"{row['change']:+.4f}",
        f"{row['relative_robustness']:.4f}" if graded else "-",
        f"{row['effective_robustness']:+.4f}" if graded else "-",
    ]


def plot_curves(rows: Sequence[Mapping[str, Any]], metric: str, title: str, path: Path) -> bool:
    """Score against strength, one panel per graded corruption; False when there is none."""
    graded = [row for row in rows if "relative_robustness" in row]
    if not graded:
        return False
    figure, axes = plt.subplots(1, len(graded), figsize=(3.2 * len(graded), 3.0), squeeze=False)
    for axis, row in zip(axes[0], graded, strict=True):
        strengths = [0.0, *row["strengths"]]
        axis.plot(strengths, [row["clean"], *row["scores"]], marker="o")
        axis.axhline(row["clean"], color="grey", linestyle="--", linewidth=0.8)
        axis.set_title(row["corruption"], fontsize=9)
        axis.set_xlabel("strength")
        axis.set_ylim(0, 1.02)
    axes[0][0].set_ylabel(metric)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
