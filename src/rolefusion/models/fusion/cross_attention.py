"""Cross-attention fusion: each modality's tokens attend to the other modalities' tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures, masked_mean
from rolefusion.models.fusion.base import Fusion


class CrossAttentionBlock(nn.Module):
    """Pre-norm ``x + MHA(norm(x), norm(context))``, then ``x + FF(norm(x))``.

    ``add_zero_attn`` appends an all-zero key and value that is never masked: a query may
    attend to "nothing", and a row whose context is entirely padding (say an empty text and
    no audio) gets a zero update instead of the NaN of a softmax over no keys.
    """

    def __init__(self, dim: int, num_heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(
            dim, num_heads, dropout=dropout, batch_first=True, add_zero_attn=True
        )
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, padding: torch.Tensor
    ) -> torch.Tensor:
        """``x [B, N, D]`` attends to ``context [B, K, D]`` (``padding [B, K]`` True = ignore)."""
        kv = self.norm_kv(context)
        x = x + self.attn(self.norm_q(x), kv, kv, key_padding_mask=padding, need_weights=False)[0]
        return x + self.ff(self.norm_ff(x))


class CrossAttentionFusion(Fusion):
    """Every modality cross-attends to the rest -> masked mean per modality -> concat -> Linear.

    In each layer, modality ``m``'s tokens ``[B, N_m, D]`` attend to the concatenation of the
    other modalities' tokens from the previous layer (all modalities update together, so the
    order of modalities does not matter), with padding excluded by the key padding mask. After
    the last layer each modality is normalized, mean-pooled over its real tokens, and the
    ``[B, D * M]`` concatenation is mapped to ``[B, hidden]``. Padded positions never feed a
    real one, so the output is invariant to what padding holds.

    Args:
        modalities: modalities to fuse (at least two).
        dim: shared feature width ``D``; also the attention width.
        num_layers: cross-attention blocks per modality.
        num_heads: attention heads (must divide ``dim``).
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout inside the blocks.
        hidden: output width; None uses ``dim``.
    """

    view: ClassVar[str] = "tokens"

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        num_layers: int = 1,
        num_heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
        hidden: int | None = None,
    ) -> None:
        super().__init__(modalities, dim)
        if dim % num_heads:
            raise ValueError(f"CrossAttentionFusion: num_heads={num_heads} must divide dim={dim}")
        if num_layers < 1:
            raise ValueError(f"CrossAttentionFusion: num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                {m: CrossAttentionBlock(dim, num_heads, ff_mult, dropout) for m in self.modalities}
            )
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleDict({m: nn.LayerNorm(dim) for m in self.modalities})
        self.out_dim = hidden or dim
        self.out = nn.Linear(dim * len(self.modalities), self.out_dim)

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``tokens [B, N_m, D]``, ``mask [B, N_m]`` -> ``[B, hidden]``."""
        selected = self.select(features)
        tokens = {name: f.tokens for name, f in selected}
        masks = {name: f.mask for name, f in selected}
        for layer in self.layers:
            tokens = {
                name: layer[name](
                    x,
                    torch.cat([tokens[o] for o in tokens if o != name], dim=1),
                    ~torch.cat([masks[o] for o in masks if o != name], dim=1),
                )
                for name, x in tokens.items()
            }
        pooled = [masked_mean(self.norms[name](x), masks[name]) for name, x in tokens.items()]
        return self.out(torch.cat(pooled, dim=1))
