"""The ``rf.*`` resolvers the configs interpolate: values known only when a run starts (the
modalities the model encodes, whether it is on a GPU, the sweep directory's name, where runs go,
the run's name and config choices, whether it writes to a terminal).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from rolefusion.choices import MODALITY_ORDER

RUN_ID = secrets.token_hex(3)
"""Drawn once per process: two runs started in the same second still get distinct directories."""
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def checkout_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source checkout rolefusion runs from (an editable install), or None for an installed
    wheel: a checkout holds ``src/rolefusion`` beside ``conf/`` and ``pyproject.toml``."""
    root = package_dir.parents[1]
    is_checkout = package_dir.parent.name == "src" and (root / "pyproject.toml").is_file()
    return root if is_checkout and (root / "conf").is_dir() else None


def default_home() -> str:
    """Where runs and generated data go unless ``$ROLEFUSION_HOME`` says: the checkout when
    rolefusion runs from one (so every command of a checkout shares one ``outputs/`` and one
    data cache, wherever it is started), else the directory the command was started in."""
    checkout = checkout_root()
    if checkout is not None:
        return str(checkout)
    if HydraConfig.initialized():
        return HydraConfig.get().runtime.cwd
    return os.getcwd()


def encoded_modalities(*, _root_: DictConfig) -> ListConfig:
    """The modalities the model has an encoder for (``model.<modality>_encoder`` not null).

    The data config reads this (``${rf.encoded_modalities:}``), so choosing
    ``model/audio_encoder=cnn1d`` is all it takes for the data to load audio too. A ListConfig
    rather than a list, which OmegaConf cannot resolve in place (``--cfg job --resolve``).
    """
    model = _root_.get("model") or {}
    return ListConfig([m for m in MODALITY_ORDER if model.get(f"{m}_encoder") is not None])


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


NOT_IN_RUN_NAMES = ("paths.", "hydra.", "hydra/", "logger.")
"""Overrides that say where a run goes or is logged, not what it is: left out of its name."""
RUN_NAME_LENGTH = 120
"""Longer names are cut (ending in ``...``): a name is for reading in a table of runs; the
config holds every override."""


def run_name(*, _root_: DictConfig) -> str:
    """A run's name for people (W&B's run name): its command-line overrides with each key
    shortened to its last part, ``model/fusion=late seed=2`` -> ``fusion=late seed=2``, as
    ``rolefusion-report`` labels configurations. Overrides of paths, Hydra and the logger are
    left out; a run with none is named after its ``task_name``."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    parts = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key == "logger" or key.startswith(NOT_IN_RUN_NAMES):
            continue
        short = key.replace("/", ".").split(".")[-1]
        parts.append(f"{short}={value}")
    name = " ".join(parts) or str(_root_.get("task_name") or "run")
    return name if len(name) <= RUN_NAME_LENGTH else name[: RUN_NAME_LENGTH - 3] + "..."


def config_choices() -> DictConfig:
    """The option chosen in each config group (``model/fusion: late``, ``data:
    roleplay_scenes``, ``experiment: null``), Hydra's own groups and the schema left out: plain
    fields that a table of runs can group by, where the resolved config has only values."""
    if not HydraConfig.initialized():
        return DictConfig({})
    choices = HydraConfig.get().runtime.choices
    return DictConfig(
        {k: v for k, v in choices.items() if not k.startswith("hydra") and k != "schema"}
    )


def on_terminal() -> bool:
    """Whether this process writes to a terminal: live progress bars there; in batch mode
    (Slurm, nohup, CI, a pipe) one log line per epoch instead."""
    return sys.stdout.isatty()


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
    "rf.run_name": run_name,
    "rf.choices": config_choices,
    "rf.on_terminal": on_terminal,
    "rf.batch_mode": lambda: not on_terminal(),
}
# Resolved once in the process given the command; Hydra carries the value into every job.
CACHED_RESOLVERS = {"rf.sweep_key": sweep_key, "rf.default_home": default_home}
