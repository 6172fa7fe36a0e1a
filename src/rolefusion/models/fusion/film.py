"""FiLM fusion (Perez et al. 2018): the other modalities scale and shift the image's channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.choices import Modality
from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion
from rolefusion.models.layers import conv_bn_gelu_stack


class FiLMFusion(Fusion):
    """``gamma(c) * grid + beta(c)`` ``[B, D, H, W]`` -> conv3x3-BN-GELU -> pool ``[B, hidden]``.

    ``c`` is the concatenation of the conditioning modalities' ``pooled [B, D]`` vectors; one
    linear layer maps it to a per-channel scale ``gamma [B, D]`` and shift ``beta [B, D]``. The
    convs after the modulation make the interaction multiplicative (text decides which image
    features matter) rather than a text-dependent bias. The layer is initialised near zero
    around ``gamma = 1, beta = 0``, so training starts from the unmodulated image; it is not
    exactly zero, so the gradient reaches the conditioning modalities from the first step.

    Args:
        modalities: modalities to fuse; must include ``"image"`` (with a grid).
        dim: shared feature width ``D``.
        conditioning: the modality (or modalities) that modulate the image; None uses every
            non-image modality of the run. Modalities not named are not read at all.
        num_layers: conv3x3 -> BatchNorm -> GELU blocks after the modulation.
        hidden: conv channels and output width; None uses ``dim``.
    """

    view: ClassVar[str] = "grid"
    needs_image: ClassVar[bool] = True

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        conditioning: Modality | Sequence[Modality] | None = None,
        num_layers: int = 1,
        hidden: int | None = None,
    ) -> None:
        super().__init__(modalities, dim)
        if num_layers < 1:
            raise ValueError(f"FiLMFusion: num_layers must be >= 1, got {num_layers}")
        others = tuple(m for m in self.modalities if m != "image")
        if conditioning is None:
            chosen = set(others)
        else:
            chosen = {conditioning} if isinstance(conditioning, str) else set(conditioning)
        if not chosen or not chosen <= set(others):
            raise ValueError(
                f"FiLMFusion: conditioning={conditioning!r} must name non-image modalities of the "
                f"run, some of {others}"
            )
        self.modalities = ("image", *(m for m in others if m in chosen))
        self.film = nn.Linear(dim * (len(self.modalities) - 1), 2 * dim)
        nn.init.normal_(self.film.weight, std=0.01)
        nn.init.zeros_(self.film.bias)
        hidden = hidden or dim
        self.convs = conv_bn_gelu_stack(dim, hidden, num_layers)
        self.out_dim = hidden

    def modulation(
        self, features: dict[str, ModalityFeatures]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``gamma [B, D]`` and ``beta [B, D]`` from the conditioning modalities' pooled vectors."""
        condition = torch.cat([f.pooled for name, f in self.select(features) if name != "image"], 1)
        delta_gamma, beta = self.film(condition).chunk(2, dim=1)
        return 1 + delta_gamma, beta

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Image ``grid [B, D, H, W]`` and others' ``pooled [B, D]`` -> ``[B, hidden]``."""
        grid = self.image_grid(features)
        gamma, beta = self.modulation(features)
        modulated = gamma[:, :, None, None] * grid + beta[:, :, None, None]
        return self.convs(modulated).mean(dim=(2, 3))
