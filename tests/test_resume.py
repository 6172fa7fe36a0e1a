"""A run directory is a unit of work: finished runs are not redone, interrupted ones resume."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.runs.directory import RunDirectoryConflict

from conftest import TINY_DATA


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


def run_train(tmp_path: Path, data_dir: Path, run_dir: Path, *overrides: str) -> int:
    tests = Path(__file__).parent
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])
    }
    command = [sys.executable, "-m", "rolefusion.train", *TINY_DATA, "trainer.max_epochs=3",
               f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}", "logger=none",
               *overrides]  # fmt: skip
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=600,
                          check=False).returncode  # fmt: skip


KILLS = {
    "between_epochs": ["+callbacks.kill._target_=interruptions.KillAfterEpoch",
                       "+callbacks.kill.epoch=1"],
    "mid_epoch": ["+callbacks.kill._target_=interruptions.KillAtBatch", "+callbacks.kill.epoch=1",
                  "+callbacks.kill.batch=2"],
}  # fmt: skip


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The run never interrupted, that every killed-and-resumed run must end equal to."""
    work = tmp_path_factory.mktemp("straight")
    assert run_train(work, data_dir, work / "run") == 0
    return work / "run"


@pytest.mark.parametrize("when", KILLS)
def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(
    tmp_path: Path, data_dir: Path, straight: Path, when: str
) -> None:
    killed = tmp_path / "killed"
    kill = KILLS[when]
    assert run_train(tmp_path, data_dir, killed, *kill) == -signal.SIGKILL
    assert (killed / "checkpoints" / "last.ckpt").is_file()
    assert not (killed / "metrics.json").exists()
    assert run_train(tmp_path, data_dir, killed) == 0  # the same directory: resumes
    expected, resumed = (json.loads((run / "metrics.json").read_text())["metrics"]
                         for run in (straight, killed))  # fmt: skip
    for name in ("val/f1_best", "test/f1", "test/acc", "test/loss"):
        assert resumed[name] == expected[name], name
    weights = [
        torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        for run in (straight, killed)
    ]
    for key, value in weights[0]["state_dict"].items():
        assert torch.equal(value, weights[1]["state_dict"][key]), key
