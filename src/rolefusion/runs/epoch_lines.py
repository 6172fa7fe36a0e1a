"""One log line per epoch, for runs nobody watches live (Slurm, nohup, CI): a progress bar
written to a file is either nothing or a line per refresh, while ``tail -f`` of the job's output
or of the run's ``train.log`` wants each epoch's metrics once.

The line goes through :mod:`logging`, so Hydra's handlers print it and write it to the run's
log file alike::

    epoch 3/10  train/loss=0.5120  val/loss=0.6013  val/acc=0.7500  val/f1=0.7310  (12.3 s)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from rolefusion.runs.artifacts import scalar_metrics

log = logging.getLogger(__name__)


class EpochLines(L.Callback):
    """Log each training epoch's metrics (the epoch means, and validation's when it ran in that
    epoch) and its wall time as one line.

    Args:
        enabled: false makes this callback do nothing; ``conf/callbacks/default.yaml`` turns it
            on when stdout is not a terminal, where the progress bar is turned off.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._started = 0.0
        self._validated = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = not trainer.sanity_checking

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        epoch = trainer.current_epoch + 1
        of = f"/{trainer.max_epochs}" if (trainer.max_epochs or -1) > 0 else ""
        metrics = epoch_metrics(trainer.callback_metrics, validated=self._validated)
        values = "".join(f"  {name}={value:.4f}" for name, value in metrics.items())
        seconds = time.perf_counter() - self._started
        log.info("epoch %d%s%s  (%.1f s)", epoch, of, values, seconds)


def epoch_metrics(callback_metrics: Mapping[str, Any], *, validated: bool) -> dict[str, float]:
    """The scalar epoch-level metrics, training's first: ``train/loss_epoch`` shown as
    ``train/loss``, per-step values left out, and ``val/*`` only when ``validated`` (otherwise
    they are an earlier epoch's, e.g. with ``check_val_every_n_epoch``)."""
    train: dict[str, float] = {}
    other: dict[str, float] = {}
    for name, value in scalar_metrics(callback_metrics).items():
        if name.endswith("_step") or (name.startswith("val/") and not validated):
            continue
        if name.startswith("train/"):
            train[name.removesuffix("_epoch")] = value
        else:
            other[name] = value
    return train | other
