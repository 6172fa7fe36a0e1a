"""Unimodal baselines: what one modality alone can do (image_only, text_only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from rolefusion.choices import Modality
from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion
from rolefusion.models.fusion.concat import pooled_mlp


class UnimodalFusion(Fusion):
    """One modality's ``pooled [B, D]`` -> the MLP of :class:`ConcatFusion` -> ``[B, hidden]``.

    Only ``modality`` is consumed (``self.modalities == (modality,)``), so the classifier does
    not even encode the others. The MLP matches ConcatFusion's so that a gap between them is
    due to the second modality, not to extra layers.

    Args:
        modalities: the modalities the run has; ``modality`` must be one of them.
        dim: shared feature width ``D``.
        modality: the one modality to read.
        hidden: width of the MLP and the output; None uses ``dim``.
        dropout: dropout between the two linear layers.
    """

    view: ClassVar[str] = "pooled"
    min_modalities: ClassVar[int] = 1

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        modality: Modality,
        hidden: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(modalities, dim)
        if modality not in self.modalities:
            raise ValueError(
                f"UnimodalFusion: modality={modality!r} is not among the run's modalities "
                f"{self.modalities}"
            )
        self.modalities = (modality,)
        self.out_dim = hidden or dim
        self.mlp = pooled_mlp(dim, self.out_dim, dropout)

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``pooled [B, D]`` (others ignored) -> ``[B, hidden]``."""
        ((_, feats),) = self.select(features)
        return self.mlp(feats.pooled)
