"""A checkpoint the moment Slurm warns that a job is about to end (time limit, pre-emption).

Slurm sends the warning signal (``sbatch --signal=USR2@<signal_delay_s>``, which submitit asks
for) some seconds before it stops a job. submitit's handler for it requeues the job and exits at
once, wherever Python happens to be: everything trained since the last epoch's ``last.ckpt`` is
lost. :class:`PreemptionCheckpoint` takes the signal first. Its handler only notes it; at the end
of the training batch under way, between two optimizer steps, the callback writes ``last.ckpt``
and then hands the signal on to the handler it displaced (submitit's requeues the job and exits;
the default action ends the process). The requeued job resumes from that checkpoint, so only the
batch under way when the signal came is trained again.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L

log = logging.getLogger(__name__)

Handler = Any
"""What ``signal.getsignal`` returns: a callable, ``SIG_DFL``, ``SIG_IGN`` or ``None``."""


class PreemptionCheckpoint(L.Callback):
    """On ``signal_name``, save ``path`` at the end of the current training batch, then let the
    previous handler of that signal act.

    Installed when fitting is set up, before Lightning registers its own handlers: Lightning's
    Slurm auto-requeue (an ``hpc_ckpt_*.ckpt`` and ``scontrol requeue`` on its requeue signal)
    leaves a signal alone that already has a handler, so on this signal only this callback acts,
    and submitit once it has saved. In a multi-process run every rank saves at the same batch:
    whether any rank got the signal is agreed on after each batch (one boolean all-reduce).
    """

    def __init__(self, path: str, signal_name: str = "USR2") -> None:
        try:
            self.signum = signal.Signals[f"SIG{signal_name.upper().removeprefix('SIG')}"]
        except KeyError:
            raise ValueError(
                f"callbacks.preemption.signal_name: no signal {signal_name!r}; submitit's is USR2 "
                "(or what SUBMITIT_PREEMPT_SIGNAL names)"
            ) from None
        if self.signum in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError(
                f"callbacks.preemption.signal_name: {signal_name} cannot be caught; Slurm's "
                "warning signal is the one of sbatch --signal (submitit's: USR2)"
            )
        self.path = Path(path)
        self._previous: Handler = None
        self._installed = False
        self._received = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not _in_main_thread():
            return
        self._previous = signal.getsignal(self.signum)
        signal.signal(self.signum, self._note)
        self._installed = True
        self._received = False

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self._installed:
            self._received = True  # nothing else: this may be the middle of an optimizer step
        else:  # fitting is over; Lightning's teardown after an error may have put this back
            self._hand_on()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        received = self._received
        if trainer.world_size > 1:
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        if not received:
            return
        trainer.save_checkpoint(self.path)
        log.info(
            "%s: saved %s at global step %d (epoch %d, batch %d of the epoch); handing the signal "
            "on", self.signum.name, self.path, trainer.global_step, trainer.current_epoch,
            batch_idx,
        )  # fmt: skip
        self._received = False
        self._hand_on()

    def _hand_on(self) -> None:
        """What the displaced handler would have done on the signal: submitit's requeues the
        job and exits (``SystemExit``); the default action ends the process; ``SIG_IGN``,
        nothing (training goes on, and a later signal saves again)."""
        previous = self._previous
        if callable(previous):
            previous(self.signum, None)
        elif previous == signal.SIG_DFL:
            self._uninstall()
            os.kill(os.getpid(), self.signum)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._uninstall()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._uninstall()

    def _uninstall(self) -> None:
        if self._installed and _in_main_thread():
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(self.signum, previous)
            self._installed = False


def _in_main_thread() -> bool:
    """Signal handlers can only be set from the main thread (not in a ``ddp_spawn`` worker's
    thread, nor in a test runner's)."""
    return threading.current_thread() is threading.main_thread()
