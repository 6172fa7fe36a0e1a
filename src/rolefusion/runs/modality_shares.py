"""What a test's modality attribution says in summary: ``metrics.json``'s ``attribution`` and
its pictures (per-class stacked shares, a few example cards).

Examples are grouped by the class the model *predicted*, because that is the class whose
log-probability was attributed: "when the model says pirate, what told it so". Shares are of
mean ``|phi|`` (see :mod:`rolefusion.models.attribution`), so a modality that pushes half the
examples up and half down is not cancelled out.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from rolefusion.data.cleaning import Example
from rolefusion.models.attribution import in_distribution
from rolefusion.runs.predictions import decisions

log = logging.getLogger(__name__)

TARGET = "log-probability of the predicted class"
COLOURS = {"image": "#4C72B0", "text": "#DD8452", "audio": "#55A868"}


def _shares(mean_abs: np.ndarray) -> np.ndarray:
    total = mean_abs.sum()
    return mean_abs / total if total > 0 else np.zeros_like(mean_abs)


def _group(shapley: np.ndarray, modalities: Sequence[str]) -> dict[str, Any]:
    mean_abs = np.abs(shapley).mean(0) if len(shapley) else np.zeros(len(modalities))
    mean = shapley.mean(0) if len(shapley) else np.zeros(len(modalities))
    return {
        "examples": len(shapley),
        "share": dict(zip(modalities, _shares(mean_abs).tolist(), strict=True)),
        "mean_abs": dict(zip(modalities, mean_abs.tolist(), strict=True)),
        "mean": dict(zip(modalities, mean.tolist(), strict=True)),
    }


def attributed_classes(probabilities: np.ndarray, task: str, threshold: float) -> np.ndarray:
    """``[N]`` the class each example's attribution is of (as
    :func:`rolefusion.models.attribution.attribute` chooses it): the metrics' decision, or for
    multilabel, whose decision is a set, the most probable class."""
    if task == "multilabel":
        return probabilities.argmax(1)
    return decisions(probabilities, task, threshold)


def summary(
    shapley: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    modalities: Sequence[str],
    in_distribution: bool,
) -> dict[str, Any]:
    """``metrics.json``'s ``attribution``: overall and per predicted class, each modality's
    share of mean ``|phi|``, its mean ``|phi|`` and its signed mean ``phi``."""
    return {
        "target": TARGET,
        "modalities": list(modalities),
        "in_distribution": in_distribution,
        "absence": (
            "the learned absent vector the model was trained with (model.modality_dropout)"
            if in_distribution
            else "zero features the model never saw in training (model.modality_dropout=0): "
            "masked inputs are out of distribution, so these values are indicative only"
        ),
        "overall": _group(shapley, modalities),
        "per_class": {
            name: _group(shapley[predicted == index], modalities)
            for index, name in enumerate(class_names)
            if (predicted == index).any()
        },
    }


def summary_of(collected: dict[str, np.ndarray], model: Any) -> dict[str, Any]:
    """:func:`summary` of what a test epoch collected (with ``shapley``) by a
    :class:`~rolefusion.models.module.RoleFusionModule`; warns, once, when the model never saw a
    modality absent."""
    hparams, net = model.hparams, model.net
    predicted = attributed_classes(collected["probabilities"], hparams.task, hparams.threshold)
    result = summary(collected["shapley"], predicted, hparams.class_names, list(net.encoders),
                     in_distribution(net))  # fmt: skip
    if not result["in_distribution"]:
        log.warning("attribution: %s", result["absence"])
    return result


def plot_class_shares(result: dict[str, Any], title: str, path: Path) -> None:
    """One stacked bar per predicted class (and one for all examples): each modality's share."""
    modalities = result["modalities"]
    groups = {"all": result["overall"], **result["per_class"]}
    figure, axis = plt.subplots(figsize=(max(5.0, 0.55 * len(groups) + 2), 3.6))
    bottom = np.zeros(len(groups))
    for modality in modalities:
        heights = np.array([group["share"][modality] for group in groups.values()])
        axis.bar(range(len(groups)), heights, bottom=bottom, label=modality,
                 color=COLOURS.get(modality))  # fmt: skip
        bottom += heights
    labels = [f"{name}\n(n={group['examples']})" for name, group in groups.items()]
    axis.set_xticks(range(len(groups)), labels, rotation=40, ha="right", fontsize=7)
    axis.set_ylim(0, 1)
    axis.set_ylabel("share of mean |Shapley value|")
    note = "" if result["in_distribution"] else "\n(no modality dropout: indicative only)"
    axis.set_title(f"{title}\nwhich modality the prediction rests on{note}", fontsize=9)
    axis.legend(fontsize=8, loc="upper right", framealpha=0.9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def card_rows(shapley: np.ndarray, per_modality: int = 2) -> list[int]:
    """The examples to draw: for each modality, those it accounts for the largest share of."""
    magnitude = np.abs(shapley)
    share = magnitude / np.clip(magnitude.sum(1, keepdims=True), 1e-12, None)
    chosen: list[int] = []
    for column in range(shapley.shape[1]):
        for row in np.argsort(-share[:, column], kind="stable"):
            if len(chosen) >= (column + 1) * per_modality:
                break
            if int(row) not in chosen:
                chosen.append(int(row))
    return chosen


def plot_example_cards(
    examples: Sequence[Example],
    rows: Sequence[int],
    shapley: np.ndarray,
    predicted: Sequence[str],
    modalities: Sequence[str],
    path: Path,
) -> None:
    """One card per chosen example: its image, its line and its Shapley values as bars."""
    figure, axes = plt.subplots(2, len(rows), figsize=(2.6 * len(rows), 5.2), squeeze=False,
                                gridspec_kw={"height_ratios": [3, 2]})  # fmt: skip
    limit = max(float(np.abs(shapley[list(rows)]).max()), 1e-6)
    for column, row in enumerate(rows):
        record = examples[row].record
        top, bottom = axes[0, column], axes[1, column]
        top.axis("off")
        if record.image is not None:
            with Image.open(record.image) as image:
                top.imshow(image.convert("RGB"))
        text = textwrap.fill(record.text or "", 28, max_lines=3, placeholder=" ...")
        top.set_title(f"{record.id}: said {predicted[row]}\n{text}", fontsize=7)
        values = shapley[row]
        bottom.barh(range(len(modalities)), values,
                    color=[COLOURS.get(m) for m in modalities])  # fmt: skip
        bottom.set_yticks(range(len(modalities)), modalities, fontsize=7)
        bottom.axvline(0, color="black", linewidth=0.6)
        bottom.set_xlim(-limit * 1.1, limit * 1.1)
        bottom.tick_params(axis="x", labelsize=6)
        bottom.set_xlabel("Shapley value (log-prob.)", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
