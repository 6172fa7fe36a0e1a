"""Gated fusion: a learned, per-example softmax over modalities weighs their pooled vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion


class GatedFusion(Fusion):
    """``sum_m g_m * W_m pooled_m``, gates ``g = softmax(MLP(cat(pooled_m)))`` -> ``[B, hidden]``.

    The gate MLP sees every modality at once, so it can decide per example which modality to
    trust (e.g. down-weight an empty text); the projections put the modalities in one space
    before they are mixed. The gates of the last forward are kept in ``last_gates [B, M]``
    (detached, modalities in ``self.modalities`` order) for analysis.

    Args:
        modalities: modalities to fuse (at least two).
        dim: shared feature width ``D``.
        hidden: width of the projections and the output; None uses ``dim``.
        gate_hidden: width of the gate MLP's hidden layer; None uses ``dim``.
        dropout: dropout inside the gate MLP.
    """

    view: ClassVar[str] = "pooled"

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        hidden: int | None = None,
        gate_hidden: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(modalities, dim)
        self.out_dim = hidden or dim
        num = len(self.modalities)
        self.proj = nn.ModuleDict({m: nn.Linear(dim, self.out_dim) for m in self.modalities})
        gate_hidden = gate_hidden or dim
        self.gate = nn.Sequential(
            nn.Linear(dim * num, gate_hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(gate_hidden, num),
        )
        self.last_gates: torch.Tensor | None = None

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``pooled [B, D]`` -> ``[B, hidden]``."""
        selected = self.select(features)
        gates = self.gate(torch.cat([f.pooled for _, f in selected], dim=1)).softmax(dim=-1)
        self.last_gates = gates.detach()
        projected = torch.stack([self.proj[name](f.pooled) for name, f in selected], dim=1)
        return torch.einsum("bm,bmh->bh", gates, projected)
