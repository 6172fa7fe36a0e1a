"""What the Slurm tests' jobs import: a callback that kills its own process, as the kernel's
out-of-memory killer would, in the one job of a sweep that has a given seed."""

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
