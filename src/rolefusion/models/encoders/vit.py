"""A small Vision Transformer (timm's), trained from scratch at the run's width."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from rolefusion.models.features import ModalityFeatures


class ViTEncoder(nn.Module):
    """timm ``VisionTransformer`` at width ``dim`` with a CLS token, no classifier, no pooling.

    The image is cut into ``patch_size`` patches; each patch is one token, so a
    ``image_size`` image gives ``(image_size / patch_size) ** 2`` tokens and a grid of side
    ``image_size / patch_size`` (64 px, patch 8: 8x8). Other image sizes (multiples of
    ``patch_size``) also work: the position embeddings are interpolated to the new grid.

    Args:
        dim: shared feature width ``D`` of the run (also the transformer's width).
        image_size: side of the images the position embeddings are laid out for.
        patch_size: side of a square patch; must divide the image side.
        depth: transformer blocks.
        num_heads: attention heads; must divide ``dim``.
        mlp_ratio: MLP width as a multiple of ``dim``.
        dropout: dropout after the position embeddings, in attention and in the MLPs.
    """

    def __init__(
        self,
        dim: int,
        *,
        image_size: int = 64,
        patch_size: int = 8,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"ViTEncoder: num_heads={num_heads} must divide model.dim={dim}")
        if image_size % patch_size:
            raise ValueError(
                f"ViTEncoder: patch_size={patch_size} must divide image_size={image_size}"
            )
        self.vit = VisionTransformer(
            img_size=image_size,
            patch_size=patch_size,
            embed_dim=dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            num_classes=0,
            global_pool="",
            class_token=True,
            dynamic_img_size=True,  # interpolate position embeddings for other image sizes
            drop_rate=dropout,
            pos_drop_rate=dropout,
            proj_drop_rate=dropout,
            attn_drop_rate=dropout,
        )
        self.patch_size = patch_size

    def forward(self, image: torch.Tensor) -> ModalityFeatures:
        """``image [B, 3, H, W]`` -> ``tokens [B, h*w, D]``, ``grid [B, D, h, w]``, ``pooled``.

        ``h, w = H / patch_size, W / patch_size``. Tokens are the patch tokens (row-major, after
        the final LayerNorm); pooled is the CLS token; mask is all True.
        """
        height, width = image.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"ViTEncoder: image of {height}x{width} px is not a multiple of "
                f"patch_size={self.patch_size}"
            )
        x = self.vit.forward_features(image)  # [B, 1 + h*w, D], CLS first
        cls, tokens = x[:, 0], x[:, self.vit.num_prefix_tokens :]
        grid = tokens.transpose(1, 2).reshape(
            x.shape[0], -1, height // self.patch_size, width // self.patch_size
        )
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=cls, grid=grid)
