"""Losses and metrics for each task, so the module's training step is the same for all three.

``binary`` keeps two logits and cross-entropy (the same model as one logit with BCE, and late
fusion's probability averaging still means what it says); its metrics read the positive class's
probability against ``threshold``. ``multilabel`` uses one logit per class with BCE.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelAccuracy,
    MultilabelAUROC,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)


def classification_metrics(
    task: str, num_classes: int, average: str = "macro", threshold: float = 0.5
) -> MetricCollection:
    """Accuracy, precision, recall and F1 for ``task``; AUROC where scores rank examples.

    ``average`` is how precision, recall and F1 average over classes (``macro``, ``weighted``,
    ``micro``); binary ones are of the positive class. Multilabel also reports ``f1_micro``
    beside the ``average``-d ``f1``, as multilabel benchmarks (MM-IMDb) quote both.
    """
    if task == "multiclass":
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "precision": MulticlassPrecision(num_classes, average=average),
                "recall": MulticlassRecall(num_classes, average=average),
                "f1": MulticlassF1Score(num_classes, average=average),
            }
        )
    if task == "binary":
        return MetricCollection(
            {
                "acc": BinaryAccuracy(threshold),
                "precision": BinaryPrecision(threshold),
                "recall": BinaryRecall(threshold),
                "f1": BinaryF1Score(threshold),
                "auroc": BinaryAUROC(),
            }
        )
    if task == "multilabel":
        return MetricCollection(
            {
                "acc": MultilabelAccuracy(num_classes, threshold, average="micro"),
                "precision": MultilabelPrecision(num_classes, threshold, average=average),
                "recall": MultilabelRecall(num_classes, threshold, average=average),
                "f1": MultilabelF1Score(num_classes, threshold, average=average),
                "f1_micro": MultilabelF1Score(num_classes, threshold, average="micro"),
                "auroc": MultilabelAUROC(num_classes, average="macro"),
            }
        )
    raise ValueError(f"task: expected multiclass, binary or multilabel, got {task!r}")


def metric_inputs(
    task: str, logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """What the metrics of ``task`` take: class scores, or probabilities and integer targets."""
    if task == "binary":
        return logits.float().softmax(-1)[:, 1], target
    if task == "multilabel":
        return logits.float().sigmoid(), target.long()
    return logits, target


def classification_loss(task: str, class_weights: Sequence[float] | None = None) -> nn.Module:
    """Cross-entropy (class-weighted if asked), or BCE with per-class positive weights."""
    weights = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
    if task == "multilabel":
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    return nn.CrossEntropyLoss(weight=weights)
