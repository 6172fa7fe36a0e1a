"""Figures shared by the commands that report results (``rolefusion-eval``, ``-report``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_confusion_matrix(
    matrix: np.ndarray, classes: Sequence[str], title: str, path: Path
) -> None:
    """A ``[C, C]`` confusion matrix (rows true, columns predicted) with its counts written in."""
    figure, axis = plt.subplots(figsize=(max(4, 0.5 * len(classes) + 2),) * 2)
    axis.imshow(matrix, cmap="Blues")
    for (t, p), n in np.ndenumerate(matrix):
        axis.text(p, t, int(n), ha="center", va="center", fontsize=7)
    axis.set_xticks(range(len(classes)), classes, rotation=40, ha="right", fontsize=8)
    axis.set_yticks(range(len(classes)), classes, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
