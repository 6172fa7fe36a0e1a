"""What the configuration is, before anything is built: the schema of the top-level configs,
the ``rf.*`` resolvers they interpolate, and the checks of every ``_target_`` node.

:func:`register_configs` makes the first two known to Hydra, and rolefusion's Slurm launcher;
the entry points (``cli.py``) call it once, before Hydra composes.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from hydra_plugins import rolefusion_slurm
from rolefusion.config.resolvers import CACHED_RESOLVERS, RESOLVERS
from rolefusion.config.schema import DataInspectSchema, TrainSchema


def register_configs() -> None:
    """Make the schema, the ``rf.*`` resolvers and the Slurm launcher available to Hydra
    (idempotent)."""
    rolefusion_slurm.register()
    store = ConfigStore.instance()
    store.store(group="schema", name="train", node=TrainSchema, package="_global_")
    store.store(group="schema", name="data_inspect", node=DataInspectSchema, package="_global_")
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
    for name, resolver in CACHED_RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver, use_cache=True)
