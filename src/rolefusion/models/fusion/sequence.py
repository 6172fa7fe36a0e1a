"""Sequence fusion: one transformer over all modalities' tokens, read out at a CLS token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion
from rolefusion.models.layers import pre_norm_transformer


class SequenceFusion(Fusion):
    """``[CLS] + image tokens + text tokens (+ audio tokens)`` -> transformer -> CLS ``[B, D]``.

    Each token gets a learned modality-type embedding (which modality it came from) and a learned
    position embedding of its own modality (where it sits within it); padding tokens are excluded
    from attention through ``src_key_padding_mask``, and the CLS token is never masked, so even a
    sample whose text is empty has something to attend to.

    Args:
        modalities: modalities to fuse (at least two).
        dim: shared feature width ``D``; also the transformer width.
        num_layers: transformer encoder layers.
        num_heads: attention heads (must divide ``dim``).
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout inside the transformer layers.
        max_tokens: most tokens any one modality may bring (size of its position table).
    """

    view: ClassVar[str] = "tokens"

    def __init__(
        self,
        modalities: Sequence[str],
        dim: int,
        *,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
        max_tokens: int = 512,
    ) -> None:
        super().__init__(modalities, dim)
        if dim % num_heads:
            raise ValueError(f"SequenceFusion: num_heads={num_heads} must divide dim={dim}")
        self.max_tokens = max_tokens
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.type_embed = nn.Parameter(torch.zeros(len(self.modalities), dim))
        self.pos_embed = nn.Parameter(torch.zeros(len(self.modalities), max_tokens, dim))
        for p in (self.cls, self.type_embed, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        self.encoder = pre_norm_transformer(dim, num_heads, num_layers, ff_mult, dropout)
        self.norm = nn.LayerNorm(dim)  # pre-norm layers leave the residual stream unnormalized

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """Features with ``tokens [B, N_m, D]``, ``mask [B, N_m]`` -> CLS output ``[B, D]``."""
        tokens, masks = [], []
        for i, (name, feats) in enumerate(self.select(features)):
            n = feats.tokens.shape[1]
            if n > self.max_tokens:
                raise ValueError(
                    f"SequenceFusion: modality {name!r} has {n} tokens but max_tokens="
                    f"{self.max_tokens}; raise model.fusion.max_tokens or shorten the input"
                )
            tokens.append(feats.tokens + self.type_embed[i] + self.pos_embed[i, :n])
            masks.append(feats.mask)
        batch = tokens[0].shape[0]
        cls = self.cls.expand(batch, -1, -1)
        cls_mask = torch.ones(batch, 1, dtype=torch.bool, device=cls.device)
        x = torch.cat([cls, *tokens], dim=1)
        padding = ~torch.cat([cls_mask, *masks], dim=1)
        x = self.encoder(x, src_key_padding_mask=padding)
        return self.norm(x[:, 0])
