"""Callbacks that kill their own process with SIGKILL, as the kernel's out-of-memory killer or a
node failure would, for the tests of what survives that (imported by the tests' jobs)."""

from __future__ import annotations

import os
import signal

import lightning as L


class KillOnSeed(L.Callback):
    """SIGKILL this process when training starts, if the run's seed is ``seed``.

    The seed is read from ``PL_GLOBAL_SEED``, which ``lightning.seed_everything`` sets.
    SIGKILL cannot be caught: nothing of the run gets to write a result or an error.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if os.environ.get("PL_GLOBAL_SEED") == str(self.seed):
            os.kill(os.getpid(), signal.SIGKILL)


class KillAfterEpoch(L.Callback):
    """SIGKILL this process at the end of training epoch ``epoch`` (0-based), after that
    epoch's checkpoints were written: the run stops between epochs without a word."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)
