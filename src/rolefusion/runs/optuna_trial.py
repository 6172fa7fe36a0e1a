"""Which Optuna trial a job runs, and the trial itself, opened where the sweep keeps its study.

The sweeper (:mod:`rolefusion.runs.optuna_sweep`) puts the id of each job's trial in the job's
environment; the storage, the study and the pruner are the sweep's own settings
(``hydra.sweeper.*``), read from the job's Hydra config. Light on purpose: the sweeper and
``rolefusion-report`` read :data:`TRIAL_ID_VARIABLE` without loading torch or Lightning.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

if TYPE_CHECKING:  # Optuna is an extra: imported when a search runs
    import optuna

TRIAL_ID_VARIABLE = "ROLEFUSION_OPTUNA_TRIAL_ID"
"""The storage id of the Optuna trial a job runs. An environment variable, so the processes
that Lightning starts for the other ranks of a multi-process job inherit it."""


def job_trial() -> optuna.trial.Trial | None:
    """This job's :class:`optuna.trial.Trial`, opened from the sweep's storage with the
    sweep's pruner; None outside a pruning Optuna sweep."""
    trial_id = os.environ.get(TRIAL_ID_VARIABLE)
    if trial_id is None:
        return None
    import optuna

    sweeper = HydraConfig.get().sweeper
    # As the sweeper reads it: no pruner means none (Optuna's own default is the median one).
    pruner = instantiate(sweeper.pruner) if sweeper.pruner else optuna.pruners.NopPruner()
    try:
        study = optuna.load_study(study_name=sweeper.study_name, storage=sweeper.storage,
                                  pruner=pruner)  # fmt: skip
    except Exception as error:
        raise RuntimeError(
            f"hydra.sweeper.storage={_without_password(sweeper.storage)}: this job cannot open "
            f"study {sweeper.study_name!r} to report to its trial ({type(error).__name__}: "
            f"{error}). The storage must be reachable from where the jobs run (a shared file "
            "system for SQLite on a cluster, or a database server)."
        ) from error
    return optuna.trial.Trial(study, int(trial_id))


def _without_password(url: str) -> str:
    """A storage URL as it may be written to logs: a database password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return repr(make_url(url))
    except ArgumentError:  # not a URL at all: nothing to mask
        return url
