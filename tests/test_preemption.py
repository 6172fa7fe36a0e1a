"""Slurm's warning signal before a time limit: ``last.ckpt`` at once, then submitit's requeue.

Here in one process, with a stand-in for submitit's handler; ``test_slurm.py`` has the real
time limit on the local Slurm cluster."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.runs.preemption import PreemptionCheckpoint

from conftest import compose_config

SIGNAL_AT = ["+callbacks.signal._target_=interruptions.SignalAtBatch",
             "+callbacks.signal.epoch=1", "+callbacks.signal.batch=1"]  # fmt: skip
"""USR2 as batch 1 of epoch 1 starts; with 4 batches an epoch, after 5 optimizer steps."""


class Requeued(BaseException):
    """What submitit's handler does after requeueing: leave (it raises ``SystemExit``)."""


class StandInForSubmitit:
    """Installed for USR2 as submitit installs its handler before the job's function runs:
    records what ``checkpoint`` held when called, and leaves."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.seen: list[dict] = []

    def __call__(self, signum: int, frame: object) -> None:
        self.seen.append(torch.load(self.checkpoint, map_location="cpu", weights_only=True))
        raise Requeued


@pytest.fixture
def submitit_handler(tmp_path: Path) -> Iterator[StandInForSubmitit]:
    handler = StandInForSubmitit(tmp_path / "run" / "checkpoints" / "last.ckpt")
    previous = signal.signal(signal.SIGUSR2, handler)
    try:
        yield handler
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_the_warning_signal_saves_last_ckpt_mid_epoch_before_submitit_requeues(
    compose_train: Callable[..., DictConfig],
    submitit_handler: StandInForSubmitit,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    cfg = compose_train("trainer.max_epochs=3", "logger=none", *SIGNAL_AT)
    run = Path(cfg.paths.output_dir)
    assert submitit_handler.checkpoint == run / "checkpoints" / "last.ckpt"
    with pytest.raises(Requeued):
        train(cfg)
    # Saved at the end of the batch under way, mid-epoch, before submitit was let act; once.
    (saved,) = submitit_handler.seen
    assert saved["global_step"] == 4 + 2  # epoch 0, then batches 0 and 1 of epoch 1
    assert saved["epoch"] == 1
    assert not (run / "metrics.json").exists()
    # Once the run has ended, the signal goes straight to submitit again.
    with pytest.raises(Requeued):
        os.kill(os.getpid(), signal.SIGUSR2)
    assert len(submitit_handler.seen) == 2

    # The requeued job: the same configuration, resumed from that checkpoint mid-epoch, goes on
    # with the rest of that epoch's order and ends as the run never interrupted: the same
    # steps, weights and scores.
    train(compose_train("trainer.max_epochs=3", "logger=none", "ckpt_path=last"))
    straight = compose_config(tmp_path / "straight", data_dir, "trainer.max_epochs=3",
                              "logger=none")  # fmt: skip
    train(straight)
    runs = (Path(straight.paths.output_dir), run)
    weights = [
        torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        for d in runs
    ]
    assert weights[0]["global_step"] == weights[1]["global_step"] == 3 * 4
    for key, value in weights[0]["state_dict"].items():
        assert torch.equal(value, weights[1]["state_dict"][key]), key
    expected, resumed = (json.loads((d / "metrics.json").read_text())["metrics"] for d in runs)
    for name in ("val/f1_best", "test/f1", "test/acc", "test/loss"):
        assert resumed[name] == expected[name], name


def test_a_signal_name_that_is_not_a_signal_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"callbacks\.preemption\.signal_name: no signal 'USR3'"):
        PreemptionCheckpoint(str(tmp_path / "last.ckpt"), signal_name="USR3")
    with pytest.raises(ValueError, match=r"callbacks\.preemption\.signal_name: KILL cannot be"):
        PreemptionCheckpoint(str(tmp_path / "last.ckpt"), signal_name="KILL")
