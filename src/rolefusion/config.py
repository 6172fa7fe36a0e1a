"""Config checks that run before anything is built: a typo fails at once, before data is generated.

Hydra already rejects unknown command-line keys (struct mode) and unknown group options
(listing the valid ones). What it cannot see is a key or a value that does not fit the
``_target_`` it will be passed to. :func:`check_targets` reads each target's signature and
checks every key and value against it, naming the full config path of the first offender.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import re
import secrets
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import ConfigDict, TypeAdapter, ValidationError

from rolefusion.modalities import MODALITY_ORDER

RESERVED_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})
RUN_ID = secrets.token_hex(3)
"""Drawn once per process: two runs started in the same second still get distinct directories."""


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the key's full path."""


@dataclass
class TrainSchema:
    """The top-level keys of ``train.yaml``: a misspelt one fails at composition, naming it."""

    data: Any = None
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    trainer: Any = None
    logger: Any = None
    callbacks: Any = None
    paths: Any = None
    task_name: str = "train"
    tags: list[str] = field(default_factory=list)
    seed: int | None = 42
    train: bool = True
    test: bool = True
    ckpt_path: str | None = None
    optimized_metric: str = "val/f1_best"


@dataclass
class InspectOptions:
    """``rolefusion-data``'s own settings (``conf/data_inspect.yaml``)."""

    out_dir: str = "outputs/data_inspect"
    samples: int = 16
    seed: int = 0


@dataclass
class DataInspectSchema(TrainSchema):
    """The training keys, plus ``inspect``."""

    inspect: InspectOptions = field(default_factory=InspectOptions)


def encoded_modalities(*, _root_: DictConfig) -> list[str]:
    """The modalities the model has an encoder for (``model.<modality>_encoder`` not null).

    The data config reads this (``${rf.encoded_modalities:}``), so choosing
    ``model/audio_encoder=cnn1d`` is all it takes for the data to load audio too.
    """
    model = _root_.get("model") or {}
    return [m for m in MODALITY_ORDER if model.get(f"{m}_encoder") is not None]


def on_gpu(*, _root_: DictConfig) -> bool:
    """Whether the run trains on a CUDA GPU (``trainer.accelerator``): the data (pinned
    memory) and the model (channels-last images) read this, so ``trainer=gpu`` is all it takes.
    """
    accelerator = OmegaConf.select(_root_, "trainer.accelerator", default="cpu")
    if accelerator == "auto":
        import torch  # only here: composing a CPU config never pays for importing torch

        return torch.cuda.is_available()
    return accelerator in ("gpu", "cuda")


def sweep_key() -> str:
    """A sweep directory name made from the command line's overrides, so that running the same
    multirun command again finds the same directory (and skips or resumes its jobs).

    Settings of Hydra itself (launcher, partition, number of Optuna trials) are left out: the
    same sweep moved to a cluster, or given more trials, is still the same sweep.

    Read from ``sys.argv`` (every ``key=value`` argument) and cached: the launcher resolves it
    once in the process that was given the command, and Hydra copies its resolver cache into
    every job's config, local or shipped to Slurm, as it does for ``${now:}``.
    """
    overrides = [
        a for a in sys.argv[1:]
        if "=" in a and not a.startswith(("-", "hydra.", "hydra/", "+hydra"))
    ]  # fmt: skip
    named = [o for o in overrides if not o.startswith("paths.")]
    slug = re.sub(r"[^A-Za-z0-9=,.+-]+", "_", "_".join(named))[:60] or "defaults"
    digest = hashlib.sha256("\n".join(sorted(overrides)).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def sweep_id() -> str | None:
    """The sweep directory's name inside a multirun job (W&B's group), else None."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def ensure_dir(path: str) -> str:
    """``path``, created if missing: Optuna opens its SQLite file before any job has made the
    sweep directory."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


RESOLVERS = {
    "rf.run_id": lambda: RUN_ID,
    "rf.encoded_modalities": encoded_modalities,
    "rf.encodes": lambda modality, *, _root_: modality in encoded_modalities(_root_=_root_),
    "rf.on_gpu": on_gpu,
    "rf.sweep_id": sweep_id,
    "rf.ensure_dir": ensure_dir,
}
CACHED_RESOLVERS = {"rf.sweep_key": sweep_key}


def register_configs() -> None:
    """Make the schema and the ``rf.*`` resolvers available to Hydra."""
    store = ConfigStore.instance()
    store.store(group="schema", name="train", node=TrainSchema, package="_global_")
    store.store(group="schema", name="data_inspect", node=DataInspectSchema, package="_global_")
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
    for name, resolver in CACHED_RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver, use_cache=True)


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_hints(target: Any) -> dict[str, Any]:
    """Evaluated annotations of a target's parameters; empty where they cannot be evaluated."""
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # annotations naming types only imported for type checkers
        return {}


def _check_value(path: str, value: Any, annotation: Any) -> None:
    try:
        adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # an annotation pydantic cannot build a validator for
        return
    try:
        adapter.validate_python(value)
    except ValidationError:
        plain = isinstance(annotation, type)
        shown = annotation.__name__ if plain else str(annotation).replace("typing.", "")
        raise ConfigError(
            f"{path}: expected {shown}, got {value!r} ({type(value).__name__})"
        ) from None


def _check_target(path: str, node: DictConfig) -> None:
    target_name = node["_target_"]
    try:
        target = get_object(target_name)
    except Exception as error:
        raise ConfigError(f"{path}._target_: cannot import {target_name!r} ({error})") from None
    parameters = inspect.signature(target).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    hints = _type_hints(target)
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
