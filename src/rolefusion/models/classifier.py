"""Encoders + fusion + head: the whole model in one place, as a plain ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial

import torch
from torch import nn

from rolefusion.data.batch import Batch
from rolefusion.models.feature_cache import FeatureCache
from rolefusion.models.features import MODALITY_ORDER, ModalityFeatures, replaced_rows
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

    An absent modality is one learned vector per modality (``absent``), put in place of all of
    its features: the fusion then always receives every modality it was built for, whatever
    is missing. Training with ``modality_dropout`` teaches the model that vector; without it the
    vector stays zero and is frozen, so an untrained-for absence is plain zero features (and DDP
    finds no parameter without a gradient). A batch's ``dropped`` modalities are absent for
    every example (robustness evaluation).

    Args:
        encoders: modality -> factory ``(dim=...) -> nn.Module`` (None leaves the modality out).
        fusion: factory ``(modalities=..., dim=...) -> Fusion``.
        num_classes: width of the logits.
        dim: the shared feature width ``D`` every encoder projects to.
        head_dropout: dropout on the fused vector before the head.
        modality_dropout: in training, the probability that each modality of each example is
            absent; an example never loses all of them. Needs at least two modalities.
        channels_last: NHWC layout for images and convolution weights (GPU Tensor Cores). The
            weights keep it through ``.to(device)``; images are converted as they come in.
        feature_cache: where encoders with a frozen part (a frozen pretrained backbone) take
            each example's output of that part once it was computed; None computes every time.
            Not a submodule: it is no part of the state dict, so checkpoints are the same
            either way.
    """

    def __init__(
        self,
        encoders: Mapping[str, Callable[..., nn.Module] | None],
        fusion: Callable[..., Fusion],
        num_classes: int,
        dim: int,
        head_dropout: float = 0.0,
        modality_dropout: float = 0.0,
        channels_last: bool = False,
        feature_cache: FeatureCache | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"model.modality_dropout: expected 0 <= p < 1, got {modality_dropout}")
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
        if modality_dropout and len(self.encoders) < 2:
            raise ValueError(
                f"model.modality_dropout={modality_dropout} needs a fusion of two or more "
                f"modalities; this one reads only {', '.join(self.encoders)}"
            )
        self.modality_dropout = modality_dropout
        self.absent = nn.ParameterDict(
            {
                m: nn.Parameter(torch.zeros(dim), requires_grad=modality_dropout > 0)
                for m in self.encoders
            }
        )
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.feature_cache = feature_cache

    def encode(self, batch: Batch) -> dict[str, ModalityFeatures]:
        """Each modality's features, with the absent ones (dropped, or modality dropout in
        training) replaced by the learned absent vector."""
        if self.channels_last and batch.image is not None:
            batch = replace(batch, image=batch.image.contiguous(memory_format=torch.channels_last))
        cache, features = self.feature_cache, {}
        for modality, encoder in self.encoders.items():
            inputs = _encoder_inputs(batch, modality)
            features[modality] = cache.encode(encoder, *inputs) if cache else encoder(*inputs)
        absent = self._absent_rows(batch)
        return {
            m: replaced_rows(f, absent[:, i], self.absent[m]) if absent is not None else f
            for i, (m, f) in enumerate(features.items())
        }

    def _absent_rows(self, batch: Batch) -> torch.Tensor | None:
        """``[B, M]`` bool over the model's modalities (in ``self.encoders`` order), or None
        when every modality of every example is present."""
        sampling = self.training and self.modality_dropout > 0
        if not batch.dropped and not sampling:
            return None
        device = batch.label.device
        absent = torch.tensor([m in batch.dropped for m in self.encoders], device=device)
        absent = absent.expand(len(batch), -1)
        if sampling:
            sampled = torch.rand(len(batch), len(self.encoders), device=device)
            sampled = sampled < self.modality_dropout
            everything = sampled.all(dim=1)
            kept = torch.randint(len(self.encoders), (len(batch),), device=device)
            sampled[everything, kept[everything]] = False
            absent = absent | sampled
        return absent

    def forward(self, batch: Batch) -> torch.Tensor:
        """Logits ``[B, num_classes]``."""
        return self.head(self.fusion(self.encode(batch)))
