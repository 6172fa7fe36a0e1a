"""Callbacks rolefusion adds to Lightning's."""

from __future__ import annotations

import random
from typing import Any, NoReturn

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelPruning
from torch import nn


class RandomStateCheckpoint(L.Callback):
    """Saves the random number generators' states in every checkpoint and restores them on
    resume, so that a run resumed from ``last.ckpt`` (a re-run sweep, a requeued Slurm job)
    shuffles and drops out exactly as the uninterrupted run would have: same weights, same
    metrics. Lightning restores weights, optimizer, scheduler and loop counters, but not these.
    """

    def state_dict(self) -> dict[str, Any]:
        # Tensors and plain values only: checkpoints stay loadable with weights_only=True.
        kind, keys, position, has_gauss, cached = np.random.get_state()
        states: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            states["cuda"] = torch.cuda.get_rng_state_all()
        return states

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, position, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


class NonFiniteLossGuard(L.Callback):
    """Stops training at the first non-finite loss or gradient, naming the step and the batch,
    and never lets a checkpoint be written with a non-finite weight: the checkpoints on disk
    (``last.ckpt``, the best) keep the last finite state.

    Each check costs what it needs and no more, because a per-tensor check costs a few
    percent of a small model's step (docs/performance.md, where the overhead goes):

    - **losses and gradients, at each optimizer step**: every loss since the last step (one per
      batch; ``k`` with ``accumulate_grad_batches=k``) and every gradient are reduced on the
      device by one fused ``torch._foreach_norm`` to one flag, read once: one host sync per
      optimizer step, whatever the number of parameter tensors. A NaN or infinity makes its
      norm non-finite; a norm that overflows on finite values is told apart by the exact check
      that runs only then, to name the tensor.
    - **weights and floating-point buffers, when a checkpoint is about to be written**
      (``on_save_checkpoint``, before anything reaches the disk) and once when training ends.
      Finite gradients can still overflow the weights (a huge learning rate times weight decay)
      or the normalisation statistics; a weight that does shows in the next step's loss, and
      one that does not (a running statistic; the last step of an epoch) is caught here, before
      a checkpoint could keep it. Frozen weights are left out: no step changes them.

    In a sweep the error lands in the job's ``failed.json``.
    """

    def __init__(self) -> None:
        self._batch_idx = 0
        self._losses: list[tuple[int, torch.Tensor]] = []
        """(batch of the epoch, detached loss) of each backward pass since the last step."""
        self._finite_at_step: int | None = None
        """The global step at which the weights were last checked and found finite."""
        self._parameters: list[tuple[str, nn.Parameter]] = []
        """The module's parameters, listed once an epoch: walking a module's tree each step
        costs more than the check itself, and pruning renames them only between epochs."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._losses.clear()
        self._parameters = list(pl_module.named_parameters())

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_idx = batch_idx

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        self._losses.append((self._batch_idx, loss.detach()))

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any
    ) -> None:
        losses, self._losses = self._losses, []
        gradients = [
            (name, parameter.grad)
            for name, parameter in self._parameters
            if parameter.grad is not None
        ]
        if self._all_finite([loss for _, loss in losses] + [g for _, g in gradients]):
            return
        for batch_idx, loss in losses:
            if not torch.isfinite(loss).all():
                self._stop(trainer, f"the training loss is {loss.item()}", batch_idx)
        name = next((n for n, g in gradients if not torch.isfinite(g).all()), None)
        if name is not None:
            self._stop(trainer, f"the gradient of {name} is not finite", self._batch_idx)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._check_weights(trainer, pl_module, "before a checkpoint was written")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_weights(trainer, pl_module, "when training ended")

    def _check_weights(self, trainer: L.Trainer, pl_module: L.LightningModule, when: str) -> None:
        trained = [(n, p) for n, p in pl_module.named_parameters() if p.requires_grad]
        state = [
            (name, tensor)
            for name, tensor in (*trained, *pl_module.named_buffers())
            if tensor.is_floating_point()
        ]
        if self._all_finite([tensor for _, tensor in state]):
            self._finite_at_step = trainer.global_step
            return
        name = next((n for n, t in state if not torch.isfinite(t).all()), None)
        if name is None:
            self._finite_at_step = trainer.global_step
            return
        since = (
            "since the start of training"
            if self._finite_at_step is None
            else f"since global step {self._finite_at_step}, when they were last checked"
        )
        self._stop(
            trainer,
            f"{name} was found no longer finite {when} (the weights became so {since})",
            self._batch_idx,
        )

    @staticmethod
    def _all_finite(tensors: list[torch.Tensor]) -> bool:
        """Whether every element of every tensor is finite, possibly ``False`` when a norm
        overflows on finite values (the callers then check exactly): the guard's one host sync
        a check. The norms come from one fused reduction, and only their combined flag is read.
        """
        if not tensors:
            return True
        # Accumulated in float32 whatever the tensors' precision: a half-precision norm would
        # overflow on ordinary weights, and one dtype lets the norms be stacked.
        norms = torch._foreach_norm(tensors, 2, dtype=torch.float32)
        return bool(torch.isfinite(torch.stack(norms)).all())

    @staticmethod
    def _stop(trainer: L.Trainer, what: str, batch_idx: int) -> NoReturn:
        checkpoints = getattr(trainer.checkpoint_callback, "dirpath", None) or "(none kept)"
        raise NonFiniteLossError(
            f"{what} at global step {trainer.global_step} (epoch {trainer.current_epoch}, batch "
            f"{batch_idx} of the epoch); the checkpoints in {checkpoints} hold the last finite "
            "state. Lower optimizer.lr, or look for bad inputs."
        )


class TargetSparsityPruning(ModelPruning):
    """Lightning's :class:`ModelPruning`, aimed at a final sparsity rather than a per-epoch amount.

    Global L1 magnitude pruning of the weights of every linear and convolutional layer, a share
    ``1 - (1 - sparsity) ** (1 / epochs)`` at the end of each of ``epochs`` epochs, so that the
    last leaves ``sparsity`` of those weights at zero; pruning is made permanent when training
    ends, and the sparsity reached is reported as ``pruning/sparsity`` (``metrics.json``).
    """

    PRUNED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)

    def __init__(self, sparsity: float, epochs: int, **kwargs: Any) -> None:
        if not 0 <= sparsity < 1:
            raise ValueError(f"callbacks.pruning.sparsity: expected [0, 1), got {sparsity}")
        if epochs < 1:
            raise ValueError(f"callbacks.pruning.epochs: expected >= 1, got {epochs}")
        per_epoch = 1 - (1 - sparsity) ** (1 / epochs)
        super().__init__("l1_unstructured", amount=per_epoch, use_global_unstructured=True,
                         make_pruning_permanent=True, **kwargs)  # fmt: skip

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._parameters_to_prune = [
            (module, "weight") for module in pl_module.modules()
            if isinstance(module, self.PRUNED_LAYERS)
        ]  # fmt: skip
        super().setup(trainer, pl_module, stage)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        weights = [module.weight for module, _ in self._parameters_to_prune]
        zeros = sum(int((w == 0).sum()) for w in weights)
        trainer.callback_metrics["pruning/sparsity"] = torch.tensor(
            zeros / sum(w.numel() for w in weights)
        )
