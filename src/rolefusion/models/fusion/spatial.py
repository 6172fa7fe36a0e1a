"""Spatial fusion: every modality laid out side by side on one 2-D canvas, then a conv stack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion
from rolefusion.models.layers import conv_bn_gelu_stack


class SpatialFusion(Fusion):
    """Image grid ``[B, D, H, W]`` | text canvas ``[B, D, H, W']`` (| audio) -> convs -> pool.

    A token sequence has no 2-D layout, so each non-image modality is *resampled* onto an
    ``H x W'`` canvas: a grid of learned queries cross-attends over its tokens (padding excluded
    by the key padding mask). The canvases are concatenated along the width, image first, and a
    learned per-modality vector is added over each region so the convs know which is which.
    Convolutions straddling a border then mix neighbouring image and text cells.

    The learned query grid is ``query_size x query_size``; when the canvas has another shape
    (the image encoder's grid is not ``query_size`` high, or ``text_width`` differs) it is
    resized bilinearly, as ViTs do with position embeddings, so any image encoder fits.

    Args:
        modalities: modalities to fuse; must include ``"image"`` (with a grid).
        dim: shared feature width ``D``.
        text_width: width ``W'`` of each non-image canvas; None uses the image grid's width.
        query_size: side of the learned query grid of each non-image modality.
        num_heads: heads of the resampling cross-attention (must divide ``dim``).
        num_layers: conv3x3 -> BatchNorm -> GELU blocks over the joint canvas.
        hidden: channels of the conv stack, and the output width; None uses ``dim``.
    """

    view: ClassVar[str] = "grid"
    needs_image: ClassVar[bool] = True

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        text_width: int | None = None,
        query_size: int = 8,
        num_heads: int = 4,
        num_layers: int = 2,
        hidden: int | None = None,
    ) -> None:
        super().__init__(modalities, dim)
        if dim % num_heads:
            raise ValueError(f"SpatialFusion: num_heads={num_heads} must divide dim={dim}")
        if num_layers < 1:
            raise ValueError(f"SpatialFusion: num_layers must be >= 1, got {num_layers}")
        self.text_width = text_width
        others = [m for m in self.modalities if m != "image"]
        self.queries = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(dim, query_size, query_size)) for m in others}
        )
        self.resample = nn.ModuleDict(
            {m: nn.MultiheadAttention(dim, num_heads, batch_first=True) for m in others}
        )
        self.region_embed = nn.Parameter(torch.zeros(len(self.modalities), dim))
        for p in (*self.queries.values(), self.region_embed):
            nn.init.trunc_normal_(p, std=0.02)
        hidden = hidden or dim
        self.convs = conv_bn_gelu_stack(dim, hidden, num_layers)
        self.out_dim = hidden

    def canvas(self, name: str, feats: ModalityFeatures, height: int, width: int) -> torch.Tensor:
        """Resample ``tokens [B, N, D]`` onto a ``[B, D, height, width]`` canvas."""
        queries = self.queries[name]
        if queries.shape[1:] != (height, width):
            queries = F.interpolate(
                queries[None], size=(height, width), mode="bilinear", align_corners=False
            )[0]
        batch = feats.tokens.shape[0]
        queries = queries.flatten(1).t().expand(batch, -1, -1)  # [B, H*W', D]
        # A sample with no real token would make every attention weight NaN; let it attend to
        # its (ignored) padding and blank its canvas afterwards instead.
        empty = ~feats.mask.any(dim=1)
        padding = ~feats.mask & ~empty[:, None]
        out, _ = self.resample[name](
            queries, feats.tokens, feats.tokens, key_padding_mask=padding, need_weights=False
        )
        out = out.masked_fill(empty[:, None, None], 0.0)
        return out.transpose(1, 2).reshape(batch, -1, height, width)

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Image ``grid [B, D, H, W]`` and others' ``tokens``/``mask`` -> ``[B, hidden]``."""
        selected = self.select(features)
        grid = self.image_grid(features)
        height, width = grid.shape[2:]
        regions = []
        for i, (name, feats) in enumerate(selected):
            region = (
                grid
                if name == "image"
                else self.canvas(name, feats, height, self.text_width or width)
            )
            regions.append(region + self.region_embed[i][:, None, None])
        joint = torch.cat(regions, dim=3)  # side by side along the width
        return self.convs(joint).mean(dim=(2, 3))
