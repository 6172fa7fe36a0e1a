"""Build a run's parts from a composed config: data, model, callbacks and loggers; shared by
every command."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from rolefusion.data.datamodule import DataSpec, RoleFusionDataModule
from rolefusion.models.module import RoleFusionModule


def prepared_datamodule(cfg: DictConfig) -> RoleFusionDataModule:
    """Instantiate ``cfg.data``, generate or check its files, and read the splits.

    Set-up happens here rather than inside ``Trainer.fit`` because the model's shape (classes,
    vocabulary) comes from the training split.
    """
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if cfg.get("test"):
        # Now rather than in Trainer.test, so that what cleaning dropped from every split is
        # counted and written before training starts.
        datamodule.setup("test")
    return datamodule


def build_model(cfg: DictConfig, spec: DataSpec) -> RoleFusionModule:
    """Instantiate ``cfg.model`` with the optimizer, scheduler and what the data dictates."""
    return instantiate(
        cfg.model,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        class_names=spec.class_names,
        vocab_size=spec.vocab_size,
        pad_id=spec.pad_id,
        task=spec.task,
        class_weights=spec.class_weights,
    )


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Callbacks and loggers are dicts of named configs; an empty or null group means none."""
    return [instantiate(node) for node in (group or {}).values() if node is not None]
