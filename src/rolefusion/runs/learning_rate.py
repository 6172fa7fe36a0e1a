"""The learning rate in the logs whenever a scheduler changes it."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor


class ScheduledLearningRateMonitor(LearningRateMonitor):
    """Lightning's learning-rate monitor, watching only runs that have a scheduler and a logger.

    It sits in the default callbacks, so it must not fail where there is nothing to log to:
    Lightning's refuses a run without a logger (``logger=none``), and a constant rate
    (``scheduler=none``) is already in the config.
    """

    _watching = False

    def on_train_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self._watching = bool(trainer.loggers and trainer.lr_scheduler_configs)
        if self._watching:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if self._watching:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if self._watching:
            super().on_train_epoch_start(trainer, *args, **kwargs)
