"""The choices every part shares, as types: a config value outside them is refused by the config
check (:func:`rolefusion.config.checks.check_targets`), naming the key and the allowed values,
before any data is read. Torch-free, so composing a config never imports torch.
"""

from typing import Any, Literal, get_args

Modality = Literal["image", "text", "audio"]
Split = Literal["train", "val", "test"]
Task = Literal["multiclass", "binary", "multilabel"]

MODALITY_ORDER: tuple[Modality, ...] = get_args(Modality)
"""Fixed order in which modalities are concatenated wherever order matters."""
SPLITS: tuple[Split, ...] = get_args(Split)
TASKS: tuple[Task, ...] = get_args(Task)


def require_choice(key: str, value: Any, allowed: Any) -> None:
    """Refuse ``value`` outside the ``Literal`` ``allowed``, naming ``key``: the refusal for a
    part built from Python, which the config check does not see."""
    if value not in get_args(allowed):
        raise ValueError(f"{key} must be one of {get_args(allowed)}, got {value!r}")
