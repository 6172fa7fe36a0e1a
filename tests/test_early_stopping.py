"""``callbacks=early_stopping``: a run whose optimised metric stops improving ends at the epoch its
patience implies, and is tested as usual."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from rolefusion.commands.train import train

# An F1 cannot rise by 1.0: the first validation sets the best, and no later one beats it.
NEVER_BETTER = "callbacks.early_stopping.min_delta=1.0"


def last_checkpoint(cfg: DictConfig) -> dict:
    path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.mark.parametrize("patience", [1, 3])
def test_a_run_without_a_new_best_stops_after_its_patience(
    compose_train: Callable[..., DictConfig], patience: int
) -> None:
    cfg = compose_train("callbacks=early_stopping", f"callbacks.early_stopping.patience={patience}",
                        NEVER_BETTER, "trainer.max_epochs=10", "logger=none")  # fmt: skip
    metrics = train(cfg)
    last = last_checkpoint(cfg)
    assert last["epoch"] == patience  # epoch 0 set the best; `patience` epochs without one
    assert last["global_step"] == (patience + 1) * 4  # 4 steps an epoch
    written = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert "test/f1" in metrics and written["metrics"] == metrics


def test_early_stopping_is_off_by_default(compose_train: Callable[..., DictConfig]) -> None:
    cfg = compose_train("trainer.max_epochs=3", "logger=none")
    assert "early_stopping" not in cfg.callbacks
    train(cfg)
    assert last_checkpoint(cfg)["epoch"] == 2  # every epoch
