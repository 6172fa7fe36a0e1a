"""rolefusion's Slurm launcher for Hydra (``hydra/launcher=slurm``): hydra-submitit-launcher's,
with ``wait: false`` to submit a sweep and return (see :mod:`._launcher`).

Hydra imports every module under ``hydra_plugins`` at start-up to find plugins: without the
``slurm`` extra there is nothing to extend, and this package offers nothing rather than a
warning on every command. Hydra's scan does not see into an editable install (``pip install
-e``), so rolefusion's commands also register the launcher themselves (:func:`register`).
"""

from importlib.util import find_spec

AVAILABLE = bool(find_spec("submitit") and find_spec("hydra_plugins.hydra_submitit_launcher"))

if AVAILABLE:
    from hydra_plugins.rolefusion_slurm._launcher import SlurmLauncher, SlurmQueueConf

    __all__ = ["SlurmLauncher", "SlurmQueueConf", "register"]


def register() -> None:
    """Make the launcher and its config (``hydra/launcher=rolefusion_slurm``) known to Hydra,
    where the ``slurm`` extra is installed; idempotent."""
    if AVAILABLE:
        from hydra.core.plugins import Plugins

        Plugins.instance().register(SlurmLauncher)
