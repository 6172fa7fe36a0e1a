"""Late fusion: one classifier per modality, their class scores averaged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from rolefusion.choices import require_choice
from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion

Combine = Literal["logits", "probabilities"]
ModalityWeights = Literal["learned", "fixed"]


class LateFusion(Fusion):
    """Per-modality heads on ``pooled [B, D]`` -> ``[B, M, C]`` scores -> weighted mean ``[B, C]``.

    Each modality decides alone, so no feature of one modality can ever interact with a feature
    of another: the decision is additive over modalities (it cannot learn an XOR of them). That
    is the baseline's point. Two ways to average, which are different models:

    - ``combine="logits"``: ``sum_m w_m * logits_m``, a product of experts;
    - ``combine="probabilities"``: ``log sum_m w_m * softmax(logits_m)``, a mixture of experts.
      The log makes cross-entropy on the output the mixture's negative log-likelihood, and
      its argmax is the mixture's.

    Args:
        modalities: modalities to fuse (at least two).
        dim: shared feature width ``D``.
        num_classes: number of classes ``C`` (passed by the classifier, which adds no head).
        combine: ``"logits"`` or ``"probabilities"``: what is averaged.
        weights: ``"learned"`` (softmax over a learned per-modality scalar, initially equal) or
            ``"fixed"`` (uniform).
        dropout: dropout on each pooled vector before its head.
    """

    view: ClassVar[str] = "pooled"
    produces_logits: ClassVar[bool] = True
    additive: ClassVar[bool] = True

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        num_classes: int,
        combine: Combine = "logits",
        weights: ModalityWeights = "learned",
        dropout: float = 0.1,
    ) -> None:
        super().__init__(modalities, dim)
        require_choice("LateFusion: combine", combine, Combine)
        require_choice("LateFusion: weights", weights, ModalityWeights)
        self.combine = combine
        self.heads = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
                for m in self.modalities
            }
        )
        # Zeros -> equal weights after the softmax; "fixed" keeps no parameter at all.
        self.weight_logits = (
            nn.Parameter(torch.zeros(len(self.modalities))) if weights == "learned" else None
        )
        self.out_dim = num_classes

    def modality_weights(self) -> torch.Tensor:
        """The weights ``[M]`` (summing to one) given to each modality's scores."""
        if self.weight_logits is None:
            return torch.full((len(self.modalities),), 1 / len(self.modalities))
        return self.weight_logits.softmax(dim=0)

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``pooled [B, D]`` -> class scores ``[B, C]`` (log-probabilities when
        ``combine="probabilities"``)."""
        scores = torch.stack(
            [self.heads[name](feats.pooled) for name, feats in self.select(features)], dim=1
        )
        weights = self.modality_weights().to(scores)
        if self.combine == "logits":
            return torch.einsum("bmc,m->bc", scores, weights)
        # log sum_m w_m softmax_m, computed stably in log space.
        return torch.logsumexp(F.log_softmax(scores, dim=-1) + weights.log()[:, None], dim=1)
