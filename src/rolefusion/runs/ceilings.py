"""Which of the data's ceilings bounds a model, so that a score can be read as score / ceiling.

A data source that knows the best accuracy each model class can reach (the synthetic role-play
scenes: ``ceilings()``) has one per set of modalities read, plus ``additive`` for a model whose
class scores are a sum of one function per modality. A run records them all and names the one
that applies to its model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rolefusion.choices import MODALITY_ORDER
from rolefusion.models.fusion.base import Fusion


def ceiling_key(reads: Sequence[str], present: Sequence[str], additive: bool) -> str:
    """The ceilings key for a model reading ``reads`` of the data's ``present`` modalities.

    ``fused`` (or ``additive``) when it reads them all, ``<m>_only`` for one, ``a+b`` for a pair
    of three; an additive model of a pair of three meets the pair's own ceiling, as every
    family with audio is resolved by adding per-modality scores.
    """
    ordered = [m for m in MODALITY_ORDER if m in reads]
    if set(ordered) >= set(present):
        return "additive" if additive else "fused"
    if len(ordered) == 1:
        return f"{ordered[0]}_only"
    return "+".join(ordered)


def model_ceilings(source: Any, fusion: Fusion) -> dict[str, Any] | None:
    """``{"applies": key, "accuracy": value, "all": {...}}`` when ``source`` knows its ceilings
    (``ceilings()`` and ``modalities``), else None."""
    known = getattr(source, "ceilings", None)
    if not callable(known):
        return None
    bounds = known()
    key = ceiling_key(fusion.modalities, source.modalities, fusion.additive)
    return {"applies": key, "accuracy": bounds[key], "all": bounds}
