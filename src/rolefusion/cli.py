"""The commands (``rolefusion-train``, ``-eval``, ``-predict``, ``-info``, ``-data``), kept light.

Hydra composes the configuration, and answers ``--help``, before torch or Lightning is
imported: each command imports the module that does its work only when it runs. That keeps
``--help``, a mistyped override and a Slurm job's unpickling fast.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rolefusion.config import register_configs

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
register_configs()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Train and test one configuration (or each job of a sweep); returns the metric an
    Optuna sweep optimises."""
    from rolefusion.train import run

    return run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def evaluate(cfg: DictConfig) -> None:
    """Score a checkpoint on a split, clean and under corruptions."""
    from rolefusion.evaluate import run

    run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def predict(cfg: DictConfig) -> None:
    """Top-k classes of new examples from a checkpoint."""
    from rolefusion.predict import run

    run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="info")
def info(cfg: DictConfig) -> None:
    """Parameters and FLOPs of the configured model."""
    from rolefusion.info import run

    run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="data_inspect")
def data(cfg: DictConfig) -> None:
    """Counts, drops, lengths and a sample grid of the configured data set."""
    from rolefusion.data_inspect import run

    run(cfg)
