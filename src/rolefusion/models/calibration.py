"""How far a model's probabilities can be trusted, and temperature scaling to trust them more.

What the calibration metrics mean for each task (ECE with :data:`ECE_BINS` equal-width bins,
weighted by the share of the examples in each bin):

- ``multiclass``: ECE is top-label: each example's highest probability against whether that class
  is the true one. Brier is the sum over classes of ``(p_c - y_c)²`` with ``y`` one-hot, averaged
  over examples (Brier 1950; 0 is perfect, 2 the worst).
- ``binary``: both read the positive class's probability against the label: ECE bins
  ``p_positive`` and compares each bin's mean with the fraction of positives in it; Brier is the
  mean of ``(p_positive - y)²`` (the usual binary Brier, 0 to 1).
- ``multilabel``: every (example, class) pair counts as one binary prediction: ECE bins all the
  pairs' probabilities together, and Brier is the mean of ``(p - y)²`` over all the pairs.

Temperature scaling (Guo et al. 2017) divides the logits by one ``T`` fitted on validation data;
its record is stored beside the checkpoint it was fitted for (:func:`write_calibration`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import torch
from torch.nn import functional as F
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryCalibrationError, MulticlassCalibrationError

from rolefusion.choices import Task, require_choice
from rolefusion.runs.artifacts import write_json_atomically

ECE_BINS = 15
"""Equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15)."""


class BrierScore(Metric):
    """Mean squared distance between the predicted probabilities and the outcomes, for ``task``
    (see the module docstring for what it averages in each task).

    ``update`` takes ``probabilities [N, C]`` and ``target``: ``[N]`` class indices (multiclass,
    binary) or ``[N, C]`` 0/1 labels (multilabel). Unlike ECE it needs no bins, and it rewards
    sharpness as well as calibration, so the two together say more than either.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, task: Task, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        require_choice("task", task, Task)
        self.task = task
        # Sums rather than per-example lists: they sync across ranks by adding.
        self.add_state("squared_error", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, target: torch.Tensor) -> None:
        probabilities = probabilities.float()
        if self.task == "multiclass":
            one_hot = F.one_hot(target.long(), probabilities.shape[-1])
            error = (probabilities - one_hot).square().sum(-1)
        elif self.task == "binary":
            error = (probabilities[:, 1] - target.float()).square()
        else:
            error = (probabilities - target.float()).square()
        self.squared_error += error.sum()
        self.total += error.numel()

    def compute(self) -> torch.Tensor:
        return self.squared_error / self.total


def calibration_metrics(task: Task, num_classes: int) -> MetricCollection:
    """``ece`` and ``brier`` for ``task``; feed them with :func:`update_calibration`, which gives
    each the inputs its task calls for."""
    require_choice("task", task, Task)
    ece = (
        MulticlassCalibrationError(num_classes, n_bins=ECE_BINS, norm="l1")
        if task == "multiclass"
        else BinaryCalibrationError(n_bins=ECE_BINS, norm="l1")
    )
    # No compute groups: update_calibration updates each metric on its own, which a group's
    # shared state would not see.
    return MetricCollection({"ece": ece, "brier": BrierScore(task)}, compute_groups=False)


def update_calibration(
    metrics: MetricCollection, task: Task, probabilities: torch.Tensor, target: torch.Tensor
) -> None:
    """Update :func:`calibration_metrics` with one batch: ``probabilities [N, C]`` (never
    logits: given scores outside [0, 1], torchmetrics would apply a softmax or sigmoid of its
    own choosing) and ``target`` as :class:`BrierScore` takes it."""
    if task == "binary":
        ece_inputs = (probabilities[:, 1], target)
    elif task == "multilabel":
        ece_inputs = (probabilities.reshape(-1), target.reshape(-1).long())
    else:
        ece_inputs = (probabilities, target)
    for name, metric in metrics.items(keep_base=True, copy_state=False):
        if name == "ece":
            metric.update(*ece_inputs)
        else:
            metric.update(probabilities, target)


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram's numbers: per bin, the mean ``confidence``, the ``accuracy`` (the
    fraction correct; NaN for both in an empty bin) and the ``count``; and the ``ece``.

    There are ``bins + 1`` entries, as in torchmetrics: its bins are half-open,
    ``lower <= c < upper``, so a confidence of exactly 1 falls past the last edge into a bin of
    its own (over-confident models put many examples there).
    """

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Bin ``confidence`` (values in [0, 1]) against ``correct`` (bool or 0/1) exactly as
    torchmetrics' calibration errors do, so the diagram and the logged ECE agree.

    torchmetrics bins float32 confidences at ``torch.linspace``'s float32 edges with
    ``torch.bucketize(right=True)``; the same edges and ``searchsorted(side="right")`` put a
    confidence that lies on an edge into the same bin.
    """
    confidence = np.asarray(confidence, dtype=np.float32).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    if confidence.size and (confidence.min() < 0 or confidence.max() > 1):
        raise ValueError("reliability: confidences must be probabilities in [0, 1]")
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float32).numpy()
    index = np.searchsorted(edges, confidence, side="right") - 1
    count = np.bincount(index, minlength=bins + 1)
    with np.errstate(invalid="ignore"):  # 0 / 0 in an empty bin: NaN, so it is not drawn
        mean_confidence = np.bincount(index, confidence, bins + 1) / count
        accuracy = np.bincount(index, correct, bins + 1) / count
    gaps = np.abs(accuracy - mean_confidence)[count > 0]
    ece = float(np.sum(gaps * count[count > 0]) / count.sum())
    return Reliability(mean_confidence, accuracy, count, ece)


def confidence_and_correct(
    probabilities: np.ndarray, target: np.ndarray, task: Task
) -> tuple[np.ndarray, np.ndarray]:
    """What a reliability diagram of ``task`` plots, the same quantities its ECE bins:
    multiclass, the top probability and whether its class is the target; binary, the positive
    probability and whether the label is positive; multilabel, every (example, class) pair's
    probability and label."""
    require_choice("task", task, Task)
    probabilities, target = np.asarray(probabilities), np.asarray(target)
    if task == "multiclass":
        return probabilities.max(1), probabilities.argmax(1) == target
    if task == "binary":
        return probabilities[:, 1], target == 1
    return probabilities.reshape(-1), target.reshape(-1) == 1


def _nll(logits: torch.Tensor, target: torch.Tensor, task: Task) -> torch.Tensor:
    """The training loss's mean, differentiable: cross-entropy over the classes (binary has two
    logits), or BCE averaged over every (example, class) pair."""
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))
    return F.cross_entropy(logits, target.long())


def nll(logits: torch.Tensor, target: torch.Tensor, task: Task, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``target`` under ``logits / temperature``."""
    with torch.no_grad():
        return float(_nll(logits.detach().double() / temperature, target, task))


def fit_temperature(logits: torch.Tensor, target: torch.Tensor, task: Task) -> float:
    """The ``T > 0`` that minimises the NLL of ``logits / T`` (Guo et al. 2017), fitted on held-out
    data (validation, never test).

    One scalar for all classes, so dividing by it never changes the argmax, nor which side of 0
    a logit is (a decision at threshold 0.5): those predictions stay as they were, only
    confidence moves. A binary or multilabel threshold other than 0.5 meets different
    probabilities after scaling. LBFGS optimises ``log T`` (T stays positive) in float64 from
    ``T = 1``. Returns 1.0 when the fit does not lower the NLL or ends on a non-finite ``T``, so
    applying it never makes the fitted data's NLL worse.
    """
    require_choice("task", task, Task)
    logits = logits.detach().double()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _nll(logits / log_temperature.exp(), target, task)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_temperature.detach().exp())
    if not (math.isfinite(temperature) and temperature > 0):
        return 1.0
    # `not <` rather than `>=`: a NaN NLL also keeps T = 1.
    if not nll(logits, target, task, temperature) < nll(logits, target, task):
        return 1.0
    return temperature


@dataclass(frozen=True)
class Calibration:
    """A temperature fitted for one checkpoint, with what it did on the data it was fitted on."""

    temperature: float
    fitted_on: str
    """The split the temperature was fitted on."""
    examples: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    checkpoint: str
    """The file name of the checkpoint it belongs to: a record found beside another checkpoint
    (a renamed or copied file, ``epoch=3.pt`` beside ``epoch=3.ckpt``) is refused, not applied."""
    checkpoint_sha256: str
    """The checkpoint's contents when it was fitted (:func:`checkpoint_digest`): a ``last.ckpt``
    rewritten since, by more training, is refused too."""


def checkpoint_digest(ckpt_path: str | Path) -> str:
    """SHA-256 of a checkpoint file's bytes."""
    with Path(ckpt_path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def calibration_path(ckpt_path: str | Path) -> Path:
    """Where a checkpoint's calibration lives: ``<dir>/<stem>.calibration.json``."""
    ckpt_path = Path(ckpt_path)
    return ckpt_path.with_name(f"{ckpt_path.stem}.calibration.json")


def write_calibration(ckpt_path: str | Path, calibration: Calibration) -> Path:
    """Write ``calibration`` beside ``ckpt_path`` (atomically); returns the file written."""
    if calibration.checkpoint != Path(ckpt_path).name:
        raise ValueError(
            f"calibration for checkpoint {calibration.checkpoint!r} cannot be stored beside "
            f"{ckpt_path}"
        )
    path = calibration_path(ckpt_path)
    write_json_atomically(path, asdict(calibration))
    return path


def read_calibration(ckpt_path: str | Path) -> Calibration | None:
    """The calibration stored beside ``ckpt_path``, or None when there is none.

    A file that is there but unusable (not JSON, fields missing, unknown or of the wrong type, a
    temperature that is not a positive finite number, or a record of another checkpoint) raises
    a ValueError naming the file: the caller asked for calibrated probabilities and must not
    silently get others.
    """
    path = calibration_path(ckpt_path)
    if not path.is_file():
        return None
    fields = get_type_hints(Calibration)
    expected = f"expected a JSON object with the fields {', '.join(fields)}"
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); {expected}") from error
    if not isinstance(record, dict):
        raise ValueError(f"{path}: holds a JSON {type(record).__name__}; {expected}")
    if missing := [name for name in fields if name not in record]:
        raise ValueError(f"{path}: lacks {', '.join(missing)}; {expected}")
    if unknown := sorted(record.keys() - fields.keys()):
        raise ValueError(f"{path}: has unknown fields {', '.join(unknown)}; {expected}")
    for name, kind in fields.items():
        value = record[name]
        allowed = (int, float) if kind is float else kind
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise ValueError(f"{path}: {name} is {value!r}; expected a {kind.__name__}")
    calibration = Calibration(**{name: kind(record[name]) for name, kind in fields.items()})
    if not (math.isfinite(calibration.temperature) and calibration.temperature > 0):
        raise ValueError(
            f"{path}: temperature is {calibration.temperature}; expected a positive finite number"
        )
    if calibration.checkpoint != Path(ckpt_path).name:
        raise ValueError(
            f"{path}: fitted for checkpoint {calibration.checkpoint!r}, not "
            f"{Path(ckpt_path).name!r}; expected the record of this checkpoint (refit it)"
        )
    if calibration.checkpoint_sha256 != checkpoint_digest(ckpt_path):
        raise ValueError(
            f"{path}: fitted for earlier contents of {ckpt_path} (its SHA-256 has changed since: "
            f"trained on?); refit it with rolefusion-eval ckpt_path={ckpt_path} calibrate=true, "
            f"or delete {path}"
        )
    return calibration
