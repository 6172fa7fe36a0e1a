"""Is a difference between configurations real? Summaries over seeds, a paired bootstrap on the
same test examples, and Holm's correction for comparing many configurations with one.

Plain functions over numpy arrays, so that a script can call them without ``rolefusion-report``:

- :func:`seed_summary`: mean, standard deviation and Student-t confidence interval of a metric
  over a configuration's seeds;
- :func:`score`: test F1 or accuracy of one set of predictions, as the runs' torchmetrics
  compute them (``test/f1``, ``test/acc``);
- :func:`paired_bootstrap`: the difference between two configurations on resamples of the same
  examples, each configuration's seeds scored on the same resample (seeds are strata);
- :func:`holm`: Holm's step-down adjusted p-values; :func:`verdict`: best / better / worse / tied.

Predictions are class indices ``[N]`` (multiclass, binary) or booleans ``[N, C]`` (multilabel);
:func:`rolefusion.runs.predictions.decoded` reads them from a ``predictions.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Score = Literal["f1", "acc"]
Average = Literal["macro", "weighted", "micro", "binary"]
"""How F1 averages over classes, as torchmetrics does: ``macro`` (multiclass: over the classes
that occur in the labels or the predictions; multilabel: over every class), ``weighted`` (by
support), ``micro`` (pooled counts), ``binary`` (the positive class, index 1, alone)."""

Verdict = Literal["best", "better", "worse", "tied"]

RESAMPLES = 10_000
ALPHA = 0.05
_BUDGET = 4_000_000
"""Resample-count matrix entries per chunk (32 MB of float64): memory stays flat in N."""


@dataclass(frozen=True)
class SeedSummary:
    """A metric over a configuration's seeds; ``std`` and the interval are NaN when ``n < 2``."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def seed_summary(values: Sequence[float], confidence: float = 0.95) -> SeedSummary:
    """Mean, sample standard deviation and the Student-t ``confidence`` interval of the mean
    (``n - 1`` degrees of freedom) of ``values``, one per seed; NaN values are left out."""
    values = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(values)
    if n == 0:
        return SeedSummary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if n == 1:
        return SeedSummary(1, mean, math.nan, math.nan, math.nan)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, df=n - 1)) * std / math.sqrt(n)
    return SeedSummary(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class PairedComparison:
    """A configuration against a reference on the same examples.

    ``difference`` is the observed statistic (mean over the candidate's seeds minus mean over the
    reference's); ``ci_low``/``ci_high`` the 95% percentile interval of its bootstrap
    distribution; ``p_value`` the two-sided bootstrap p-value, not yet adjusted for multiplicity.
    """

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    resamples: int
    examples: int


def one_hot(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Class indices ``[N]`` as booleans ``[N, C]``; multilabel ``[N, C]`` passes through."""
    classes = np.asarray(classes)
    if classes.ndim == 2:
        return classes.astype(bool)
    return np.arange(num_classes) == classes[:, None]


def _num_classes(labels: np.ndarray, predictions: Sequence[np.ndarray]) -> int:
    if np.ndim(labels) == 2:
        return np.shape(labels)[1]
    return int(max(np.max(labels), *(np.max(p) for p in predictions))) + 1


def _indicators(
    labels: np.ndarray, predictions: Sequence[np.ndarray], num_classes: int
) -> np.ndarray:
    """``[N, K]`` per-example counts whose resampled sums give every score's ingredients:
    the labels' one-hot ``[C]``, then per prediction set its true positives ``[C]``, predicted
    positives ``[C]`` and correct decisions ``[1]``."""
    actual = one_hot(labels, num_classes)
    multilabel = np.ndim(labels) == 2
    columns = [actual]
    for predicted in predictions:
        hot = one_hot(predicted, num_classes)
        # Correct decisions: an example's class (single-label), each example-class (multilabel).
        right = (hot == actual).sum(1) if multilabel else (hot & actual).sum(1)
        columns += [hot & actual, hot, right[:, None]]
    return np.concatenate(columns, axis=1).astype(np.float64)


def _scores(
    totals: np.ndarray,
    sets: int,
    num_classes: int,
    examples: int,
    metric: Score,
    average: Average,
    multilabel: bool,
) -> np.ndarray:
    """``[R, K]`` resampled sums of :func:`_indicators` -> ``[R, sets]`` scores."""
    c = num_classes
    actual = totals[:, None, :c]
    per_set = totals[:, c:].reshape(len(totals), sets, 2 * c + 1)
    tp, predicted, right = per_set[..., :c], per_set[..., c : 2 * c], per_set[..., 2 * c]
    if metric == "acc":
        return right / (examples * (c if multilabel else 1))
    if average == "micro":
        tp, predicted, actual = tp.sum(-1), predicted.sum(-1), actual.sum(-1)
        return _divide(2 * tp, predicted + actual)
    f1 = _divide(2 * tp, predicted + actual)
    if average == "binary":
        return f1[..., 1]
    if average == "weighted":
        return _divide((f1 * actual).sum(-1), actual.sum(-1))
    if multilabel:
        return f1.mean(-1)
    present = (predicted + actual) > 0  # torchmetrics leaves classes absent from both out
    return _divide((f1 * present).sum(-1), present.sum(-1))


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (torchmetrics' convention)."""
    numerator, denominator = np.broadcast_arrays(numerator, denominator)
    out = np.zeros(numerator.shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def score(
    labels: np.ndarray,
    predicted: np.ndarray,
    *,
    num_classes: int | None = None,
    metric: Score = "f1",
    average: Average = "macro",
) -> float:
    """One set of predictions' ``metric``: F1 averaged by ``average``, or accuracy (multilabel:
    over every example-class decision, as ``test/acc``)."""
    num_classes = num_classes or _num_classes(labels, [predicted])
    totals = _indicators(labels, [predicted], num_classes).sum(0, keepdims=True)
    return float(
        _scores(totals, 1, num_classes, len(labels), metric, average, np.ndim(labels) == 2)[0, 0]
    )


def resample_counts(examples: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``[resamples, examples]``: how often each example is drawn when ``examples`` indices are
    drawn with replacement, once per resample."""
    drawn = rng.integers(0, examples, size=(resamples, examples))
    offsets = examples * np.arange(resamples)[:, None]
    return np.bincount((drawn + offsets).ravel(), minlength=resamples * examples).reshape(
        resamples, examples
    )


def paired_bootstrap(
    labels: np.ndarray,
    candidate: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    *,
    num_classes: int | None = None,
    metric: Score = "f1",
    average: Average = "macro",
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Compare ``candidate`` with ``reference`` on resamples of the same examples.

    Args:
        labels: ``[N]`` class indices, or ``[N, C]`` multi-hot (multilabel).
        candidate, reference: one prediction set per seed, each aligned with ``labels``.
        metric, average: what is compared (:func:`score`).
        resamples: how many times ``N`` example indices are drawn with replacement.
        seed: of the draws; the same seed draws the same resamples for every comparison.

    Every seed of both configurations is scored on the same resampled examples (seeds are
    strata), and the statistic is the mean over the candidate's seeds minus the mean over the
    reference's. The two-sided p-value is ``min(1, 2 min(P(d* <= 0), P(d* >= 0)))`` over the
    bootstrap distribution ``d*``: identical predictions give exactly 1.
    """
    labels = np.asarray(labels)
    sets = [*candidate, *reference]
    if not candidate or not reference:
        raise ValueError("paired_bootstrap: each side needs at least one set of predictions")
    examples = len(labels)
    if any(len(p) != examples for p in sets):
        raise ValueError("paired_bootstrap: every prediction set must align with the labels")
    num_classes = num_classes or _num_classes(labels, sets)
    multilabel = labels.ndim == 2
    indicators = _indicators(labels, sets, num_classes)
    weights = np.full(len(sets), 1 / len(candidate))
    weights[len(candidate) :] = -1 / len(reference)

    def statistic(totals: np.ndarray) -> np.ndarray:
        scores = _scores(totals, len(sets), num_classes, examples, metric, average, multilabel)
        return scores @ weights

    observed = float(statistic(indicators.sum(0, keepdims=True))[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, _BUDGET // examples)
    differences = np.concatenate(
        [
            statistic(resample_counts(examples, min(chunk, resamples - start), rng) @ indicators)
            for start in range(0, resamples, chunk)
        ]
    )
    below, above = np.mean(differences <= 0), np.mean(differences >= 0)
    low, high = np.quantile(differences, [0.025, 0.975])
    return PairedComparison(
        difference=observed,
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(min(1.0, 2 * min(below, above))),
        resamples=resamples,
        examples=examples,
    )


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    With the ``m`` p-values sorted ascending, the ``i``-th (from 0) becomes
    ``max_{j <= i} min(1, (m - j) p_(j))``: rejecting where the adjusted value is below alpha
    keeps the family-wise error rate at alpha, whatever the dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def verdict(difference: float, adjusted_p: float, alpha: float = ALPHA) -> Verdict:
    """``worse`` or ``better`` than the reference when the adjusted p-value is below ``alpha``
    (by the sign of the difference), else ``tied``: no difference detected, which is not proof
    of equality."""
    if adjusted_p < alpha and difference != 0:
        return "worse" if difference < 0 else "better"
    return "tied"
