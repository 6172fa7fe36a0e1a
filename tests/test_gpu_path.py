"""The GPU path's switches, checked where they can be on a CPU: what ``trainer=gpu`` and
``trainer=ddp`` turn on, and that channels-last and compiling change no number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from rolefusion.commands.evaluate import evaluate
from rolefusion.commands.train import train

from test_classifier import build, tiny_batch


@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_the_gpu_trainers_turn_on_bf16_pinned_memory_and_channels_last(compose_train, trainer):
    cfg = compose_train(f"trainer={trainer}")
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.data.pin_memory is True and cfg.model.channels_last is True
    assert cfg.data.persistent_workers is True
    if trainer == "ddp":
        assert cfg.trainer.strategy == "ddp" and cfg.trainer.devices == -1


def test_the_cpu_trainer_keeps_them_off(compose_train):
    cfg = compose_train()
    assert cfg.data.pin_memory is False and cfg.model.channels_last is False
    assert cfg.model.compile is False


def test_channels_last_changes_the_layout_and_not_the_logits(compose_train):
    plain = build(compose_train, "channel").eval()
    cfg = compose_train("model/fusion=channel", "model.dim=32", "model.channels_last=true")
    nhwc = instantiate(
        cfg.model, optimizer=None, class_names=["a", "b", "c"], vocab_size=40, pad_id=0
    ).eval()
    nhwc.load_state_dict(plain.state_dict())
    convolutions = [m.weight for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(
        w.is_contiguous(memory_format=torch.channels_last) for w in convolutions
    )
    batch = tiny_batch()
    with torch.no_grad():
        assert torch.allclose(nhwc(batch), plain(batch), atol=1e-5)


@pytest.mark.slow
def test_a_compiled_run_trains_and_its_checkpoint_evaluates_uncompiled(compose_train):
    cfg = compose_train("model.compile=true", "trainer.max_epochs=1", "logger=none")
    metrics = train(cfg)
    written = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    again = evaluate(written["best_checkpoint"], "test")
    assert again["metrics"]["test/f1"] == pytest.approx(metrics["test/f1"], abs=1e-6)
