"""Building blocks that several encoders and fusions share, so they are defined once."""

from __future__ import annotations

from torch import nn


def pre_norm_transformer(
    dim: int, num_heads: int, num_layers: int, ff_mult: int, dropout: float
) -> nn.TransformerEncoder:
    """A stack of pre-norm (``norm_first``) GELU encoder layers over ``[B, N, dim]``.

    Pre-norm leaves the residual stream unnormalized: callers add a final LayerNorm.
    """
    layer = nn.TransformerEncoderLayer(
        dim,
        num_heads,
        dim_feedforward=ff_mult * dim,
        dropout=dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    # Nested tensors only serve post-norm layers; saying so avoids torch's warning.
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)


def conv_bn_gelu_stack(in_channels: int, channels: int, num_layers: int) -> nn.Sequential:
    """``num_layers`` blocks of 3x3 conv (size-preserving) -> BatchNorm -> GELU."""
    blocks: list[nn.Module] = []
    for i in range(num_layers):
        blocks += [
            nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
        ]
    return nn.Sequential(*blocks)
