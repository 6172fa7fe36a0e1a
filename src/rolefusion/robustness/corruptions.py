"""Test-time corruptions for robustness evaluation: each turns a clean batch into a corrupted
one at a given strength, and touches only its own modality.

Corruptions act on batches as the loader made them (normalized images, token ids), so they
need to know how the inputs were encoded: :class:`InputEncoding`. Strengths are in the units a
reader expects (pixel values in [0, 1], blur sigma in pixels, shares of tokens), not in the
normalized space the model sees. Randomness comes only from the generator passed in, so a
corrupted evaluation is the same every time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import torch
from tokenizers import Tokenizer
from torchvision.transforms.v2 import functional as tvf

from rolefusion.data.augmentation import drop_tokens
from rolefusion.data.batch import Batch
from rolefusion.data.tokenizer import pad_id


@dataclass(frozen=True)
class InputEncoding:
    """How a run encodes its inputs: pixel normalization, padding and added special tokens."""

    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    pad_id: int | None
    special_ids: tuple[int, ...] = ()

    @classmethod
    def of(
        cls, tokenizer: Tokenizer | None, mean: Sequence[float] | None, std: Sequence[float] | None
    ) -> InputEncoding:
        """The encoding of a data module's tokenizer and statistics.

        The special tokens are those the tokenizer adds around any text ([CLS], [SEP]): what it
        makes of an empty string. A word-level tokenizer adds none.
        """
        if tokenizer is None:
            return cls(tuple(mean) if mean else None, tuple(std) if std else None, None)
        bare = Tokenizer.from_str(tokenizer.to_str())
        bare.no_padding()
        bare.no_truncation()
        return cls(
            tuple(mean) if mean else None,
            tuple(std) if std else None,
            pad_id(tokenizer),
            tuple(bare.encode("").ids),
        )

    def pixels(self, image: torch.Tensor) -> torch.Tensor:
        """Normalized ``[B, 3, H, W]`` back to pixel values in [0, 1]."""
        return image * self._channels(self.std, image) + self._channels(self.mean, image)

    def normalized(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self._channels(self.mean, pixels)) / self._channels(self.std, pixels)

    def special(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.isin(ids, torch.tensor(self.special_ids, dtype=ids.dtype))

    @staticmethod
    def _channels(values: tuple[float, ...] | None, like: torch.Tensor) -> torch.Tensor:
        if values is None:
            raise ValueError("image corruptions need the run's normalization statistics")
        return torch.tensor(values, dtype=like.dtype)[:, None, None]


@dataclass(frozen=True)
class DropModality:
    """The modality is missing from every example: the model sees it as it was trained to see
    absence (its learned absent vector, see ``model.modality_dropout``). The input itself is
    zeroed too, so none of it can reach the model by another path."""

    modality: str
    strengths: tuple[float, ...] = field(default=(), init=False)

    def __call__(
        self,
        batch: Batch,
        strength: float | None,
        generator: torch.Generator,
        encoding: InputEncoding,
    ) -> Batch:
        zeroed = {
            "image": ("image",),
            "text": ("text_ids", "text_mask"),
            "audio": ("audio",),
        }[self.modality]
        changes = {}
        for name in zeroed:
            tensor = getattr(batch, name)
            if tensor is None:
                raise ValueError(f"drop:{self.modality}: the data has no {self.modality}")
            changes[name] = torch.zeros_like(tensor)
        if self.modality == "text":
            changes["text_ids"] = torch.full_like(batch.text_ids, encoding.pad_id or 0)
            changes["text_mask"][:, 0] = True  # one real (pad) token: encoders need a length
        return replace(batch, **changes, dropped=(*batch.dropped, self.modality))


@dataclass(frozen=True)
class Graded:
    """A corruption evaluated at each of ``strengths``, on the modality its class names."""

    strengths: Sequence[float]
    modality: ClassVar[str]


@dataclass(frozen=True)
class ImageNoise(Graded):
    """Additive Gaussian noise of standard deviation ``strength`` in pixel units ([0, 1]),
    clipped to the valid range as a real sensor would be."""

    modality: ClassVar[str] = "image"

    def __call__(
        self, batch: Batch, strength: float, generator: torch.Generator, encoding: InputEncoding
    ) -> Batch:
        pixels = encoding.pixels(batch.image)
        noise = torch.randn(pixels.shape, generator=generator, dtype=pixels.dtype)
        noisy = (pixels + strength * noise).clamp(0.0, 1.0)
        return replace(batch, image=encoding.normalized(noisy))


@dataclass(frozen=True)
class ImageBlur(Graded):
    """Gaussian blur with sigma ``strength`` in pixels (kernel out to 3 sigma)."""

    modality: ClassVar[str] = "image"

    def __call__(
        self, batch: Batch, strength: float, generator: torch.Generator, encoding: InputEncoding
    ) -> Batch:
        # Blur is linear with weights summing to one, so it commutes with the per-channel
        # normalization: blurring the normalized image is blurring the pixels.
        side = min(batch.image.shape[-2:])
        radius = min(math.ceil(3 * strength), side - 1)
        size = 2 * radius + 1
        return replace(batch, image=tvf.gaussian_blur(batch.image, [size, size], [strength] * 2))


@dataclass(frozen=True)
class TokenDropout(Graded):
    """Each ordinary token is deleted with probability ``strength`` (special tokens stay)."""

    modality: ClassVar[str] = "text"

    def __call__(
        self, batch: Batch, strength: float, generator: torch.Generator, encoding: InputEncoding
    ) -> Batch:
        special = encoding.special(batch.text_ids)
        ids, mask = drop_tokens(
            batch.text_ids, batch.text_mask, special, strength, encoding.pad_id, generator
        )
        return replace(batch, text_ids=ids, text_mask=mask)


@dataclass(frozen=True)
class TokenShuffle(Graded):
    """A share ``strength`` of each text's ordinary tokens trade places at random (1.0: the
    whole text is shuffled); which words are there does not change, only their order."""

    modality: ClassVar[str] = "text"

    def __call__(
        self, batch: Batch, strength: float, generator: torch.Generator, encoding: InputEncoding
    ) -> Batch:
        ids = batch.text_ids.clone()
        movable = batch.text_mask & ~encoding.special(ids)
        for row in range(len(ids)):
            positions = movable[row].nonzero().flatten()
            count = round(strength * len(positions))
            if count < 2:
                continue
            chosen = positions[torch.randperm(len(positions), generator=generator)[:count]]
            ids[row, chosen] = ids[row, chosen[torch.randperm(count, generator=generator)]]
        return replace(batch, text_ids=ids)


Corruption = DropModality | ImageNoise | ImageBlur | TokenDropout | TokenShuffle
