"""Fit the model's modalities to what the data set has, before anything is built.

MELD and EmoryNLP ship their text as CSVs and their videos separately: a user who points
``data=meld`` at the CSVs alone should get a text model, not an error about a ``frame``
column, and get images as soon as frames are extracted next to them. So a run asks the data
which of the modalities its model encodes are absent altogether, drops their encoders, and
says so once. The config is changed rather than the model patched later, so the run's
``config.yaml`` (and a checkpoint restored from it) says exactly what was read, and
``metrics.json`` names what was absent: a sweep never mixes text-only and multimodal runs
without saying so (``rolefusion-report`` separates them).
"""

from __future__ import annotations

import logging

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, open_dict

from rolefusion.choices import MODALITY_ORDER

log = logging.getLogger(__name__)

UNIMODAL_FUSION = "rolefusion.models.fusion.unimodal.UnimodalFusion"


def drop_absent_modalities(cfg: DictConfig) -> dict[str, str]:
    """Remove from ``cfg.model`` the encoder of every modality the data set lacks, and fit the
    fusion to what is left; return each dropped modality with why it was dropped.

    A fusion that cannot work on what is left (channel fusion without the image, any fusion
    of two modalities with one left) becomes the unimodal fusion of the one modality left,
    keeping its width and dropout; with two or more left and a fusion that needs the image,
    the run stops naming ``model/fusion``, since which fusion to use instead is the user's
    choice.
    """
    absent = instantiate(cfg.data).absent_modalities()
    if not absent:
        return {}
    left = [m for m in MODALITY_ORDER if m in cfg.data.modalities and m not in absent]
    if not left:
        raise ValueError(
            f"data.root={cfg.data.root}: the data set has none of the modalities the model "
            f"reads ({_reasons(absent)})"
        )
    chosen = cfg.model.fusion
    fusion = _fusion_for(chosen, left, absent)
    replaced = "" if fusion is chosen else f", through {_name(fusion)} instead of {_name(chosen)}"
    with open_dict(cfg):
        for modality in absent:
            cfg.model[f"{modality}_encoder"] = None
        cfg.model.fusion = fusion
    log.warning(
        "the data set has no %s (%s): the model reads %s only%s. %s",
        " and no ".join(absent),
        _reasons(absent),
        " and ".join(left),
        replaced,
        "rolefusion-extract writes frames and audio from a data set's videos "
        "(docs/extracting_frames.md).",
    )
    return absent


def _fusion_for(fusion: DictConfig, left: list[str], absent: dict[str, str]) -> DictConfig:
    """The fusion config to use on the modalities ``left``."""
    cls = get_class(fusion._target_)
    if fusion._target_ == UNIMODAL_FUSION:
        if fusion.modality in left:
            return fusion
        raise ValueError(
            f"model.fusion reads {fusion.modality!r} only, which the data set lacks "
            f"({_reasons(absent)})"
        )
    fits = len(left) >= cls.min_modalities and not (cls.needs_image and "image" not in left)
    if fits:
        return fusion
    if len(left) > 1:
        raise ValueError(
            f"model/fusion: {_name(fusion)} needs the image, which the data set lacks "
            f"({_reasons(absent)}); choose a fusion of {left}, e.g. model/fusion=concat"
        )
    unimodal = {"_target_": UNIMODAL_FUSION, "_partial_": True, "modality": left[0]}
    unimodal |= {k: fusion[k] for k in ("hidden", "dropout") if k in fusion}
    return DictConfig(unimodal)


def _name(fusion: DictConfig) -> str:
    """``text_only`` or the fusion's class name, as a user reads it in the log."""
    if fusion._target_ == UNIMODAL_FUSION:
        return f"{fusion.modality}_only"
    return fusion._target_.rsplit(".", 1)[-1]


def _reasons(absent: dict[str, str]) -> str:
    return "; ".join(f"{modality}: {why}" for modality, why in absent.items())
