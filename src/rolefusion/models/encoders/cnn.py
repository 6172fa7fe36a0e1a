"""The seed's small image CNN, producing a fixed-size grid whatever the image size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures


class SmallCNN(nn.Module):
    """conv3x3-BN-ReLU-maxpool blocks, a 1x1 projection to ``dim``, then adaptive pooling.

    The adaptive pool to ``grid_size x grid_size`` fixes the number of image tokens, so the
    fusions (position embeddings, spatial canvases) see the same shape for 32 or 256 px inputs.

    Args:
        dim: shared feature width ``D`` of the run.
        channels: output channels of each conv block (each block halves the resolution).
        grid_size: side of the output grid; the image yields ``grid_size**2`` tokens.
    """

    def __init__(self, dim: int, *, channels: Sequence[int] = (32, 64), grid_size: int = 8) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("SmallCNN: `channels` needs at least one conv block, got []")
        blocks: list[nn.Module] = []
        in_ch = 3
        for out_ch in channels:
            blocks += [
                nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_ch = out_ch
        self.body = nn.Sequential(*blocks)
        self.proj = nn.Conv2d(in_ch, dim, kernel_size=1)
        self.pool = nn.AdaptiveAvgPool2d(grid_size)

    def forward(self, image: torch.Tensor) -> ModalityFeatures:
        """``image [B, 3, H, W]`` -> ``grid [B, D, g, g]``, ``tokens [B, g*g, D]``, ``pooled``.

        ``g`` is ``grid_size``; tokens are the grid flattened row-major, pooled is its mean.
        """
        grid = self.pool(self.proj(self.body(image)))
        tokens = grid.flatten(2).transpose(1, 2)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=grid.mean(dim=(2, 3)), grid=grid)
