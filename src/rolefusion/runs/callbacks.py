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
    """Stops training at the first non-finite loss, gradient or weight, naming the step and the
    batch; the checkpoints on disk (``last.ckpt``, the best) keep the last finite state.

    Each check reduces every tensor it covers to one flag on the device and reads that flag
    once (:meth:`_all_finite`), whatever the number of tensors: a training step (one batch,
    one optimizer step) costs exactly two host syncs, one for all the gradients before the
    optimizer step and one for the loss with every trained floating-point parameter and every
    floating-point buffer after it. With ``accumulate_grad_batches=k`` that is one per batch
    plus one per optimizer step. The names of the offending tensors are looked up only once a
    check has failed. In a sweep the error lands in the job's ``failed.json``.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        # Finite gradients can still overflow the weights (a huge learning rate times weight
        # decay) or the normalisation statistics: check the state each step, so that every
        # checkpoint written so far is known to be finite. The loss goes into the same check.
        # Frozen weights are left out: no step changes them, and a frozen pretrained backbone
        # (22.6 M values for MiniLM) would cost most of a step whose features come cached.
        trained = [(n, p) for n, p in pl_module.named_parameters() if p.requires_grad]
        state = [
            (name, tensor)
            for name, tensor in (*trained, *pl_module.named_buffers())
            if tensor.is_floating_point()
        ]
        losses = [loss.detach()] if isinstance(loss, torch.Tensor) else []
        if self._all_finite([*losses, *(tensor for _, tensor in state)]):
            return
        if losses and not torch.isfinite(losses[0]).all():
            self._stop(trainer, f"the training loss is {loss.item()}", batch_idx)
        name = next(n for n, t in state if not torch.isfinite(t).all())
        self._stop(trainer, f"{name} is no longer finite after the update", batch_idx)

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any
    ) -> None:
        gradients = [
            (name, parameter.grad)
            for name, parameter in pl_module.named_parameters()
            if parameter.grad is not None
        ]
        if self._all_finite([gradient for _, gradient in gradients]):
            return
        name = next(n for n, g in gradients if not torch.isfinite(g).all())
        batch_idx = trainer.fit_loop.epoch_loop.batch_progress.current.ready - 1
        self._stop(trainer, f"the gradient of {name} is not finite", batch_idx)

    @staticmethod
    def _all_finite(tensors: list[torch.Tensor]) -> bool:
        """Whether every element of every tensor is finite: the guard's one host sync a check.

        Each tensor is reduced to a flag on the device, the flags to one, and only that is read.
        """
        if not tensors:
            return True
        flags = [torch.isfinite(tensor).all() for tensor in tensors]
        return bool(torch.stack(flags).all())

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
