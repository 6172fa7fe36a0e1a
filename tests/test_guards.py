"""Guards: a diverging run stops at its first non-finite loss with its last good checkpoint
intact, and every run records what it was made with."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.runs.callbacks import NonFiniteLossError, NonFiniteLossGuard


def test_a_diverging_run_stops_at_the_first_non_finite_loss(
    compose_train: Callable[..., DictConfig],
) -> None:
    # A checkpoint after every step, so that there is a last good one before the divergence.
    cfg = compose_train("optimizer.lr=1e4", "trainer.max_epochs=3", "scheduler=none",
                        "+callbacks.model_checkpoint.every_n_train_steps=1",
                        "callbacks.model_checkpoint.monitor=null")  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"at global step \d+ \(epoch \d, batch \d+"):
        train(cfg)
    checkpoints = list((Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt"))
    assert checkpoints, "the run diverged before its first checkpoint: nothing to check"
    for path in checkpoints:  # each loads, safely, and holds only finite numbers
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        weights = {k: v for k, v in state.items() if k.startswith("net.")}  # not metric states
        assert weights and all(torch.isfinite(v).all() for v in weights.values())


def test_every_run_records_seed_commit_and_versions(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("debug=fast", "seed=7")
    train(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "provenance.json").read_text())
    assert record["seed"] == 7
    assert record["packages"]["torch"] == torch.__version__.split("+")[0] or record["packages"][
        "torch"
    ].startswith(torch.__version__.split("+")[0])
    assert record["git"] is None or len(record["git"]["commit"]) == 40


def test_pruning_reaches_its_target_sparsity_and_reports_it(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("callbacks=pruning", "callbacks.pruning.sparsity=0.75",
                        "trainer.max_epochs=2", "logger=none")  # fmt: skip
    metrics = train(cfg)
    assert metrics["pruning/sparsity"] == pytest.approx(0.75, abs=0.01)
    assert "test/f1" in metrics
    recorded = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert recorded["metrics"]["pruning/sparsity"] == metrics["pruning/sparsity"]


HOST_READS = ("__bool__", "item", "tolist", "__float__", "__int__", "__index__", "numpy")
"""The ways a tensor's value reaches Python: each one a host sync on an accelerator."""


def test_the_non_finite_guard_costs_two_host_syncs_a_step_whatever_the_model_size(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One sync for all the gradients before each optimizer step, one for the loss and the
    weights after it (the guard's docstring): not one per parameter tensor."""
    calls = {"steps": 0, "batches": 0, "all_finite": 0, "host_reads": 0}
    tensors: list[int] = []
    inside = [False]

    def counted(name: str, method: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            if inside[0]:
                calls[name] += 1
            return method(*args, **kwargs)

        return wrapper

    def hook(name: str, method: Callable) -> Callable:
        def wrapper(self, trainer, pl_module, *args, **kwargs):
            calls[name] += 1
            tensors.append(len(list(pl_module.parameters())))
            inside[0] = True
            try:
                return method(self, trainer, pl_module, *args, **kwargs)
            finally:
                inside[0] = False

        return wrapper

    for read in HOST_READS:
        monkeypatch.setattr(torch.Tensor, read, counted("host_reads", getattr(torch.Tensor, read)))
    monkeypatch.setattr(
        NonFiniteLossGuard,
        "_all_finite",
        staticmethod(counted("all_finite", NonFiniteLossGuard._all_finite)),
    )
    monkeypatch.setattr(
        NonFiniteLossGuard,
        "on_before_optimizer_step",
        hook("steps", NonFiniteLossGuard.on_before_optimizer_step),
    )
    monkeypatch.setattr(
        NonFiniteLossGuard,
        "on_train_batch_end",
        hook("batches", NonFiniteLossGuard.on_train_batch_end),
    )

    train(compose_train("trainer.max_epochs=1", "test=false", "logger=none"))
    assert calls["steps"] == calls["batches"] == 64 // 16  # 64 training examples, batches of 16
    assert min(tensors) > 20  # a per-tensor check would read many flags a step
    syncs = 2 * calls["steps"]
    assert (calls["all_finite"], calls["host_reads"]) == (syncs, syncs)
