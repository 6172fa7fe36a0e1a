"""Callbacks that kill their own process with SIGKILL, as the kernel's out-of-memory killer or a
node failure would, or give a test time to interrupt it from outside (``scontrol requeue``), for
the tests of what survives that, and one that records who made a job's ranks (imported by the
tests' jobs)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

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
    """SIGKILL this process at the end of training epoch ``epoch`` (0-based), after its
    validation but before its checkpoints are written (Lightning's ModelCheckpoint saves in
    ``on_train_epoch_end`` after every other callback's): the run stops without a word, and its
    ``last.ckpt`` is that of epoch ``epoch - 1``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class KillAtBatch(L.Callback):
    """SIGKILL this process as training batch ``batch`` of epoch ``epoch`` (both 0-based)
    starts: in the middle of an epoch, its earlier steps taken and lost."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch = epoch
        self.batch = batch

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


class PauseAfterEpoch(L.Callback):
    """Sleep ``seconds`` once training epoch ``epoch`` (0-based) has ended and its checkpoints
    were written, before the next epoch starts: time for a test to interrupt the run between
    epochs. Not in ``on_train_epoch_end``: Lightning's ModelCheckpoint saves there only after
    every other callback. A run resumed after that epoch does not pause. It draws no random
    numbers and changes nothing of the run: the results are those of the run without it."""

    def __init__(self, seconds: float, epoch: int = 0) -> None:
        self.seconds = seconds
        self.epoch = epoch
        self._ended = False

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ended = trainer.current_epoch == self.epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._ended:
            self._ended = False
            time.sleep(self.seconds)


class KillAfterEpochOnce(KillAfterEpoch):
    """:class:`KillAfterEpoch`, the first time only: the kill leaves the file ``marker``, and
    a run that finds it trains on. The same command run twice is then a job killed and requeued
    (both attempts with the same overrides, as Slurm's requeue starts them)."""

    def __init__(self, epoch: int, marker: str) -> None:
        super().__init__(epoch)
        self.marker = Path(marker)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAtBatch(L.Callback):
    """Send ``signal_name`` (``USR2``: Slurm's warning before a time limit, as submitit asks for
    it) to this process as training batch ``batch`` of epoch ``epoch`` (both 0-based) starts:
    the handler runs while that batch trains, in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int, signal_name: str = "USR2") -> None:
        self.epoch = epoch
        self.batch = batch
        self.signum = signal.Signals[f"SIG{signal_name}"]

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), self.signum)


class SlowFirstAttempt(L.Callback):
    """Sleep ``seconds`` after each training batch of a Slurm job's first attempt (a Slurm job,
    ``SLURM_JOB_ID``, without ``SLURM_RESTART_COUNT``, which Slurm sets in a requeued job): the
    job is still in its first epoch when its time-limit warning comes, its requeued attempt and
    runs outside Slurm go at full speed. It draws no random numbers and changes nothing of the
    run but its duration."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object,
        batch_idx: int,
    ) -> None:  # fmt: skip
        first_attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0")) == 0
        if "SLURM_JOB_ID" in os.environ and first_attempt:
            time.sleep(self.seconds)


class RecordProcesses(L.Callback):
    """Each process writes what it saw of the distributed run when fitting started (its rank,
    the world size, Lightning's cluster environment, Slurm's task and node ids) to
    ``directory``, one JSON file per rank: the test's evidence of who made the ranks."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seen = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "num_nodes": trainer.num_nodes,
            "cluster_environment": type(trainer.strategy.cluster_environment).__name__,
            "slurm_procid": os.environ.get("SLURM_PROCID"),
            "slurm_nodeid": os.environ.get("SLURM_NODEID"),
            "node_rank": trainer.node_rank,
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "pid": os.getpid(),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"rank{trainer.global_rank}.json").write_text(json.dumps(seen))
