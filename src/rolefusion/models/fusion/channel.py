"""Channel fusion: the other modalities' vectors stacked onto the image grid as extra channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion


class ChannelFusion(Fusion):
    """Image grid ``[B, D, H, W]`` ++ broadcast pooled vectors ``[B, D*M, H, W]`` -> convs -> pool.

    Every non-image modality's ``pooled [B, D]`` is copied to each of the grid's ``H x W`` cells
    and concatenated along channels, image first. A lone 1x1 conv on that stack would only add a
    text-dependent bias to each image cell; the GELU and the 3x3 conv after it let text and image
    interact (e.g. "this costume *and* this catch-phrase") and mix neighbouring cells.

    Args:
        modalities: modalities to fuse; must include ``"image"`` (with a grid).
        dim: shared feature width ``D``.
        hidden: channels after the 1x1 conv, and the output width; None uses ``dim``.
    """

    view: ClassVar[str] = "grid"
    needs_image: ClassVar[bool] = True

    def __init__(self, modalities: Sequence[str], dim: int, *, hidden: int | None = None) -> None:
        super().__init__(modalities, dim)
        hidden = hidden or dim
        self.convs = nn.Sequential(
            nn.Conv2d(dim * len(self.modalities), hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.GELU(),
        )
        self.out_dim = hidden

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Image ``grid [B, D, H, W]`` and others' ``pooled [B, D]`` -> ``[B, hidden]``."""
        selected = self.select(features)
        grid = self.image_grid(features)
        stack = [
            grid if name == "image" else feats.pooled[:, :, None, None].expand_as(grid)
            for name, feats in selected
        ]
        return self.convs(torch.cat(stack, dim=1)).mean(dim=(2, 3))
