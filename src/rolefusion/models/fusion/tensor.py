"""Tensor fusion (Zadeh et al. 2017) and its low-rank form (Liu et al. 2018).

Both fuse the pooled vectors through the outer product of ``[z_m, 1]`` over the modalities: the
appended 1 keeps every lower-order term (each modality alone, each pair) next to the full
M-way interaction. Each pooled vector is first projected to ``proj_dim`` to keep the product's
size ``prod_m (proj_dim + 1)`` tractable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion


def _with_one(z: torch.Tensor) -> torch.Tensor:
    """``[B, P]`` -> ``[B, P + 1]`` with a trailing 1."""
    return torch.cat([z, z.new_ones(z.shape[0], 1)], dim=1)


class TensorFusion(Fusion):
    """``flatten(outer_m [W_m pooled_m, 1])`` ``[B, (P+1)^M]`` -> Linear -> ``[B, hidden]``.

    Args:
        modalities: modalities to fuse (at least two).
        dim: shared feature width ``D``.
        proj_dim: width ``P`` each pooled vector is projected to before the outer product.
        hidden: output width; None uses ``dim``.
    """

    view: ClassVar[str] = "pooled"

    def __init__(
        self, modalities: Sequence[str], dim: int, *, proj_dim: int = 32, hidden: int | None = None
    ) -> None:
        super().__init__(modalities, dim)
        if proj_dim < 1:
            raise ValueError(f"{type(self).__name__}: proj_dim must be >= 1, got {proj_dim}")
        self.out_dim = hidden or dim
        self.proj = nn.ModuleDict({m: nn.Linear(dim, proj_dim) for m in self.modalities})
        self.out = nn.Linear((proj_dim + 1) ** len(self.modalities), self.out_dim)

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``pooled [B, D]`` -> ``[B, hidden]``."""
        product: torch.Tensor | None = None
        for name, feats in self.select(features):
            z = _with_one(self.proj[name](feats.pooled))
            product = z if product is None else (product[:, :, None] * z[:, None, :]).flatten(1)
        assert product is not None
        return self.out(product)


class LowRankTensorFusion(Fusion):
    """``sum_r w_r * prod_m ([W_m pooled_m, 1] @ factor_m[r]) + bias`` -> ``[B, hidden]``.

    The same map as :class:`TensorFusion`'s Linear over the outer product, with its weight
    tensor ``[(P+1)^M, hidden]`` constrained to rank ``rank``: it is never materialised, so the
    cost is linear in the number of modalities instead of exponential. With
    ``rank >= (P+1)^(M-1)`` nothing is lost. The factors are registered parameters (one
    ``[rank, P+1, hidden]`` tensor per modality), so the optimiser trains them.

    Args:
        modalities: modalities to fuse (at least two).
        dim: shared feature width ``D``.
        rank: number of rank-one terms ``R``.
        proj_dim: width ``P`` each pooled vector is projected to.
        hidden: output width; None uses ``dim``.
    """

    view: ClassVar[str] = "pooled"

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        rank: int = 4,
        proj_dim: int = 32,
        hidden: int | None = None,
    ) -> None:
        super().__init__(modalities, dim)
        if rank < 1:
            raise ValueError(f"LowRankTensorFusion: rank must be >= 1, got {rank}")
        if proj_dim < 1:
            raise ValueError(f"LowRankTensorFusion: proj_dim must be >= 1, got {proj_dim}")
        self.out_dim = hidden or dim
        self.proj = nn.ModuleDict({m: nn.Linear(dim, proj_dim) for m in self.modalities})
        # std 1/sqrt(P+1): each factor's projection [z, 1] @ factor[r] is O(1), and so is the
        # product over modalities; weights 1/sqrt(R) keep the sum over ranks O(1) as well.
        self.factors = nn.ParameterDict(
            {
                m: nn.Parameter(
                    torch.randn(rank, proj_dim + 1, self.out_dim) / math.sqrt(proj_dim + 1)
                )
                for m in self.modalities
            }
        )
        self.rank_weights = nn.Parameter(torch.full((rank,), 1 / math.sqrt(rank)))
        self.bias = nn.Parameter(torch.zeros(self.out_dim))

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``pooled [B, D]`` -> ``[B, hidden]``."""
        product: torch.Tensor | None = None
        for name, feats in self.select(features):
            z = _with_one(self.proj[name](feats.pooled))
            term = torch.einsum("bp,rph->brh", z, self.factors[name])  # [B, R, hidden]
            product = term if product is None else product * term
        assert product is not None
        return torch.einsum("brh,r->bh", product, self.rank_weights) + self.bias
