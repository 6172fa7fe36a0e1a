"""The seed's recurrent text encoder: embedding, then an LSTM or GRU over the real tokens."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rolefusion.models.features import ModalityFeatures, masked_mean

Cell = Literal["lstm", "gru"]
CELLS: dict[Cell, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNTextEncoder(nn.Module):
    """Embedding -> (bi)LSTM/GRU on packed sequences -> linear projection to ``dim``.

    Packing makes the recurrence stop at each text's last real token, so padding never leaks
    into the states (the backward direction of a bidirectional RNN starts at the true end).
    Texts are expected right-padded: the real tokens come first.

    Args:
        dim: shared feature width ``D`` of the run.
        vocab_size: number of token ids.
        pad_id: id of the padding token (its embedding stays zero).
        cell: ``"lstm"`` or ``"gru"``.
        embed_dim: width of the token embedding.
        hidden_size: hidden width of the RNN, per direction.
        num_layers: stacked RNN layers.
        bidirectional: run a second RNN right-to-left and concatenate both.
        dropout: dropout between stacked layers (unused when ``num_layers == 1``).
    """

    def __init__(
        self,
        dim: int,
        vocab_size: int,
        pad_id: int = 0,
        *,
        cell: Cell = "lstm",
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(
                f"RNNTextEncoder: unknown cell {cell!r}; expected one of {list(CELLS)}"
            )
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = CELLS[cell](
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,  # torch warns on dropout with one layer
            batch_first=True,
        )
        self.proj = nn.Linear(hidden_size * (2 if bidirectional else 1), dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> ModalityFeatures:
        """``ids [B, T]`` long, ``mask [B, T]`` bool -> tokens ``[B, T, D]``, pooled ``[B, D]``.

        An empty text (mask all False) is run for one step so packing does not fail; its tokens
        are then zeroed like any padding and it pools to zeros.
        """
        lengths = mask.sum(dim=1).clamp_min(1).cpu()
        packed = pack_padded_sequence(
            self.embed(ids), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        tokens = self.proj(out) * mask.unsqueeze(-1).to(out.dtype)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=masked_mean(tokens, mask))
