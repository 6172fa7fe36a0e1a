"""Encoders + fusion + head: the whole model in one place, as a plain ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import torch
from torch import nn

from rolefusion.data.batch import Batch
from rolefusion.models.features import MODALITY_ORDER, ModalityFeatures
from rolefusion.models.fusion.base import Fusion


def _encoder_inputs(batch: Batch, modality: str) -> tuple[torch.Tensor, ...]:
    """The batch fields an encoder of ``modality`` reads; a missing one is a clear error."""
    inputs = {
        "image": (batch.image,),
        "text": (batch.text_ids, batch.text_mask),
        "audio": (batch.audio,),
    }[modality]
    if any(tensor is None for tensor in inputs):
        raise KeyError(
            f"the model fuses {modality!r} but the batch has no {modality} "
            f"(batch modalities: {', '.join(batch.modalities) or 'none'})"
        )
    return inputs


class FusionClassifier(nn.Module):
    """One encoder per modality the fusion consumes, the fusion, and a linear head.

    A fusion that already returns class scores (``produces_logits``, e.g. late fusion) is given
    ``num_classes`` and no head.

    Encoders are built only for the modalities the fusion reads, so a unimodal baseline
    carries no parameters (and spends no compute) for the modality it ignores.

    Args:
        encoders: modality -> factory ``(dim=...) -> nn.Module`` (None leaves the modality out).
        fusion: factory ``(modalities=..., dim=...) -> Fusion``.
        num_classes: width of the logits.
        dim: the shared feature width ``D`` every encoder projects to.
        head_dropout: dropout on the fused vector before the head.
    """

    def __init__(
        self,
        encoders: Mapping[str, Callable[..., nn.Module] | None],
        fusion: Callable[..., Fusion],
        num_classes: int,
        dim: int,
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        available = tuple(m for m in MODALITY_ORDER if encoders.get(m) is not None)
        fusion_class = fusion.func if isinstance(fusion, partial) else fusion
        if getattr(fusion_class, "produces_logits", False):
            self.fusion = fusion(modalities=available, dim=dim, num_classes=num_classes)
            self.head = nn.Identity()
        else:
            self.fusion = fusion(modalities=available, dim=dim)
            self.head = nn.Sequential(
                nn.Dropout(head_dropout), nn.Linear(self.fusion.out_dim, num_classes)
            )
        self.encoders = nn.ModuleDict({m: encoders[m](dim=dim) for m in self.fusion.modalities})

    def encode(self, batch: Batch) -> dict[str, ModalityFeatures]:
        return {
            modality: encoder(*_encoder_inputs(batch, modality))
            for modality, encoder in self.encoders.items()
        }

    def forward(self, batch: Batch) -> torch.Tensor:
        """Logits ``[B, num_classes]``."""
        return self.head(self.fusion(self.encode(batch)))
