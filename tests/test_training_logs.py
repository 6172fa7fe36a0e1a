"""What a run writes to its loggers beside the metrics: the learning rate whenever a scheduler
changes it, and TensorBoard's ``hp_metric`` as the metric a sweep optimises."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from rolefusion.commands.train import train

EPOCHS = 3


def csv_rows(cfg: DictConfig) -> list[dict[str, str]]:
    with open(Path(cfg.paths.output_dir) / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_the_scheduled_learning_rate_is_logged_each_epoch(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("scheduler=cosine", f"trainer.max_epochs={EPOCHS}", "optimizer.lr=0.002")
    train(cfg)
    logged = [float(row["train/lr"]) for row in csv_rows(cfg) if row.get("train/lr")]
    # cosine annealing to 0 over the run, read as each epoch starts
    expected = [0.001 * (1 + math.cos(math.pi * epoch / EPOCHS)) for epoch in range(EPOCHS)]
    assert logged == pytest.approx(expected)


def test_a_constant_learning_rate_or_no_logger_logs_none(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("scheduler=none", "trainer.max_epochs=1")
    train(cfg)
    assert "train/lr" not in csv_rows(cfg)[0]
    train(
        compose_train(
            "logger=none", "trainer.max_epochs=1", "paths.output_dir=${paths.root_dir}/quiet"
        )
    )  # no error


def test_tensorboard_hp_metric_is_the_optimised_metric(
    compose_train: Callable[..., DictConfig],
) -> None:
    pytest.importorskip("tensorboard", reason="pip install 'rolefusion[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg = compose_train("logger=tensorboard", f"trainer.max_epochs={EPOCHS}")
    assert cfg.optimized_metric == "val/f1_best"
    train(cfg)
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard"))
    events.Reload()
    optimised = [(e.step, e.value) for e in events.Scalars("val/f1_best")]
    hp_metric = [(e.step, e.value) for e in events.Scalars("hp_metric")]
    assert len(optimised) == EPOCHS
    assert hp_metric == optimised  # the same values at the same steps; never Lightning's -1
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]
    ).experiment
    assert [info.name.tag for info in experiment.metric_infos] == ["hp_metric"]
