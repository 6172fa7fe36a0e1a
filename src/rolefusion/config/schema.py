"""The shape of the top-level configs: a misspelt top-level key fails at composition, naming it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainSchema:
    """The top-level keys of ``train.yaml``."""

    data: Any = None
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    trainer: Any = None
    logger: Any = None
    callbacks: Any = None
    paths: Any = None
    task_name: str = "train"
    tags: list[str] = field(default_factory=list)
    seed: int | None = 42
    train: bool = True
    test: bool = True
    ckpt_path: str | None = None
    optimized_metric: str = "val/f1_best"
    attribution: Any = "auto"
    """``auto``, true or false: Any, because OmegaConf types cannot say "bool or this word"."""


@dataclass
class InspectOptions:
    """``rolefusion-data``'s own settings (``conf/data_inspect.yaml``)."""

    out_dir: str = "outputs/data_inspect"
    samples: int = 16
    seed: int = 0


@dataclass
class DataInspectSchema(TrainSchema):
    """The training keys, plus ``inspect``."""

    inspect: InspectOptions = field(default_factory=InspectOptions)
