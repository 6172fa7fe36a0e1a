"""The label map: which classes exist, in which order, and how a manifest label becomes a target.

Built from the training split only and saved with the run and in every checkpoint, so a model
restored elsewhere reads labels exactly as it was trained to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from rolefusion.choices import TASKS, Task
from rolefusion.data.manifest import Label
from rolefusion.data.rejections import Rejected


def class_order(labels: Iterable[str]) -> tuple[str, ...]:
    """Integers in numeric order (so "10" follows "9"), anything else alphabetically."""
    labels = set(labels)
    if all(label.lstrip("-").isdigit() for label in labels):
        return tuple(sorted(labels, key=int))
    return tuple(sorted(labels))


def _names(label: Label) -> tuple[str, ...]:
    return label if isinstance(label, tuple) else (label,)


@dataclass(frozen=True)
class LabelMap:
    """Classes in index order, for one of :data:`TASKS`.

    For ``binary`` the positive class is the last (index 1): ``1`` of ``0/1`` labels, or
    ``positive_label`` when the data names it. With ``other`` set, labels that were rare in
    training (or never seen) read as that class, as MELD's minor speakers are folded together.
    """

    task: str
    class_names: tuple[str, ...]
    other: str | None = None

    @classmethod
    def from_training(
        cls,
        labels: Sequence[Label],
        task: Task,
        min_count: int = 0,
        other_label: str = "other",
        positive_label: str | None = None,
    ) -> LabelMap:
        if task not in TASKS:
            raise ValueError(f"data.task: expected one of {TASKS}, got {task!r}")
        if task == "multilabel" and not all(isinstance(label, tuple) for label in labels):
            raise ValueError("data.task=multilabel needs list labels (data.multilabel=true)")
        counts = Counter(name for label in labels for name in _names(label))
        kept = {name for name, n in counts.items() if n >= min_count}
        other = other_label if min_count > 0 and len(kept) < len(counts) else None
        names = list(class_order(kept))
        if other is not None and other not in kept:
            names.append(other)
        if task == "binary":
            if len(names) != 2:
                raise ValueError(
                    f"data.task=binary: the training split has {len(names)} classes "
                    f"{names}, expected 2"
                )
            if positive_label is not None:
                if positive_label not in names:
                    raise ValueError(
                        f"data.positive_label={positive_label!r} is not one of {names}"
                    )
                names.sort(key=lambda name: name == positive_label)
        return cls(task, tuple(names), other)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fold(self, label: Label) -> Label:
        """Rare or unseen class names -> ``other`` (when folding is on)."""
        if self.other is None:
            return label
        known = set(self.class_names)
        folded = [name if name in known else self.other for name in _names(label)]
        return tuple(dict.fromkeys(folded)) if isinstance(label, tuple) else folded[0]

    def target(self, label: Label) -> int | torch.Tensor:
        """A class index, or for multilabel a multi-hot float vector ``[C]``."""
        index = {name: i for i, name in enumerate(self.class_names)}
        unknown = [name for name in _names(label) if name not in index]
        if unknown:
            raise Rejected("label not in the training split", "label", ", ".join(unknown))
        if self.task != "multilabel":
            return index[label]  # type: ignore[index]
        hot = torch.zeros(self.num_classes)
        hot[[index[name] for name in label]] = 1.0
        return hot

    def counts(self, targets: Sequence[int | torch.Tensor]) -> list[int]:
        """Examples per class (for multilabel: examples the class applies to)."""
        if self.task == "multilabel":
            return torch.stack(list(targets)).sum(0).long().tolist()
        tally = Counter(int(t) for t in targets)
        return [tally.get(i, 0) for i in range(self.num_classes)]

    def balancing_weights(self, targets: Sequence[int | torch.Tensor]) -> list[float]:
        """Loss weights against class imbalance, from the training targets.

        Single-label: ``N / (C * n_c)`` (1 for every class of a balanced set). Multilabel: the
        positive weight ``(N - n_c) / n_c`` of each class's binary loss, as BCE's ``pos_weight``.
        """
        counts = self.counts(targets)
        total = len(targets)
        if self.task == "multilabel":
            return [(total - n) / n if n else 1.0 for n in counts]
        return [total / (self.num_classes * n) if n else 0.0 for n in counts]
