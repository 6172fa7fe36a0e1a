"""Checkpoints are written whole or not at all, and a file that is not whole (empty, cut short)
gets the same named refusal from every command that is given one."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from rolefusion.commands.evaluate import evaluate
from rolefusion.commands.predict import run as predict_command
from rolefusion.commands.train import train
from rolefusion.runs import checkpoint_files
from rolefusion.runs.checkpoint_files import (
    AtomicCheckpointIO,
    CheckpointWriteError,
    NotARolefusionCheckpoint,
)

from conftest import compose_command, compose_config


@pytest.fixture
def broken_checkpoints(compose_train: Callable[..., DictConfig]) -> dict[str, Path]:
    """An empty and a truncated copy of a real checkpoint, inside its run directory."""
    cfg = compose_train("trainer.max_epochs=1", "logger=none")
    train(cfg)
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    whole = (checkpoints / "last.ckpt").read_bytes()
    (checkpoints / "empty.ckpt").write_bytes(b"")
    (checkpoints / "truncated.ckpt").write_bytes(whole[: len(whole) // 2])
    return {"an empty file": checkpoints / "empty.ckpt",
            "no complete zip archive": checkpoints / "truncated.ckpt"}  # fmt: skip


def test_an_empty_or_truncated_checkpoint_is_refused_by_name_everywhere(
    broken_checkpoints: dict[str, Path], tmp_path: Path, data_dir: Path
) -> None:
    for reason, path in broken_checkpoints.items():
        refusal = f"{path}: refused: not a rolefusion checkpoint ("
        with pytest.raises(NotARolefusionCheckpoint) as by_eval:
            evaluate(str(path))
        other_run = compose_config(tmp_path / "other", data_dir, f"ckpt_path={path}")
        with pytest.raises(NotARolefusionCheckpoint) as by_train:
            train(other_run)
        predict_cfg = compose_command("predict", f"ckpt_path={path}", "image=x.png", "text=hi")
        with pytest.raises(NotARolefusionCheckpoint) as by_predict:
            predict_command(predict_cfg)
        for message in (str(by_eval.value), str(by_train.value), str(by_predict.value)):
            assert refusal in message and reason in message, message[-1000:]


def test_a_truncated_last_checkpoint_is_not_resumed(
    broken_checkpoints: dict[str, Path], compose_train: Callable[..., DictConfig]
) -> None:
    cfg = compose_train("trainer.max_epochs=1", "logger=none")
    run = Path(cfg.paths.output_dir)
    (run / "metrics.json").unlink()  # as if the run had been killed
    (run / "checkpoints" / "last.ckpt").write_bytes(
        broken_checkpoints["an empty file"].read_bytes()
    )
    with pytest.raises(
        NotARolefusionCheckpoint, match="Delete it to train this run from the start"
    ):
        train(cfg)


def test_a_failed_write_leaves_the_previous_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"weights": torch.ones(3)}, path)
    before = path.read_bytes()

    def disk_full(payload: object, file) -> None:
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_files.torch, "save", disk_full)
    with pytest.raises(CheckpointWriteError, match=rf"{path}: checkpoint not written \(No space "
                       r"left on device\); [\d,.]+ MB free") as raised:  # fmt: skip
        writer.save_checkpoint({"weights": torch.zeros(3)}, path)
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_the_trainer_of_every_run_writes_checkpoints_atomically(
    compose_train: Callable[..., DictConfig],
) -> None:
    trainer = instantiate(compose_train().trainer)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
