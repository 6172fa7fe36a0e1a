"""Which modality told the model its answer: exact Shapley values over modalities, per example.

The players are the modalities the model reads (2 or 3), so every coalition can be evaluated:
``2^M`` forward passes of the fusion and head over the masked subsets, not a sampling estimate.
The encoders run once; a modality left out of a coalition gets the model's own "absent" vector
(:class:`~rolefusion.models.classifier.FusionClassifier`), which is how the model saw absence in
training when it was trained with ``model.modality_dropout > 0``. Without modality dropout that
vector is plain zeros the model never saw, so masked coalitions are out of its distribution and
the values are indicative only: :func:`in_distribution` says which case a model is.

The value of a coalition is the log-probability of the class the model predicts with every
modality present (the softmax's for multiclass and binary, the class's own sigmoid for
multilabel, where the predicted class is the most probable one). By Shapley's efficiency the
values of an example sum to ``f(all) - f(none)``: how much the inputs moved the prediction away
from what the model says knowing nothing.

A modality's *share* of an example is ``|phi_m| / sum |phi|``: how much of the movement it
accounts for, whatever its sign.
"""

from __future__ import annotations

from dataclasses import fields, replace
from math import factorial
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from rolefusion.choices import Task
from rolefusion.data.batch import Batch
from rolefusion.models.features import ModalityFeatures, replaced_rows

if TYPE_CHECKING:
    from rolefusion.models.classifier import FusionClassifier


class AttributionUnavailable(ValueError):
    """Attribution was asked of a model that reads fewer than two modalities."""


def attribution_enabled(setting: bool | str, modalities: tuple[str, ...], key: str) -> bool:
    """Whether to attribute, from a config's ``auto | true | false``.

    ``auto`` attributes whenever there is something to share out (two or more modalities: it
    costs at most eight passes of the fusion and head, never of the encoders); ``true`` insists,
    and refuses a one-modality model by name rather than writing values that mean nothing.
    """
    if setting == "auto":
        return len(modalities) >= 2
    if not isinstance(setting, bool):
        raise ValueError(f"{key}: expected auto, true or false, got {setting!r}")
    if setting and len(modalities) < 2:
        raise AttributionUnavailable(
            f"{key}=true: attribution needs at least two modalities; this model reads only "
            f"{', '.join(modalities) or 'none'}"
        )
    return setting


def in_distribution(net: FusionClassifier) -> bool:
    """True when the model was trained to see modalities absent (``model.modality_dropout``)."""
    return net.modality_dropout > 0


def coalitions(players: int) -> torch.Tensor:
    """``[2^M, M]`` bool: row ``k`` holds the players whose bit is set in ``k``; the last row is
    everyone, the first no one."""
    bits = torch.arange(2**players)[:, None] >> torch.arange(players)[None, :]
    return (bits & 1).bool()


def shapley_values(values: torch.Tensor) -> torch.Tensor:
    """``[B, M]`` exact Shapley values from ``values [B, 2^M]``, coalitions ordered as
    :func:`coalitions`: ``phi_i = sum_S |S|! (M-|S|-1)! / M! (v(S + i) - v(S))`` over the
    coalitions ``S`` without ``i``. Computed in float64, so efficiency holds to rounding."""
    count = values.shape[1]
    players = count.bit_length() - 1
    if count != 2**players or players < 1:
        raise ValueError(f"expected one value per coalition (2^M columns), got {count}")
    values = values.double()
    members = coalitions(players)
    phi = torch.zeros(values.shape[0], players, dtype=torch.float64, device=values.device)
    for player in range(players):
        for index, member in enumerate(members):
            if member[player]:
                continue
            size = int(member.sum())
            weight = factorial(size) * factorial(players - size - 1) / factorial(players)
            phi[:, player] += weight * (values[:, index + 2**player] - values[:, index])
    return phi


def shares(phi: torch.Tensor) -> torch.Tensor:
    """``[B, M]`` each modality's share of ``|phi|``; a row whose values are all zero (nothing
    moved the prediction) has shares of zero."""
    magnitude = phi.abs()
    total = magnitude.sum(dim=1, keepdim=True)
    return torch.where(total > 0, magnitude / total.clamp_min(torch.finfo(phi.dtype).tiny), 0.0)


def _repeated(features: ModalityFeatures, times: int) -> ModalityFeatures:
    """Every view of ``features`` stacked ``times`` over along the batch dimension."""
    return replace(
        features,
        **{
            f.name: value.repeat(times, *([1] * (value.dim() - 1)))
            for f in fields(features)
            if (value := getattr(features, f.name)) is not None
        },
    )


def _predicted(logits: torch.Tensor, task: Task, threshold: float) -> torch.Tensor:
    """``[B]`` the class whose log-probability is attributed: the metrics' decision (the positive
    class above ``threshold`` for binary), the most probable class for multilabel."""
    if task == "binary":
        return (logits.float().softmax(-1)[:, 1] > threshold).long()
    return logits.argmax(-1)


def _log_probabilities(logits: torch.Tensor, task: Task) -> torch.Tensor:
    logits = logits.double()
    return F.logsigmoid(logits) if task == "multilabel" else logits.log_softmax(-1)


@torch.no_grad()
def attribute(
    net: FusionClassifier, batch: Batch, task: Task, threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of ``batch`` with every modality present, ``[B, C]``, and each example's Shapley
    values over the model's modalities, ``[B, M]`` (in ``net.encoders`` order).

    A modality the batch already drops (robustness evaluation) is absent in every coalition, so
    its value is zero.
    """
    features = net.encode(batch)
    members = coalitions(len(features)).to(batch.label.device)
    count, size = len(members), len(batch)
    stacked = {
        modality: replaced_rows(
            _repeated(feature, count),
            ~members[:, position].repeat_interleave(size),
            net.absent[modality],
        )
        for position, (modality, feature) in enumerate(features.items())
    }
    logits = net.head(net.fusion(stacked)).view(count, size, -1)
    full = logits[-1]
    chosen = _predicted(full, task, threshold)
    values = _log_probabilities(logits, task)
    values = values.gather(2, chosen[None, :, None].expand(count, size, 1)).squeeze(2)
    return full, shapley_values(values.T)
