"""What the configuration is, before anything is built: the schema of the top-level configs,
the ``rf.*`` resolvers they interpolate, and the checks of every ``_target_`` node.

:func:`register_configs` makes the first two known to Hydra, and rolefusion's Hydra plugins (the
pruning Optuna sweeper, the Slurm launcher); the entry points (``cli.py``) call it once, before
Hydra composes.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from omegaconf import OmegaConf

from hydra_plugins import rolefusion_slurm
from hydra_plugins.rolefusion_optuna.sweeper import PruningOptunaSweeper
from rolefusion.config.resolvers import CACHED_RESOLVERS, RESOLVERS
from rolefusion.config.schema import DataInspectSchema, TrainSchema


def register_configs() -> None:
    """Make the schema, the ``rf.*`` resolvers and rolefusion's sweeper and launcher available
    to Hydra (idempotent)."""
    # Hydra finds plugins by listing the hydra_plugins package's folders, which an editable
    # install's import hook hides; registering by hand finds them in every kind of install.
    Plugins.instance().register(PruningOptunaSweeper)
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
