"""The order of the training examples within an epoch, resumable from its middle.

A run resumed from a checkpoint saved mid-epoch (Slurm's warning before a time limit,
:mod:`rolefusion.runs.preemption`) must go on with the rest of the very permutation it was
training on, and draw no random number the uninterrupted run did not draw: then it ends with
the uninterrupted run's weights. torch's ``RandomSampler`` keeps neither its permutation's seed
nor a position, and Lightning restarts a plain loader from its beginning with a fresh shuffle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler


class EpochOrder(RandomSampler):
    """A new random permutation each epoch, drawn exactly as ``RandomSampler`` draws it (one
    int64 from the global generator seeds a private one), so that a run shuffles as with
    ``DataLoader(shuffle=True)``; but its seed is kept (:attr:`seed`), and :meth:`resume`
    makes the next epoch that permutation again, past the examples already trained on.

    A ``RandomSampler``, so that Lightning's multi-process training replaces it with its
    distributed sampler, as it replaces the plain one.
    """

    def __init__(self, data_source: Sized) -> None:
        super().__init__(data_source)
        self.seed: int | None = None
        self._resume: tuple[int, int] | None = None

    @property
    def resuming(self) -> bool:
        return self._resume is not None

    def resume(self, seed: int, skip: int) -> None:
        """Make the next epoch the permutation of ``seed``, less its first ``skip`` examples."""
        self._resume = (seed, skip)

    def __iter__(self) -> Iterator[int]:
        if self._resume is not None:
            (self.seed, skip), self._resume = self._resume, None
        else:
            self.seed, skip = int(torch.empty((), dtype=torch.int64).random_().item()), 0
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()[skip:]


class TrainLoader(DataLoader):
    """A ``DataLoader`` whose iterator, when its :class:`EpochOrder` resumes mid-epoch, leaves
    the global random generator as it found it: a new iterator draws its workers' base seed
    from it, which the uninterrupted run drew when that epoch began, before the checkpoint."""

    def __iter__(self) -> Any:
        if not (isinstance(self.sampler, EpochOrder) and self.sampler.resuming):
            return super().__iter__()
        state = torch.get_rng_state()
        try:
            return super().__iter__()
        finally:
            torch.set_rng_state(state)
