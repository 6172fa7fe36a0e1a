"""The Hydra commands (``rolefusion-train``, ``-eval``, ``-predict``, ``-info``, ``-data``), kept
light.

Hydra composes the configuration, and answers ``--help``, before torch or Lightning is
imported: each command imports the module that does its work only when it runs. That keeps
``--help``, a mistyped override and a Slurm job's unpickling fast.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rolefusion.config import register_configs

CONFIG_PATH = "pkg://rolefusion.conf"
"""The configs shipped in the package (``conf/`` of the checkout, mapped in by pyproject.toml).
Users add their own with ``--config-dir`` or ``hydra.searchpath`` (docs/extending.md)."""
register_configs()


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Train and test one configuration (or each job of a sweep); returns the metric an
    Optuna sweep optimises."""
    from rolefusion.commands.train import run

    return run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def evaluate(cfg: DictConfig) -> None:
    """Score a checkpoint on a split, clean and under corruptions."""
    from rolefusion.commands.evaluate import run

    run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
def predict(cfg: DictConfig) -> None:
    """Top-k classes of new examples from a checkpoint."""
    from rolefusion.commands.predict import run

    run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="info")
def info(cfg: DictConfig) -> None:
    """Parameters and FLOPs of the configured model."""
    from rolefusion.commands.info import run

    run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="data_inspect")
def data(cfg: DictConfig) -> None:
    """Counts, drops, lengths and a sample grid of the configured data set."""
    from rolefusion.commands.data_inspect import run

    run(cfg)
