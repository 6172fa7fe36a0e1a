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
from rolefusion.models.module import RoleFusionModule
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


def _finite_checkpoints(run_dir: Path) -> list[dict]:
    """Every checkpoint on disk, each asserted to load safely and hold only finite weights."""
    checkpoints = []
    for path in (run_dir / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        weights = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
        assert weights and all(torch.isfinite(v).all() for v in weights.values()), path
        checkpoints.append(checkpoint)
    return checkpoints


@pytest.mark.parametrize(("accumulate", "step"), [(1, 2), (2, 1)])
def test_a_nan_loss_is_caught_and_named_with_its_step_and_batch(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, accumulate: int,
    step: int,
) -> None:  # fmt: skip
    """With two batches a step, the losses wait for the step's one check, which still names
    the batch."""
    training_step = RoleFusionModule.training_step

    def nan_at_batch_2(self, batch, batch_idx):
        loss = training_step(self, batch, batch_idx)
        return loss * float("nan") if batch_idx == 2 else loss

    monkeypatch.setattr(RoleFusionModule, "training_step", nan_at_batch_2)
    cfg = compose_train("trainer.max_epochs=1", "logger=none",
                        f"+trainer.accumulate_grad_batches={accumulate}")  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=rf"training loss is nan at global step {step} "
                       r"\(epoch 0, batch 2 of the epoch\)"):  # fmt: skip
        train(cfg)


def test_a_nan_gradient_with_a_finite_loss_is_caught_and_named(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    def spoil_a_gradient(self):
        if self.trainer.global_step == 1:
            name, parameter = [(n, p) for n, p in self.named_parameters() if p.grad is not None][3]
            parameter.grad.view(-1)[0] = float("nan")
            spoilt.append(name)

    spoilt: list[str] = []
    monkeypatch.setattr(RoleFusionModule, "on_after_backward", spoil_a_gradient)
    cfg = compose_train("trainer.max_epochs=1", "logger=none")
    with pytest.raises(NonFiniteLossError, match=r"at global step 1 \(epoch 0, batch 1 ") as error:
        train(cfg)
    assert f"the gradient of {spoilt[0]} is not finite" in str(error.value)


def test_weights_that_overflow_never_reach_a_checkpoint(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finite losses and gradients, then a weight overflows in the last step of the second
    epoch: no later loss shows it, so the check before the checkpoint must, and the first
    epoch's checkpoints stay as they were."""

    def overflow_at_the_end_of_epoch_1(self, outputs, batch, batch_idx):
        if self.current_epoch == 1 and batch_idx == self.trainer.num_training_batches - 1:
            name, parameter = next((n, p) for n, p in self.named_parameters() if p.requires_grad)
            with torch.no_grad():
                parameter.view(-1)[0] = float("inf")
            spoilt.append(name)

    spoilt: list[str] = []
    monkeypatch.setattr(RoleFusionModule, "on_train_batch_end", overflow_at_the_end_of_epoch_1)
    cfg = compose_train("trainer.max_epochs=3", "logger=none")
    with pytest.raises(NonFiniteLossError, match="before a checkpoint was written") as error:
        train(cfg)
    assert f"{spoilt[0]} was found no longer finite" in str(error.value)
    assert "since global step 4, when they were last checked" in str(error.value)
    checkpoints = _finite_checkpoints(Path(cfg.paths.output_dir))
    assert checkpoints and {c["epoch"] for c in checkpoints} == {0}


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_non_finite_guard_costs_one_host_sync_a_step_whatever_the_model_size(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, accumulate: int
) -> None:
    """One sync for every loss and gradient at each optimizer step, one for the weights before
    each checkpoint and when training ends (the guard's docstring): not one per parameter
    tensor, nor per batch."""
    calls = {"on_before_optimizer_step": 0, "on_save_checkpoint": 0, "on_train_end": 0,
             "all_finite": 0, "host_reads": 0}  # fmt: skip
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
    for name in ("on_before_optimizer_step", "on_save_checkpoint", "on_train_end"):
        monkeypatch.setattr(NonFiniteLossGuard, name, hook(name, getattr(NonFiniteLossGuard, name)))

    train(compose_train("trainer.max_epochs=2", "test=false", "logger=none",
                        f"+trainer.accumulate_grad_batches={accumulate}"))  # fmt: skip
    batches = 64 // 16  # 64 training examples, batches of 16
    assert calls["on_before_optimizer_step"] == 2 * batches // accumulate
    assert calls["on_save_checkpoint"] >= 2  # last.ckpt each epoch, the best when it improved
    assert calls["on_train_end"] == 1
    assert min(tensors) > 20  # a per-tensor check would read many flags a step
    syncs = calls["on_before_optimizer_step"] + calls["on_save_checkpoint"] + 1
    assert (calls["all_finite"], calls["host_reads"]) == (syncs, syncs)
