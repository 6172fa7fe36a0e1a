"""The one contract every encoder produces and every fusion consumes.

Keeping this seam small is what lets any encoder meet any fusion: an encoder says
nothing about how it will be fused, a fusion nothing about which architecture made
its input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from rolefusion.choices import MODALITY_ORDER


@dataclass
class ModalityFeatures:
    """Three views of one modality, all at the run's shared width ``D`` (``model.dim``).

    Attributes:
        tokens: ``[B, N, D]`` sequence view (text tokens, image patches, audio frames).
        mask: ``[B, N]`` bool, True where a token is real (False for padding).
        pooled: ``[B, D]`` one vector per example (masked mean or CLS).
        grid: ``[B, D, H, W]`` spatial view, or None where the modality has none.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor
    grid: torch.Tensor | None = None


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``tokens [B, N, D]`` over positions where ``mask [B, N]`` is True.

    A row with no real token (empty text) pools to zeros rather than NaN.
    """
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def ordered(features: dict[str, ModalityFeatures]) -> list[tuple[str, ModalityFeatures]]:
    """The present modalities in :data:`MODALITY_ORDER`, so results never depend on dict order."""
    unknown = set(features) - set(MODALITY_ORDER)
    if unknown:
        raise KeyError(f"unknown modalities {sorted(unknown)}; expected some of {MODALITY_ORDER}")
    return [(name, features[name]) for name in MODALITY_ORDER if name in features]


def replaced_rows(
    features: ModalityFeatures, rows: torch.Tensor, embedding: torch.Tensor
) -> ModalityFeatures:
    """``features`` with every view of the examples where ``rows [B]`` is True set to
    ``embedding [D]``: how a modality that is absent reaches the fusion.

    Every token of such a row is the embedding and all are marked real, so every pooling,
    attention or grid view of it sees the same vector and no row is left without a real token.
    """
    tokens_rows = rows[:, None, None]
    return replace(
        features,
        tokens=torch.where(tokens_rows, embedding.to(features.tokens.dtype), features.tokens),
        mask=features.mask | rows[:, None],
        pooled=torch.where(rows[:, None], embedding.to(features.pooled.dtype), features.pooled),
        grid=None
        if features.grid is None
        else torch.where(
            rows[:, None, None, None],
            embedding.to(features.grid.dtype)[:, None, None],
            features.grid,
        ),
    )
