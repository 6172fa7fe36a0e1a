"""The one contract every encoder produces and every fusion consumes.

Keeping this seam small is what lets any encoder meet any fusion: an encoder says
nothing about how it will be fused, a fusion nothing about which architecture made
its input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODALITY_ORDER: tuple[str, ...] = ("image", "text", "audio")
"""Fixed order in which modalities are concatenated wherever order matters."""


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
