"""The frozen part of an encoder: the seam through which a feature cache computes that part's
output once per example and reuses it (:mod:`rolefusion.models.feature_cache`).

An encoder with frozen weights in front (a pretrained backbone with ``freeze: true``) spends most
of its time there, recomputing, every epoch, outputs that cannot have changed. Splitting it into
that frozen part and a trainable rest, each example's output of the frozen part can be stored
and the rest run on it: the forward pass is the same function, evaluated in two steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures


@runtime_checkable
class FrozenPart(Protocol):
    """What an encoder exposes so that its frozen part's outputs can be cached.

    The encoder's ``forward(*inputs)`` must equal ``from_frozen(frozen_outputs(*inputs),
    *inputs)``, and each example's output of the frozen part must be determined by that
    example's ``frozen_inputs`` alone (given the fingerprint): that is what makes a stored output
    valid for any later batch holding the same example.
    """

    def frozen_fingerprint(self) -> str | None:
        """A hash of everything other than the input that the frozen part's output depends on
        (its class, configuration, weights, code version), or None when no part is frozen now
        (``freeze: false``): there is then nothing to cache."""
        ...

    def frozen_inputs(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Per example, exactly what the frozen part reads of it: equal inputs, equal outputs."""
        ...

    def frozen_outputs(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Per example, the frozen part's output, computed (no gradient)."""
        ...

    def from_frozen(
        self, outputs: Sequence[torch.Tensor], *inputs: torch.Tensor
    ) -> ModalityFeatures:
        """The encoder's features from each example's frozen output: its trainable rest."""
        ...


def weights_fingerprint(module: nn.Module, *config: object) -> str:
    """A hash of ``module``'s class, of ``config`` (by ``repr``) and of every tensor of its
    state dict (name, dtype, shape and bytes): equal only for the same computation on the same
    weights."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}\n".encode())
    for item in config:
        digest.update(f"{item!r}\n".encode())
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name} {flat.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()
