"""The sweeper's side of pruned Optuna trials (``hydra/sweeper=optuna_pruning``).

hydra-optuna-sweeper asks the study for trials, launches one job per trial and tells the study
each job's return value: a job never learns which trial it runs, so it cannot report its epochs,
and every trial ends COMPLETE (hydra issues #1954, #1710). This sweeper hands each job its
trial's id in the environment (:data:`~rolefusion.runs.optuna_trial.TRIAL_ID_VARIABLE`, set
through ``hydra.job.env_set``: a Hydra setting, so it neither names the job's directory nor
enters the overrides its ``metrics.json`` records). The job reports every epoch and, when the
pruner stops it, tells the study PRUNED itself; the sweeper then reads the study afresh and tells
it how the other trials ended: COMPLETE with the job's value, or FAIL. It stops the search once
more than ``max_failure_rate`` of the invocation's trials failed (the plugin's check never fires
for rolefusion-train, which returns NaN for a failed job rather than raising). The search space,
the sampler and ``optimization_results.yaml`` are the plugin's.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution
from optuna.pruners import BasePruner, NopPruner
from optuna.trial import Trial, TrialState

from rolefusion.runs.optuna_trial import TRIAL_ID_VARIABLE

log = logging.getLogger(__name__)


class PruningOptunaSweeperImpl(OptunaSweeperImpl):
    """The plugin's sweeper, with ``pruner`` (any :class:`optuna.pruners.BasePruner`), applied
    by the jobs (:class:`rolefusion.runs.optuna_pruning.OptunaPruning`) through ``storage``."""

    def __init__(
        self,
        pruner: BasePruner | None,
        sampler: Any,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        params: DictConfig | None = None,
        search_space: DictConfig | None = None,
        custom_search_space: str | None = None,
    ) -> None:
        super().__init__(sampler, direction, storage, study_name, n_trials, n_jobs,
                         max_failure_rate, search_space, custom_search_space, params)  # fmt: skip
        self.pruner = pruner or NopPruner()
        if storage is None and not isinstance(self.pruner, NopPruner):
            raise ValueError(
                f"hydra.sweeper.pruner ({type(self.pruner).__name__}) needs hydra.sweeper.storage: "
                "each job reports its epochs to its trial there, and a study in memory cannot be "
                "shared with the jobs. Set a storage URL (sqlite:///...) or "
                "hydra/sweeper/pruner=none."
            )
        if isinstance(sampler, functools.partial) and sampler.func is optuna.samplers.GridSampler:
            raise ValueError(
                "hydra/sweeper/sampler=grid: a grid is a plain multirun "
                "(rolefusion-train -m key=a,b,c), which also skips the jobs that finished; or use "
                "the plugin's own sweeper (hydra/sweeper=optuna), without pruning"
            )

    def sweep(self, arguments: list[str]) -> None:
        directions = self._get_directions()
        if len(directions) != 1:
            raise ValueError(
                f"hydra.sweeper.direction={directions}: rolefusion-train returns one value "
                "(optimized_metric), so a study has one direction"
            )
        space, fixed = self._search_space(arguments)
        study = optuna.create_study(study_name=self.study_name, storage=self.storage,
                                    sampler=self.sampler, pruner=self.pruner,
                                    direction=directions[0], load_if_exists=True)  # fmt: skip
        log.info("Study %s (%d trials so far), %s, pruner %s, %s", study.study_name,
                 len(study.trials), type(self.sampler).__name__, type(self.pruner).__name__,
                 directions[0])  # fmt: skip
        launched: list[int] = []
        failed: list[int] = []
        while len(launched) < self.n_trials:
            trials = [study.ask() for _ in range(min(self.n_jobs, self.n_trials - len(launched)))]
            overrides = self._configure_trials(trials, space, fixed)
            jobs = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(jobs)
            # Afresh: a study object keeps the trials it asked for as they were then, so it
            # would see neither the epochs their jobs reported nor that a job pruned its trial.
            study = self._reopened(study)
            for trial, job in zip(trials, jobs, strict=True):
                launched.append(trial.number)
                if not _told(study, trial.number, job):
                    failed.append(trial.number)
            if len(failed) / len(launched) > self.max_failure_rate:
                raise RuntimeError(
                    f"trials {failed} of {launched} failed, more than "
                    f"hydra.sweeper.max_failure_rate={self.max_failure_rate} of them: the search "
                    "stops (each failed job's error is in its failed.json)"
                )
        self._write_results(study)

    def _search_space(
        self, arguments: list[str]
    ) -> tuple[dict[str, BaseDistribution], dict[str, Any]]:
        """The distributions to sample and the fixed values, from ``hydra.sweeper.params`` and
        the command line, as the plugin reads them."""
        self._process_searchspace_config()
        space, fixed = create_params_from_overrides(
            [*self._parse_sweeper_params_config(), *arguments]
        )
        space = {**(self.search_space_distributions or {}), **space}
        return {name: d for name, d in space.items() if name not in fixed}, fixed

    def _reopened(self, study: optuna.Study) -> optuna.Study:
        """``study`` read again from its storage (the same object for a study in memory)."""
        if self.storage is None:
            return study
        return optuna.load_study(study_name=study.study_name, storage=self.storage,
                                 sampler=self.sampler, pruner=self.pruner)  # fmt: skip

    def _configure_trials(
        self,
        trials: list[Trial],
        search_space_distributions: dict[str, BaseDistribution],
        fixed_params: dict[str, Any],
    ) -> Sequence[Sequence[str]]:
        """Each trial's overrides, plus its id for the job to report to (when the jobs can
        open the study)."""
        overrides = super()._configure_trials(trials, search_space_distributions, fixed_params)
        if self.storage is None:
            return overrides
        return [
            (*job, f"+hydra.job.env_set.{TRIAL_ID_VARIABLE}={trial._trial_id}")
            for trial, job in zip(trials, overrides, strict=True)
        ]

    def _write_results(self, study: optuna.Study) -> None:
        """``optimization_results.yaml`` in the sweep directory: the plugin's best parameters
        and value (null when no trial completed), and how many trials ended in each state."""
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        best = study.best_trial if completed else None
        states = [trial.state.name.lower() for trial in study.get_trials(deepcopy=False)]
        results = {
            "name": "optuna",
            "best_params": best.params if best else None,
            "best_value": best.value if best else None,
            "trials": {state: states.count(state) for state in sorted(set(states))},
        }
        if best is None:
            log.warning("no trial of study %s completed: no best value", study.study_name)
        else:
            log.info("Best trial %d: value %s, parameters %s", best.number, best.value,
                     best.params)  # fmt: skip
        path = Path(self.config.hydra.sweep.dir) / "optimization_results.yaml"
        OmegaConf.save(OmegaConf.create(results), path)


def _told(study: optuna.Study, number: int, job: JobReturn) -> bool:
    """Tell ``study`` how trial ``number``'s job ended, unless the job did (it pruned the
    trial); False when the job failed."""
    if study.get_trials(deepcopy=False)[number].state.is_finished():
        return True
    try:
        value = float(job.return_value)  # re-raises the job's error if it raised one
    except Exception as error:
        log.warning("trial %d failed: %s: %s", number, type(error).__name__, error)
        study.tell(number, state=TrialState.FAIL)
        return False
    if math.isnan(value):  # rolefusion-train's value for a job that failed (failed.json)
        log.warning("trial %d failed: its job returned NaN", number)
        study.tell(number, state=TrialState.FAIL)
        return False
    study.tell(number, value)
    return True
