"""The batch that flows from the data loader to the model."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class Batch:
    """One mini-batch. A modality that is not part of the run is ``None``, never zero-filled.

    Attributes:
        label: ``[B]`` long class indices (``-1`` for examples to predict), or ``[B, C]``
            multi-hot floats for multilabel data.
        image: ``[B, 3, H, W]`` float, normalized.
        text_ids: ``[B, T]`` long token ids, padded with the tokenizer's pad id.
        text_mask: ``[B, T]`` bool, True on real tokens.
        audio: ``[B, 1, S]`` float waveform.
        dropped: modalities masked on purpose for every example (robustness evaluation): the
            model replaces their features with its learned "absent" embedding.
        index: ``[B]`` long, each example's row in its split (``examples[i].record.id`` names
            it): what ties a test prediction to its example in ``predictions.csv``. A tensor
            rather than the id strings, so it travels with the batch, gathers across ranks and
            returns from spawned processes like the metrics do.
    """

    label: torch.Tensor
    image: torch.Tensor | None = None
    text_ids: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    dropped: tuple[str, ...] = ()
    index: torch.Tensor | None = None

    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the modalities present, in the canonical order."""
        present = []
        if self.image is not None:
            present.append("image")
        if self.text_ids is not None:
            present.append("text")
        if self.audio is not None:
            present.append("audio")
        return tuple(present)

    def __len__(self) -> int:
        return self.label.shape[0]

    def _map(self, fn) -> Batch:
        return replace(
            self,
            **{
                f.name: fn(v)
                for f in fields(self)
                if isinstance(v := getattr(self, f.name), torch.Tensor)
            },
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor; Lightning calls this to place the batch on the model's device."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by ``DataLoader(pin_memory=True)`` for custom batch types."""
        return self._map(lambda t: t.pin_memory())
