"""Concat fusion: early fusion of the pooled vectors through an MLP (the seed's Keras example)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion


def pooled_mlp(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """Linear -> GELU -> Dropout -> Linear; shared with the unimodal baselines for a fair match."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)
    )


class ConcatFusion(Fusion):
    """``cat(pooled_m) [B, D*M]`` -> MLP -> ``[B, hidden]``.

    Args:
        modalities: modalities to fuse (at least two).
        dim: shared feature width ``D``.
        hidden: width of the MLP and the output; None uses ``dim``.
        dropout: dropout between the two linear layers.
    """

    view: ClassVar[str] = "pooled"

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        hidden: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(modalities, dim)
        self.out_dim = hidden or dim
        self.mlp = pooled_mlp(dim * len(self.modalities), self.out_dim, dropout)

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``pooled [B, D]`` -> ``[B, hidden]``."""
        return self.mlp(torch.cat([f.pooled for _, f in self.select(features)], dim=1))
