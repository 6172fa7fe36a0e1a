"""W&B offline: a run leaves its metrics and resolved config where wandb can read them back,
and never a secret."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.runs.loggers import wandb_api_key_configured

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
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: refused
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose_train("logger=wandb", "logger.wandb.init_timeout=5", "trainer.max_epochs=1")
    metrics = train(cfg)
    assert "test/f1" in metrics
    run = Path(cfg.paths.output_dir)
    [run_file] = run.glob("wandb/offline-run-*/run-*.wandb")
    assert "test/f1" in json.dumps(records(run_file))
    assert f"wandb sync {run}/wandb/offline-run-*" in caplog.text
