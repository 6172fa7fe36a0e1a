"""Training-split augmentation: image crops, flips and colour jitter; text token dropout.

Off by default. The synthetic scenes carry a role's identity in colours and positions, so
jitter and flips there change the answer; on real photographs they are the usual regularisers.
Steps run in the order of the fields below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class Augmentation:
    """What ``data.augment`` turns on; every field at its default is a no-op.

    Args:
        crop_scale: ``[min, max]`` area share for a random resized crop, e.g. ``[0.8, 1.0]``.
        horizontal_flip: probability of a left-right flip.
        color_jitter: ``[brightness, contrast, saturation, hue]`` strengths, e.g.
            ``[0.2, 0.2, 0.2, 0.02]``.
        text_token_dropout: probability of deleting each (non-special) token.
    """

    crop_scale: Sequence[float] | None = None
    horizontal_flip: float = 0.0
    color_jitter: Sequence[float] | None = None
    text_token_dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("horizontal_flip", "text_token_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(
                    f"data.augment.{name}: expected a probability in [0, 1), got {value}"
                )
        if self.crop_scale is not None and not (
            len(self.crop_scale) == 2 and 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1
        ):
            raise ValueError(
                f"data.augment.crop_scale: expected [min, max] with 0 < min <= max <= 1, "
                f"got {list(self.crop_scale)}"
            )
        if self.color_jitter is not None and len(self.color_jitter) != 4:
            raise ValueError(
                "data.augment.color_jitter: expected [brightness, contrast, saturation, hue], "
                f"got {list(self.color_jitter)}"
            )

    def image_steps(self, size: int) -> list[v2.Transform]:
        """The image transforms, on ``uint8 [3, size, size]`` tensors."""
        steps: list[v2.Transform] = []
        if self.crop_scale is not None:
            steps.append(v2.RandomResizedCrop(size, scale=tuple(self.crop_scale), antialias=True))
        if self.horizontal_flip:
            steps.append(v2.RandomHorizontalFlip(self.horizontal_flip))
        if self.color_jitter is not None:
            brightness, contrast, saturation, hue = self.color_jitter
            steps.append(v2.ColorJitter(brightness, contrast, saturation, hue))
        return steps


def drop_tokens(
    ids: torch.Tensor,
    mask: torch.Tensor,
    special: torch.Tensor,
    p: float,
    pad_id: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Delete each ordinary token with probability ``p``; close the gaps and re-pad.

    Deleting (rather than masking in place) keeps every sequence contiguous, which packed
    RNNs and position embeddings both assume. Special tokens ([CLS], [SEP]) always stay.
    """
    keep = mask & (special | (torch.rand(ids.shape, generator=generator) >= p))
    lengths = keep.sum(1)
    out = torch.full((len(ids), max(int(lengths.max()), 1)), pad_id, dtype=ids.dtype)
    for row in range(len(ids)):
        out[row, : lengths[row]] = ids[row][keep[row]]
    return out, torch.arange(out.shape[1]) < lengths[:, None]
