"""A timm ResNet image encoder, built without downloading anything."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures


class ResNetEncoder(nn.Module):
    """timm ResNet trunk (no classifier, no pooling) -> 1x1 projection to ``dim`` -> grid.

    The trunk is created with ``pretrained=False``: weights are never downloaded. To start from
    trained weights, save a state dict of the trunk (``torch.save(model.state_dict(), path)``,
    e.g. of ``timm.create_model(variant, pretrained=True)`` on a machine with network) and pass
    its path as ``weights_path``; a classifier (``fc.*``) in that file is ignored.

    Grid size: a plain ResNet (``output_stride=32``) gives only a 2x2 grid (4 tokens) for a
    64 px image. The default ``output_stride=8`` replaces the strides of the last two stages by
    dilation (same weights, so pretrained weights still fit): 64 px then gives 8x8 like the
    seed's SmallCNN (32 px: 4x4), at about 3.5x the compute of stride 32 (16: 4x4, ~1.4x).
    ``grid_size`` then optionally fixes the grid with an adaptive average pool, like SmallCNN.

    Args:
        dim: shared feature width ``D`` of the run.
        variant: timm model name, e.g. ``"resnet18"``, ``"resnet34"``, ``"resnet50"``.
        in_chans: input channels.
        output_stride: total downsampling of the trunk: 8 or 16 (dilated), 32 (plain).
        grid_size: side of the output grid, or None to keep the trunk's own grid.
        weights_path: local state dict file for the trunk, or None for random init.
    """

    def __init__(
        self,
        dim: int,
        *,
        variant: str = "resnet18",
        in_chans: int = 3,
        output_stride: int = 8,
        grid_size: int | None = None,
        weights_path: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone = timm.create_model(
            variant,
            pretrained=False,
            num_classes=0,
            global_pool="",
            in_chans=in_chans,
            output_stride=output_stride,
        )
        if weights_path is not None:
            load_backbone_weights(self.backbone, weights_path)
        self.proj = nn.Conv2d(self.backbone.num_features, dim, kernel_size=1)
        self.pool = nn.AdaptiveAvgPool2d(grid_size) if grid_size is not None else nn.Identity()

    def forward(self, image: torch.Tensor) -> ModalityFeatures:
        """``image [B, C, H, W]`` -> ``grid [B, D, h, w]``, ``tokens [B, h*w, D]``, ``pooled``.

        ``h, w`` are ``H, W / output_stride`` (rounded up), or ``grid_size``; tokens are the grid
        flattened row-major and pooled is its mean.
        """
        grid = self.pool(self.proj(self.backbone.forward_features(image)))
        tokens = grid.flatten(2).transpose(1, 2)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=grid.mean(dim=(2, 3)), grid=grid)


def load_backbone_weights(backbone: nn.Module, weights_path: str | Path) -> None:
    """Load a local state dict into ``backbone``, strictly except for a classifier it lacks.

    Accepts a plain state dict or a checkpoint holding one under ``state_dict`` or ``model``.
    Loaded with ``weights_only=True``: the file cannot run code.
    """
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"ResNetEncoder: model.image_encoder.weights_path={str(weights_path)!r} is not a file; "
            "give a local state dict saved with torch.save, or null for random init"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    own = backbone.state_dict()
    # A trunk built with num_classes=0 has no classifier; a full model's head is dropped.
    head = getattr(backbone, "pretrained_cfg", {}).get("classifier", "fc")
    state = {k: v for k, v in state.items() if k in own or not k.startswith(f"{head}.")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)
    )
    problems = [
        f"{what} {keys[:3]}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
        for what, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", mismatched),
        )
        if keys
    ]
    if problems:
        raise RuntimeError(
            f"ResNetEncoder: weights in {str(path)!r} do not fit the model: "
            f"{'; '.join(problems)}. Is model.image_encoder.variant the one they were saved from?"
        )
    backbone.load_state_dict(state)
