"""What every fusion shares: the modalities it consumes, its output width, and input checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from rolefusion.models.features import MODALITY_ORDER, ModalityFeatures


class Fusion(nn.Module):
    """Base of all fusions; ``forward(features) -> [B, out_dim]``.

    Attributes:
        modalities: the modalities this fusion consumes, in canonical order; the classifier
            builds and runs encoders only for these.
        out_dim: width of the fused vector (the head's input width).
        view: which view of the features it reads: ``"tokens"``, ``"grid"`` or ``"pooled"``.
        min_modalities: fewer modalities than this is a configuration error.
        needs_image: whether it needs the image's spatial ``grid``.
        produces_logits: True for fusions that decide per modality and combine the decisions
            (late fusion): they take ``num_classes``, return class scores, and get no head.
        additive: True when the class scores are a sum of one function of each modality (late
            fusion, whichever ``combine``): no interaction between modalities can be learnt, so
            the data's ``additive`` ceiling bounds it (docs/roleplay_scenes.md).
    """

    view: ClassVar[str]
    min_modalities: ClassVar[int] = 2
    needs_image: ClassVar[bool] = False
    produces_logits: ClassVar[bool] = False
    additive: ClassVar[bool] = False

    def __init__(self, modalities: Sequence[str], dim: int) -> None:
        super().__init__()
        name = type(self).__name__
        unknown = sorted(set(modalities) - set(MODALITY_ORDER))
        if unknown:
            raise ValueError(
                f"{name}: unknown modalities {unknown}; expected some of {MODALITY_ORDER}"
            )
        self.modalities: tuple[str, ...] = tuple(m for m in MODALITY_ORDER if m in modalities)
        if len(self.modalities) < self.min_modalities:
            raise ValueError(
                f"{name} fuses at least {self.min_modalities} modalities, got {self.modalities}"
            )
        if self.needs_image and "image" not in self.modalities:
            raise ValueError(
                f"{name} lays everything out on the image grid, so it needs 'image' among the "
                f"modalities; got {self.modalities}"
            )
        self.dim = dim
        self.out_dim = dim

    def select(self, features: dict[str, ModalityFeatures]) -> list[tuple[str, ModalityFeatures]]:
        """This fusion's modalities in canonical order; extra entries in ``features`` are unused."""
        missing = [m for m in self.modalities if m not in features]
        if missing:
            raise KeyError(
                f"{type(self).__name__} was built for {self.modalities} but got no features for "
                f"{missing} (present: {sorted(features)})"
            )
        return [(m, features[m]) for m in self.modalities]

    def image_grid(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        """The image's ``grid [B, D, H, W]``, with a clear error if its encoder has none."""
        grid = features["image"].grid
        if grid is None:
            raise ValueError(
                f"{type(self).__name__} needs the image encoder's spatial grid [B, D, H, W], but "
                "the image features have grid=None; use an image encoder that keeps a grid"
            )
        return grid
