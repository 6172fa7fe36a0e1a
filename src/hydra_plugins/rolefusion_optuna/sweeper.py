"""``hydra/sweeper=optuna_pruning``: Hydra's Optuna sweeper whose trials can be pruned.

Hydra imports every module of ``hydra_plugins`` at start-up, whatever the command: this one
imports nothing but Hydra, and Optuna only once a search starts, like the plugin it extends.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class PruningOptunaSweeper(Sweeper):
    """hydra-optuna-sweeper's settings plus ``pruner``: see
    :class:`rolefusion.runs.optuna_sweep.PruningOptunaSweeperImpl`."""

    def __init__(self, pruner: Any, **optuna_settings: Any) -> None:
        from rolefusion.runs.optuna_sweep import PruningOptunaSweeperImpl

        self.sweeper = PruningOptunaSweeperImpl(pruner=pruner, **optuna_settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        self.sweeper.sweep(arguments)
