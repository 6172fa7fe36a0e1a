"""A small transformer text encoder trained from scratch: embeddings, pre-norm layers, mean."""

from __future__ import annotations

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures, masked_mean
from rolefusion.models.layers import pre_norm_transformer


class TransformerTextEncoder(nn.Module):
    """Token + learned position embeddings -> pre-norm ``nn.TransformerEncoder`` -> LayerNorm.

    Padding is excluded from attention with ``src_key_padding_mask`` and from pooling by the
    masked mean, so the ids at padded positions never change the output.

    Args:
        dim: shared feature width ``D`` of the run (also the transformer's width).
        vocab_size: number of token ids.
        pad_id: id of the padding token (its embedding stays zero).
        num_layers: encoder layers.
        num_heads: attention heads; must divide ``dim``.
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout in attention, feed-forward and after the embeddings.
        max_length: longest text (in tokens) the position table covers.
    """

    def __init__(
        self,
        dim: int,
        vocab_size: int,
        pad_id: int = 0,
        *,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
        max_length: int = 512,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(
                f"TransformerTextEncoder: num_heads={num_heads} must divide model.dim={dim}"
            )
        self.max_length = max_length
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.pos = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.encoder = pre_norm_transformer(dim, num_heads, num_layers, ff_mult, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> ModalityFeatures:
        """``ids [B, T]`` long, ``mask [B, T]`` bool -> tokens ``[B, T, D]``, pooled ``[B, D]``.

        An empty text (mask all False) would make every attention row fully masked (NaN); it is
        let attend to position 0 instead, and its tokens are then zeroed like any padding, so
        it pools to zeros. The returned ``mask`` is the one given.
        """
        length = ids.shape[1]
        if length > self.max_length:
            raise ValueError(
                f"TransformerTextEncoder: text of {length} tokens exceeds max_length="
                f"{self.max_length}; raise model.text_encoder.max_length or data.max_text_length"
            )
        attend = mask.clone()
        attend[:, 0] |= ~mask.any(dim=1)
        x = self.drop(self.embed(ids) + self.pos[:, :length])
        x = self.norm(self.encoder(x, src_key_padding_mask=~attend))
        tokens = x * mask.unsqueeze(-1).to(x.dtype)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=masked_mean(tokens, mask))
