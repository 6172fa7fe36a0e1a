"""Callbacks rolefusion adds to Lightning's."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


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
