"""Losses and metrics for each task, so the module's training step is the same for all three.

``binary`` keeps two logits and cross-entropy (the same model as one logit with BCE, and late
fusion's probability averaging still means what it says); its metrics read the positive class's
probability against ``threshold``. ``multilabel`` uses one logit per class with BCE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelAccuracy,
    MultilabelAUROC,
    MultilabelConfusionMatrix,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)
from torchmetrics.utilities import dim_zero_cat

from rolefusion.choices import Task

Average = Literal["macro", "weighted", "micro"]
"""How precision, recall and F1 average over classes (``micro`` weighs every example equally)."""


def classification_metrics(
    task: Task, num_classes: int, average: Average = "macro", threshold: float = 0.5
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


def class_probabilities(task: str, logits: torch.Tensor) -> torch.Tensor:
    """``[B, C]`` probabilities: a softmax over the classes (multiclass, binary), or each class's
    sigmoid (multilabel)."""
    logits = logits.detach().float()
    return logits.sigmoid() if task == "multilabel" else logits.softmax(-1)


class ExamplePredictions(Metric):
    """Each evaluated example's row in its split, target and class probabilities: what
    ``predictions.csv`` is written from.

    The rows stay on the device until :meth:`compute`, so collecting them costs no host sync per
    step; ``compute`` gathers every rank's rows (ranks may hold unequal shares) and returns them
    in the split's order: ``index [N]``, ``target [N]`` (``[N, C]`` multilabel),
    ``probabilities [N, C]`` and, when the epoch attributed, ``shapley [N, M]`` (see
    :mod:`rolefusion.models.attribution`); or None when no batch carried an index.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("index", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("probabilities", default=[], dist_reduce_fx="cat")
        self.add_state("shapley", default=[], dist_reduce_fx="cat")

    def update(
        self,
        index: torch.Tensor,
        probabilities: torch.Tensor,
        target: torch.Tensor,
        shapley: torch.Tensor | None = None,
    ) -> None:
        self.index.append(index)
        self.target.append(target)
        self.probabilities.append(probabilities)
        if shapley is not None:
            self.shapley.append(shapley)

    def compute(self) -> dict[str, torch.Tensor] | None:
        if isinstance(self.index, list) and not self.index:
            return None
        index = dim_zero_cat(self.index)
        order = index.argsort()
        collected = {
            "index": index[order],
            "target": dim_zero_cat(self.target)[order],
            "probabilities": dim_zero_cat(self.probabilities)[order],
        }
        if len(self.shapley):  # no rows: not attributed (an empty list, or synced: empty tensor)
            collected["shapley"] = dim_zero_cat(self.shapley)[order]
        return collected


def classification_loss(task: str, class_weights: Sequence[float] | None = None) -> nn.Module:
    """Cross-entropy (class-weighted if asked), or BCE with per-class positive weights."""
    weights = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
    if task == "multilabel":
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    return nn.CrossEntropyLoss(weight=weights)


def confusion_metric(task: str, num_classes: int, threshold: float = 0.5) -> Metric:
    """The test confusion matrix: ``[C, C]`` (rows true, columns predicted), for multilabel one
    ``[2, 2]`` matrix per class. Per-class scores are derived from it (:func:`per_class_scores`)."""
    if task == "multilabel":
        return MultilabelConfusionMatrix(num_classes, threshold)
    if task == "binary":
        return BinaryConfusionMatrix(threshold)
    return MulticlassConfusionMatrix(num_classes)


def per_class_scores(confusion: torch.Tensor, class_names: Sequence[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class from a confusion matrix (or a stack of
    per-class ``[2, 2]`` matrices); a class never predicted has precision 0, as torchmetrics'."""
    if confusion.dim() == 3:
        true_positive = confusion[:, 1, 1]
        predicted = confusion[:, :, 1].sum(1)
        actual = confusion[:, 1, :].sum(1)
    else:
        true_positive = confusion.diagonal()
        predicted = confusion.sum(0)
        actual = confusion.sum(1)
    scores = {}
    for i, name in enumerate(class_names):
        tp, p, a = (float(x[i]) for x in (true_positive, predicted, actual))
        precision = tp / p if p else 0.0
        recall = tp / a if a else 0.0
        f1 = 2 * tp / (p + a) if p + a else 0.0
        scores[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(a)}
    return scores


def unshare_metric_states(module: nn.Module) -> None:
    """Give every torchmetrics state under ``module`` memory of its own process.

    Under ``ddp_spawn`` on CPU the module reaches each process through torch's multiprocessing,
    which puts its tensors in shared memory. Lightning unshares parameters and buffers, but
    metric states are neither: the ranks would then add their counts into one tensor, and the
    synchronised totals would count every example once per rank. Values are kept, so a state
    restored from a checkpoint is not lost.
    """
    for metric in module.modules():
        if not isinstance(metric, Metric):
            continue
        for name, value in metric.metric_state.items():
            if isinstance(value, torch.Tensor):
                setattr(metric, name, value.clone())
            else:
                setattr(metric, name, [tensor.clone() for tensor in value])
