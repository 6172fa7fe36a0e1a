"""Rebuild a trained run from its checkpoint and run directory, loading nothing unsafely.

A checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain values only, so a
crafted file cannot run code. Its model is rebuilt from the run's resolved ``config.yaml`` (the
user does not restate the encoders), and its label map, tokenizer and normalization come from the
checkpoint itself.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rolefusion.data.datamodule import RoleFusionDataModule
from rolefusion.models.module import RoleFusionModule
from rolefusion.runs.build import build_model
from rolefusion.runs.checkpoint_files import NotARolefusionCheckpoint, check_checkpoint_file

DATAMODULE_KEY = RoleFusionDataModule.__qualname__
CHECKPOINT_KEYS = ("state_dict", "hyper_parameters", DATAMODULE_KEY)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely, or refuse it with the reason."""
    path = check_checkpoint_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise NotARolefusionCheckpoint(
            f"{path}: refused: not a rolefusion checkpoint (it does not load as tensors and "
            f"plain values: {reason}). It was not unpickled."
        ) from None
    missing = [
        k for k in CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint
    ]
    if missing:
        raise NotARolefusionCheckpoint(
            f"{path}: not a rolefusion checkpoint (no {', '.join(missing)}); use a .ckpt from "
            "a run directory's checkpoints/"
        )
    return checkpoint


def run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved config of the run a checkpoint belongs to (``<run>/checkpoints/*.ckpt``)."""
    config = Path(ckpt_path).resolve().parent.parent / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(
            f"{config} not found: a checkpoint is read with its run directory's config.yaml "
            f"(expected the checkpoint under <run directory>/checkpoints/)"
        )
    return OmegaConf.load(config)


@dataclass
class RestoredRun:
    cfg: DictConfig
    datamodule: RoleFusionDataModule
    model: RoleFusionModule


def restore(ckpt_path: str | Path, data: DictConfig | None = None) -> RestoredRun:
    """The run's data module (with the checkpoint's labels, tokenizer and statistics, on ``data``
    instead of the run's own data when given) and its model with the checkpoint's weights."""
    checkpoint = load_checkpoint(ckpt_path)
    cfg = run_config(ckpt_path)
    cfg.model.compile = False  # evaluation runs each batch once: compiling would not pay
    # Nor would caching frozen features: each example is read once (or once per corruption, each
    # a new input to store), and evaluation computes exactly what it always did.
    cfg.model.feature_cache = None
    if data is not None:
        cfg.data = data
    datamodule: RoleFusionDataModule = instantiate(cfg.data)
    # Checkpoints written before the data module kept its loss weights carry them in the
    # model's hyperparameters only.
    hparams = checkpoint["hyper_parameters"]
    datamodule.load_state_dict(
        {"class_weights": hparams.get("class_weights"), **checkpoint[DATAMODULE_KEY]}
    )
    datamodule.prepare_data()
    model = build_model(cfg, datamodule.spec)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return RestoredRun(cfg, datamodule, model)
