"""The reliability diagram: does a predicted probability of 0.8 come true 80% of the time?"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rolefusion.choices import Task
from rolefusion.models.calibration import ECE_BINS, confidence_and_correct, reliability

AXIS_LABELS: dict[str, tuple[str, str]] = {
    "multiclass": ("confidence (top probability)", "accuracy"),
    "binary": ("predicted probability of the positive class", "fraction positive"),
    "multilabel": ("predicted probability (every example and class)", "fraction positive"),
}


def plot_reliability(
    probabilities: np.ndarray,
    target: np.ndarray,
    task: Task,
    title: str,
    path: Path,
    calibrated: np.ndarray | None = None,
) -> None:
    """Per-bin accuracy against mean confidence, with the diagonal a calibrated model would
    follow, over a histogram of how many predictions each bin holds (so an empty or nearly empty
    bin, whose point means little, shows as such). ``probabilities [N, C]`` as predicted; when
    ``calibrated`` (the same examples after temperature scaling) is given, it is drawn in a
    second colour. Each series' ECE is in the legend; the bins are those of the logged ECE.
    """
    series = {"as predicted" if calibrated is not None else "model": probabilities}
    if calibrated is not None:
        series["temperature-scaled"] = calibrated
    figure, (curve, counts) = plt.subplots(
        2, 1, sharex=True, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}
    )
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    edges = np.linspace(0, 1, ECE_BINS + 1)
    # torchmetrics keeps confidences of exactly 1 in a bin of their own: a thin bar past 1.
    left = np.append(edges[:-1], 1.0)
    width = np.append(np.diff(edges), 0.01)
    for (name, values), colour in zip(series.items(), ("tab:blue", "tab:orange"), strict=False):
        result = reliability(*confidence_and_correct(values, target, task))
        filled = result.count > 0
        curve.plot(
            result.confidence[filled],
            result.accuracy[filled],
            marker="o",
            color=colour,
            label=f"{name} (ECE {result.ece:.3f})",
        )
        counts.bar(left, result.count, width, align="edge", color=colour, alpha=0.5)
    x_label, y_label = AXIS_LABELS[task]
    curve.set_ylabel(y_label)
    curve.set_ylim(0, 1)
    curve.set_title(title, fontsize=9)
    curve.legend(fontsize=8, loc="upper left")
    counts.set_xlim(0, 1.02)
    counts.set_xlabel(x_label)
    counts.set_ylabel("predictions")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
