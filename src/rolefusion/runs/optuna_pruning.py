"""The job's side of pruned Optuna trials: report each validation to the trial, stop when the
study's pruner says so. Outside an Optuna search (no trial id in the environment, see
:mod:`rolefusion.runs.optuna_trial`) the callback does nothing.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import lightning as L

from rolefusion.runs.optuna_trial import TRIAL_ID_VARIABLE, job_trial

if TYPE_CHECKING:  # Optuna is an extra: imported when a search runs
    import optuna

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    """Reports ``monitor`` to the job's Optuna trial after every validation (step = epoch) and,
    when the study's pruner says so, marks the trial PRUNED and stops training at that epoch.

    Rank zero alone talks to the study; it passes the decision to every rank, so a multi-process
    job stops as one. Lightning's ``min_epochs`` would keep a stopped run training: leave it
    unset in a pruned search.

    Args:
        monitor: the metric reported, the sweep's ``optimized_metric``: a pruner compares trials
            by what the study optimises. With ``val/f1_best``, a running maximum, one bad
            epoch after a good one does not count against a trial, and the last value reported
            is the trial's result.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.pruned_epoch: int | None = None
        self._trial: optuna.trial.Trial | None = None
        self._active = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._active = stage == "fit" and TRIAL_ID_VARIABLE in os.environ
        if self._active and trainer.is_global_zero:
            self._trial = job_trial()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active or trainer.sanity_checking or self.pruned_epoch is not None:
            return
        epoch = trainer.current_epoch
        prune = False
        if trainer.is_global_zero:
            self._trial.report(self._value(trainer), step=epoch)
            prune = self._trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_epoch = epoch
            trainer.should_stop = True
            if trainer.is_global_zero:
                from optuna.trial import TrialState

                self._trial.study.tell(self._trial, state=TrialState.PRUNED)
                log.info("Optuna trial %d pruned after epoch %d by %s", self._trial.number,
                         epoch, type(self._trial.study.pruner).__name__)  # fmt: skip

    def _value(self, trainer: L.Trainer) -> float:
        if self.monitor not in trainer.callback_metrics:
            raise ValueError(
                f"callbacks.optuna_pruning.monitor={self.monitor}: not logged at validation; "
                f"logged: {sorted(trainer.callback_metrics)}"
            )
        return float(trainer.callback_metrics[self.monitor])


def pruned_epoch(trainer: L.Trainer) -> int | None:
    """The epoch after which this run's Optuna trial was pruned, or None."""
    epochs = [c.pruned_epoch for c in trainer.callbacks if isinstance(c, OptunaPruning)]
    return next((epoch for epoch in epochs if epoch is not None), None)
