"""A run directory is a unit of work: finished runs are not redone, interrupted ones resume."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from rolefusion.train import RunDirectoryConflict, train


def test_an_interrupted_run_resumes_from_its_last_checkpoint(
    compose_train: Callable[..., DictConfig], caplog: pytest.LogCaptureFixture
) -> None:
    first = compose_train("trainer.max_epochs=1")
    train(first)
    run = Path(first.paths.output_dir)
    (run / "metrics.json").unlink()  # as if killed after the epoch's checkpoint
    with caplog.at_level(logging.INFO):
        train(compose_train("trainer.max_epochs=2"))
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in caplog.text
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 2 * 4  # 4 steps an epoch: the second ran on top of the first
    assert json.loads((run / "metrics.json").read_text())["metrics"]["val/f1_best"] > 0


def test_a_finished_run_is_not_trained_again(
    compose_train: Callable[..., DictConfig], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = compose_train("debug=fast")
    metrics = train(cfg)
    with caplog.at_level(logging.INFO):
        assert train(cfg) == metrics
    assert "not training again" in caplog.text


def test_a_run_directory_of_another_configuration_is_refused(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("debug=fast")
    run = Path(cfg.paths.output_dir)
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"metrics": {}, "overrides": ["seed=7"]}))
    with pytest.raises(RunDirectoryConflict, match=r"other overrides \['seed=7'\]"):
        train(cfg)
