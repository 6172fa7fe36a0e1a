"""Config checks that run before anything is built: a typo fails at once, before data is generated.

Hydra already rejects unknown command-line keys (struct mode) and unknown group options
(listing the valid ones). What it cannot see is a key or a value that does not fit the
``_target_`` it will be passed to. :func:`check_targets` reads each target's signature and
checks every key and value against it, naming the full config path of the first offender.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import ConfigDict, TypeAdapter, ValidationError

RESERVED_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the key's full path."""


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


FOREIGN_BOUNDS: dict[str, dict[str, Any]] = {
    "lightning.pytorch.trainer.Trainer": {
        "max_epochs": Annotated[int, Ge(1)] | Literal[-1] | None,  # -1: until max_steps/max_time
        "log_every_n_steps": Annotated[int, Ge(1)],
        "check_val_every_n_epoch": Annotated[int, Ge(1)] | None,
        "accumulate_grad_batches": Annotated[int, Ge(1)],
    },
    "torch.optim.": {"lr": Annotated[float, Gt(0)], "weight_decay": Annotated[float, Ge(0)]},
}
"""Values that cannot work, for the targets whose signatures are not ours to annotate (keyed
by target, or by module prefix ending in a dot). rolefusion's own targets carry their bounds in
their signatures (``Annotated[int, Ge(1)]``)."""


def _type_hints(target: Any, target_name: str) -> dict[str, Any]:
    """Evaluated annotations of a target's parameters (with their bounds), and the bounds of
    :data:`FOREIGN_BOUNDS`; unevaluable annotations are left out."""
    function = target.__init__ if inspect.isclass(target) else target
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # annotations naming types only imported for type checkers
        hints = {}
    for key, bounds in FOREIGN_BOUNDS.items():
        if target_name == key or (key.endswith(".") and target_name.startswith(key)):
            hints.update(bounds)
    return hints


BOUND_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _described(annotation: Any) -> str:
    """How an annotation reads in an error: a choice lists its allowed values, a bounded
    number its bounds (``int >= 1``), a union its members."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *metadata = typing.get_args(annotation)
        bounds = [
            f"{symbol} {getattr(item, name)}"
            for item in metadata
            for name, symbol in BOUND_SYMBOLS.items()
            if getattr(item, name, None) is not None
        ]
        return " and ".join([f"{_described(base)} {bounds[0]}", *bounds[1:]])
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_described(member) for member in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _check_value(path: str, value: Any, annotation: Any) -> None:
    try:
        adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # an annotation pydantic cannot build a validator for
        return
    try:
        adapter.validate_python(value)
    except ValidationError:
        raise ConfigError(
            f"{path}: expected {_described(annotation)}, got {value!r} ({type(value).__name__})"
        ) from None


def _check_target(path: str, node: DictConfig) -> None:
    target_name = node["_target_"]
    try:
        target = get_object(target_name)
    except Exception as error:
        raise ConfigError(f"{path}._target_: cannot import {target_name!r} ({error})") from None
    parameters = inspect.signature(target).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    hints = _type_hints(target, target_name)
    valid = [name for name in parameters if name != "self"]
    for key in node:
        key = str(key)
        if key in RESERVED_KEYS:
            continue
        key_path = f"{path}.{key}" if path else key
        if key not in parameters:
            if takes_any:
                continue
            raise ConfigError(
                f"{key_path}: {target_name} has no parameter {key!r}{_suggest(key, valid)}; "
                f"valid keys: {', '.join(valid)}"
            )
        value = node._get_node(key)
        # An interpolated value is checked where it is written, so the error names that key.
        if isinstance(value, DictConfig | ListConfig) or value._is_interpolation():
            continue
        if OmegaConf.is_missing(node, key):
            continue
        if key in hints:
            _check_value(key_path, node[key], hints[key])


def check_targets(cfg: DictConfig, path: str = "") -> None:
    """Check every ``_target_`` node under ``cfg`` against its callable's signature."""
    if isinstance(cfg, DictConfig):
        if "_target_" in cfg:
            _check_target(path, cfg)
        for key in cfg:
            child = cfg._get_node(key)
            if isinstance(child, DictConfig | ListConfig):
                check_targets(child, f"{path}.{key}" if path else str(key))
    elif isinstance(cfg, ListConfig):
        for index, child in enumerate(cfg):
            if isinstance(child, DictConfig | ListConfig):
                check_targets(child, f"{path}[{index}]")
