"""W&B offline: a run leaves its metrics and resolved config where wandb can read them back,
and never a secret."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.runs.loggers import wandb_api_key_configured

from conftest import TINY_DATA

SECRET = "rfsecret0123456789abcdef0123456789abcdef"


@pytest.fixture
def no_wandb_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))


def records(run_file: Path) -> list[dict]:
    wandb = shutil.which("wandb") or str(Path(__import__("sys").executable).parent / "wandb")
    out = subprocess.run([wandb, "leet", "inspect", "--json", str(run_file)], check=True,
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.usefixtures("no_wandb_login")
def test_offline_without_a_key_and_the_run_reads_back(
    compose_train: Callable[..., DictConfig],
) -> None:
    assert not wandb_api_key_configured()
    cfg = compose_train("logger=wandb", "trainer.max_epochs=1")
    metrics = train(cfg)
    [run_file] = Path(cfg.paths.output_dir).glob("wandb/offline-run-*/run-*.wandb")
    text = json.dumps(records(run_file))
    assert "test/f1" in text and "val/f1" in text
    assert f"{metrics['test/f1']:.6f}"[:6] in text
    assert "roleplay_scenes" in text  # the resolved config travelled with the run
    assert "test/confusion_matrix" in text and "test/per_class" in text


def test_the_api_key_is_never_written(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    assert wandb_api_key_configured()
    cfg = compose_train("logger=wandb", "logger.wandb.offline=true", "trainer.max_epochs=1",
                        "logger.wandb.project=secret-check")  # fmt: skip
    train(cfg)
    for path in Path(cfg.paths.output_dir).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.usefixtures("no_wandb_login")
def test_many_loggers_write_csv_wandb_and_tensorboard(
    compose_train: Callable[..., DictConfig],
) -> None:
    pytest.importorskip("tensorboard", reason="pip install 'rolefusion[tensorboard]'")
    cfg = compose_train("logger=many", "trainer.max_epochs=1")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "csv" / "metrics.csv").is_file()
    assert list(run.glob("wandb/offline-run-*/run-*.wandb"))
    assert list(run.glob("tensorboard/events.out.tfevents.*"))


def test_a_key_with_an_unreachable_server_logs_offline_and_the_run_finishes(
    tmp_path: Path, data_dir: Path
) -> None:
    # A process of its own, as a user's: wandb keeps the settings of the first run a process
    # starts, so after another test's offline run it would never try the server here.
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {
        "WANDB_API_KEY": SECRET,
        "WANDB_BASE_URL": "http://127.0.0.1:9",  # the discard port: refused
    }
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "rolefusion.train", *TINY_DATA, "trainer.max_epochs=1",
         "logger=wandb", "logger.wandb.init_timeout=5", f"paths.data_dir={data_dir}",
         f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test/f1" in json.loads((run / "metrics.json").read_text())["metrics"]
    [run_file] = run.glob("wandb/offline-run-*/run-*.wandb")
    assert "test/f1" in json.dumps(records(run_file))
    assert f"wandb sync {run}/wandb/offline-run-*" in done.stdout + done.stderr
