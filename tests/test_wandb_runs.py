"""W&B runs that match the run directories: one W&B run per directory, however often the run is
killed and requeued; named after the job's overrides; no tags unless asked; Hydra's choices in the
config. Read back from the offline run files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from rolefusion.commands.train import train
from rolefusion.config import register_configs
from rolefusion.runs.loggers import RUN_ID_FILE, WandbLogger, finish_loggers, stored_run_id
from test_wandb import records

from conftest import CONF_DIR, TINY_DATA


@contextmanager
def hydra_job(*overrides: str, run_dir: Path | None = None) -> Iterator[DictConfig]:
    """``train.yaml`` composed from ``overrides`` with Hydra's own config set, as inside a job
    (what the resolvers of names and choices read); the job's config, ``hydra`` left out, runs
    in ``run_dir`` as Hydra's ``run_job`` would."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir or Path.cwd())
    HydraConfig.instance().set_config(cfg)
    try:
        task = cfg.copy()
        with open_dict(task):
            del task["hydra"]
        yield task
    finally:
        HydraConfig.instance().cfg = None


def test_a_run_is_named_after_its_overrides_with_no_tags_and_its_choices_in_the_config() -> None:
    with hydra_job("model/fusion=late", "seed=2", "paths.data_dir=/data", "logger=wandb") as cfg:
        wandb = OmegaConf.to_container(cfg.logger.wandb, resolve=True)
    assert wandb["name"] == "fusion=late seed=2"  # paths and the logger say nothing of the run
    assert wandb["tags"] == []
    choices = wandb["config"]["choices"]
    assert choices["model/fusion"] == "late" and choices["data"] == "roleplay_scenes"
    assert not [group for group in choices if group.startswith("hydra")]
    with hydra_job("logger=wandb") as cfg:
        assert cfg.logger.wandb.name == "train"  # no overrides: the task's name
    with hydra_job("logger=wandb", "logger.wandb.name=mine", "tags=[ablation]") as cfg:
        assert (cfg.logger.wandb.name, list(cfg.logger.wandb.tags)) == ("mine", ["ablation"])


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")


@pytest.mark.usefixtures("offline")
def test_a_fresh_run_directory_gets_a_fresh_wandb_id_and_keeps_it(tmp_path: Path) -> None:
    ids = []
    for run_dir in (tmp_path / "a", tmp_path / "b", tmp_path / "a"):
        logger = WandbLogger(save_dir=str(run_dir), project="ids")
        ids.append(logger.experiment.id)
        finish_loggers([logger])
        assert stored_run_id(run_dir) == ids[-1]
    assert ids[0] != ids[1] and ids[2] == ids[0]
    explicit = WandbLogger(save_dir=str(tmp_path / "a"), project="ids", id="chosen1")
    assert explicit.experiment.id == "chosen1"  # an explicit id wins, and is the one kept
    finish_loggers([explicit])
    assert stored_run_id(tmp_path / "a") == "chosen1"


@pytest.mark.usefixtures("offline")
def test_a_job_after_a_failed_one_starts_its_own_wandb_run(tmp_path: Path) -> None:
    failed = WandbLogger(save_dir=str(tmp_path / "0"), project="sweep")
    failed_id = failed.experiment.id  # and never finished: the job raised
    logger = WandbLogger(save_dir=str(tmp_path / "1"), project="sweep")
    assert logger.experiment.id != failed_id
    finish_loggers([logger])
    assert stored_run_id(tmp_path / "1") == logger.version != failed_id


def run_record(folder: Path) -> dict:
    """The ``run`` record of an offline W&B run folder: id, name, tags, the config it began with."""
    [run_file] = folder.glob("run-*.wandb")
    return next(r["run"] for r in records(run_file) if r["type"] == "run")


def logged_steps(folder: Path) -> list[int]:
    [run_file] = folder.glob("run-*.wandb")
    return [
        r["history"]["item"]["trainer/global_step"]
        for r in records(run_file)
        if r["type"] == "history" and "trainer/global_step" in r["history"]["item"]
    ]


@pytest.mark.slow
def test_a_killed_and_requeued_run_logs_on_into_one_wandb_run(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    for name in [n for n in os.environ if n.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WANDB_MODE", "offline")
    tests = Path(__file__).parent
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])
    }
    overrides = ["model/fusion=late", "seed=2", *TINY_DATA, "trainer.max_epochs=2", "test=false",
                 "logger=wandb", f"paths.data_dir={data_dir}",
                 "+callbacks.kill._target_=interruptions.KillAfterEpochOnce",
                 "+callbacks.kill.epoch=1",
                 f"+callbacks.kill.marker={tmp_path / 'killed'}"]  # fmt: skip
    killed = subprocess.run(
        [sys.executable, "-m", "rolefusion.train", *overrides, f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run_id = stored_run_id(run)
    id_file = (run / RUN_ID_FILE).read_bytes()
    # Requeued: the same job again, in this process (the kill needs a process of its own).
    with hydra_job(*overrides, run_dir=run) as cfg:
        train(cfg)
    assert (run / "metrics.json").is_file()
    assert (run / RUN_ID_FILE).read_bytes() == id_file

    folders = sorted(run.glob("wandb/offline-run-*"))  # offline-run-<date>_<time>-<id>
    assert len(folders) == 2  # one per attempt, both of the one W&B run
    assert {folder.name.rsplit("-", 1)[1] for folder in folders} == {run_id}
    # The killed attempt's transaction log is lost to SIGKILL (wandb buffers it); the requeued one
    # logs into the same run, from its checkpoint (epoch 1) on rather than from step 0.
    record = run_record(folders[1])
    assert record["run_id"] == run_id
    assert record["display_name"].startswith("fusion=late seed=2 num_train=64")
    assert not record.get("tags")
    assert record["config"]["update"]["choices"]["model/fusion"] == "late"
    assert min(logged_steps(folders[1])) > 0
