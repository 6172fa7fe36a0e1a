"""A run directory is a unit of work: finished runs are not redone, interrupted ones resume."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.runs.directory import RunDirectoryConflict

from conftest import TINY_DATA, compose_config


class RestoreProbe(L.Callback):
    """Saves to ``path``, as training starts (once Lightning has restored any checkpoint), the
    loop counters, each optimizer state's step count and the module's state: what a resumed run
    starts from. Reads only: the run goes on as it would without it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        (optimizer,) = trainer.optimizers
        torch.save(
            {
                "global_step": trainer.global_step,
                "epoch": trainer.current_epoch,
                "optimizer_steps": sorted({int(s["step"]) for s in optimizer.state.values()}),
                "state_dict": {k: v.clone() for k, v in pl_module.state_dict().items()},
            },
            self.path,
        )


def probe(path: Path) -> list[str]:
    """The overrides that add a :class:`RestoreProbe` saving to ``path``."""
    return [f"+callbacks.restore_probe._target_={__name__}.RestoreProbe",
            f"+callbacks.restore_probe.path={path}"]  # fmt: skip


def assert_started_from(record_path: Path, checkpoint: dict) -> None:
    """The run that wrote ``record_path`` (a :class:`RestoreProbe`'s) started training from
    ``checkpoint``, an end-of-epoch one: its step and epoch counters, Adam's step counts and
    every weight and buffer; a run that trained again from scratch starts from zero."""
    started = torch.load(record_path, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] > 0
    assert started["global_step"] == checkpoint["global_step"]
    assert started["epoch"] == checkpoint["epoch"] + 1  # the epoch after the saved one
    saved_steps = {int(s["step"]) for s in checkpoint["optimizer_states"][0]["state"].values()}
    assert started["optimizer_steps"] == sorted(saved_steps) == [checkpoint["global_step"]]
    assert started["state_dict"].keys() == checkpoint["state_dict"].keys()
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(started["state_dict"][key], value), key


def test_an_interrupted_run_resumes_from_its_last_checkpoint(
    compose_train: Callable[..., DictConfig], caplog: pytest.LogCaptureFixture
) -> None:
    first = compose_train("trainer.max_epochs=1")
    train(first)
    run = Path(first.paths.output_dir)
    (run / "metrics.json").unlink()  # as if killed after the epoch's checkpoint
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    record = run.parent / "restored.pt"
    with caplog.at_level(logging.INFO):
        train(compose_train("trainer.max_epochs=2", "ckpt_path=last", *probe(record)))
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in caplog.text
    assert_started_from(record, saved)
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


def run_train(
    tmp_path: Path, data_dir: Path, run_dir: Path, *overrides: str, epochs: int = 3,
    logger: str = "none",
) -> subprocess.CompletedProcess:  # fmt: skip
    tests = Path(__file__).parent
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])
    }
    command = [sys.executable, "-m", "rolefusion.train", *TINY_DATA, f"trainer.max_epochs={epochs}",
               f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}", f"logger={logger}",
               *overrides]  # fmt: skip
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def resume_here(
    tmp_path: Path, data_dir: Path, run_dir: Path, *overrides: str, epochs: int = 3,
    logger: str = "none",
) -> dict[str, float]:  # fmt: skip
    """:func:`run_train`'s configuration resumed in this process (``ckpt_path=last``): the kill
    needs a process of its own, the resume does not."""
    cfg = compose_config(tmp_path, data_dir, f"trainer.max_epochs={epochs}", f"logger={logger}",
                         f"paths.output_dir={run_dir}", "ckpt_path=last", *overrides)  # fmt: skip
    return train(cfg)


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
    assert run_train(work, data_dir, work / "run").returncode == 0
    return work / "run"


@pytest.mark.parametrize("when", KILLS)
def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(
    tmp_path: Path, data_dir: Path, straight: Path, when: str
) -> None:
    killed = tmp_path / "killed"
    kill = KILLS[when]
    assert run_train(tmp_path, data_dir, killed, *kill).returncode == -signal.SIGKILL
    assert (killed / "checkpoints" / "last.ckpt").is_file()
    assert not (killed / "metrics.json").exists()
    saved = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    record = tmp_path / "restored.pt"
    # The same directory; ckpt_path=last because the probe's overrides are not the killed run's.
    resume_here(tmp_path, data_dir, killed, *probe(record))
    assert_started_from(record, saved)  # it resumed: a fresh start would end the same here
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


KILL_AFTER_EPOCH_3 = ["+callbacks.kill._target_=interruptions.KillAfterEpoch",
                      "+callbacks.kill.epoch=3"]  # fmt: skip


def test_a_run_killed_after_epochs_without_improvement_resumes_from_its_last_epoch(
    tmp_path: Path, data_dir: Path
) -> None:
    run = tmp_path / "run"
    # lr 1e-12: the predictions, and so val/f1, never change: only epoch 0 is ever the best.
    flat = ["optimizer.lr=1e-12", "scheduler=none", "trainer.log_every_n_steps=1"]
    killed = run_train(tmp_path, data_dir, run, *flat, *KILL_AFTER_EPOCH_3, epochs=5, logger="csv")
    assert killed.returncode == -signal.SIGKILL
    best = [p.name for p in (run / "checkpoints").glob("epoch*.ckpt")]
    assert len(best) == 1 and best[0].startswith("epoch000"), best
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["epoch"] == 2  # epochs 0-2 saved; 3 was killed before its checkpoint
    record = tmp_path / "restored.pt"
    resume_here(tmp_path, data_dir, run, *flat, *probe(record), epochs=5, logger="csv")
    assert_started_from(record, saved)
    with (run / "csv" / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    step_rows = [int(row["step"]) for row in rows if row.get("train/loss_step")]
    assert step_rows == list(range(5 * 4))  # every step once: the killed epoch's rows redone
    epoch_rows = [int(row["epoch"]) for row in rows if row.get("val/f1")]
    assert epoch_rows == list(range(5))  # the epochs before the resume kept


def test_an_interrupted_run_with_other_overrides_is_refused_and_kept(
    tmp_path: Path, data_dir: Path
) -> None:
    run = tmp_path / "run"
    killed = run_train(tmp_path, data_dir, run, *KILLS["between_epochs"])
    assert killed.returncode == -signal.SIGKILL
    kept = {name: (run / name).read_bytes() for name in ("config.yaml", "checkpoints/last.ckpt")}
    other = run_train(tmp_path, data_dir, run, *KILLS["between_epochs"], "optimizer.lr=0.5",
                      "seed=7")  # fmt: skip
    assert other.returncode != 0
    assert "RunDirectoryConflict" in other.stderr
    assert "optimizer.lr: (not set) -> 0.5" in other.stderr
    assert "seed: (not set) -> 7" in other.stderr
    assert "ckpt_path=last" in other.stderr and "hydra.run.dir" in other.stderr
    assert {name: (run / name).read_bytes() for name in kept} == kept  # nothing overwritten
