"""hydra-submitit-launcher's Slurm launcher, able to submit a sweep without waiting for it.

With ``wait: true`` (the default) nothing changes: the sweep command waits for every job and
Hydra gets their results. With ``wait: false`` the command submits the jobs and returns at once,
printing their Slurm ids and the command that collects the results later
(``rolefusion-report SWEEP_DIR``, which counts the jobs Slurm still has as running); the user
may log out. Either way each submitted job is recorded in the sweep directory
(:mod:`rolefusion.runs.job_states`), which is how the report knows of jobs not yet started.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_submitit_launcher import config as submitit_config
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


@dataclass
class SlurmQueueConf(submitit_config.SlurmQueueConf):
    """hydra-submitit-launcher's keys, plus ``wait``."""

    _target_: str = "hydra_plugins.rolefusion_slurm.SlurmLauncher"
    # false: submit the sweep's jobs and return; collect them with rolefusion-report SWEEP_DIR
    wait: bool = True


ConfigStore.instance().store(
    group="hydra/launcher", name="rolefusion_slurm", node=SlurmQueueConf, provider="rolefusion"
)


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """hydra-submitit-launcher's Slurm launcher that records each job it submits and, with
    ``wait=False``, returns without waiting for them."""

    __module__ = "hydra_plugins.rolefusion_slurm"  # the name configs and pickles use

    def __init__(self, wait: bool = True, **params: Any) -> None:
        super().__init__(**params)
        self.wait = wait

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if not self.wait:
            _check_nothing_needs_results(config.hydra.sweeper)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        import submitit  # here, not at the top: Hydra imports plugins on every command

        from rolefusion.runs.job_states import SubmittedRun, record_submitted, still_queued

        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        log.info(f"Submitit 'slurm' sweep output dir : {sweep_dir}")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        numbers = range(initial_job_idx, initial_job_idx + len(job_overrides))
        for number, overrides in zip(numbers, job_overrides, strict=True):
            log.info(f"\t#{number} : {' '.join(filter_overrides(overrides))}")
        arguments = [
            (list(overrides), "hydra.sweep.dir", number, f"job_id_for_{number}",
             Singleton.get_state())
            for number, overrides in zip(numbers, job_overrides, strict=True)
        ]  # fmt: skip
        configs = [self._job_config(o, n) for o, n in zip(job_overrides, numbers, strict=True)]
        for config, overrides in zip(configs, job_overrides, strict=True):
            _check_processes_match(self.params, config.trainer, overrides)
        directories = [str(config.hydra.sweep.subdir) for config in configs]
        if busy := still_queued(sweep_dir, directories):
            raise RuntimeError(
                f"{sweep_dir}: Slurm still has jobs {', '.join(busy)} of an earlier submission of "
                "this sweep, in the run directories these jobs would use. Wait for them to end "
                f"(squeue --me), or cancel them (scancel {' '.join(busy)}), then submit again."
            )
        jobs = self._executor(submitit).map_array(self, *zip(*arguments, strict=True))
        record_submitted(sweep_dir, [
            SubmittedRun(job.job_id, directory, list(overrides))
            for job, directory, overrides in zip(jobs, directories, job_overrides, strict=True)
        ])  # fmt: skip
        if self.wait:
            return [job.results()[0] for job in jobs]
        logs = str(self.params["submitit_folder"]).replace("%j", "<job id>")
        print(f"Submitted {len(jobs)} Slurm jobs ({', '.join(job.job_id for job in jobs)}) "
              "without waiting for them (hydra.launcher.wait=false). Their logs: "
              f"{logs}/. Collect them once they have ended with\n"
              f"  rolefusion-report {sweep_dir}\n"
              "which counts those still pending or running.", flush=True)  # fmt: skip
        return [self._submitted(overrides) for overrides in job_overrides]

    def _executor(self, submitit: Any) -> Any:
        """submitit's Slurm executor with this launcher's keys, as hydra-submitit-launcher
        makes it: the keys it shares with the local executor go in plain, the others with
        submitit's ``slurm_`` prefix; the folder and requeue count when it is made."""
        params = dict(self.params)
        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=params.pop("submitit_folder"),
            slurm_max_num_timeout=params.pop("max_num_timeout"),
        )
        shared = set(OmegaConf.structured(submitit_config.BaseQueueConf).keys())
        executor.update_parameters(
            **{key if key in shared else f"slurm_{key}": value for key, value in params.items()}
        )
        return executor

    def _job_config(self, overrides: Sequence[str], number: int) -> DictConfig:
        """Job ``number``'s whole config, as the job will compose it: its run directory
        (``hydra.sweep.subdir`` may interpolate the job's overrides or number) and trainer."""
        assert self.hydra_context is not None and self.config is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config.hydra.job) as job:
            job.num = number
        return config

    @staticmethod
    def _submitted(overrides: Sequence[str]) -> JobReturn:
        """What the sweeper gets for a job submitted and not waited for: no result (None)."""
        submitted = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
        submitted.return_value = None
        return submitted


def _check_nothing_needs_results(sweeper: DictConfig) -> None:
    """``wait: false`` leaves the sweeper without results: refuse the sweepers that choose
    jobs from earlier results (Optuna), and batches that each wait for the previous one."""
    target = sweeper.get("_target_")
    if target != BASIC_SWEEPER:
        raise ValueError(
            f"hydra.launcher.wait=false: the sweeper {target} chooses its next jobs from the "
            "results of the earlier ones (hparams_search=optuna does), which a sweep that does "
            "not wait never gets. Use hydra.launcher.wait=true with this sweeper, or a plain "
            "sweep (rolefusion-train -m key=a,b,c)."
        )
    if sweeper.get("max_batch_size"):
        raise ValueError(
            f"hydra.launcher.wait=false with hydra.sweeper.max_batch_size="
            f"{sweeper.max_batch_size}: batches each wait for the previous one to end. Limit "
            "the runs at once with hydra.launcher.array_parallelism instead."
        )


def _check_processes_match(
    launcher: dict[str, Any], trainer: DictConfig, overrides: Sequence[str]
) -> None:
    """Refuse, before anything is submitted, a job whose Slurm allocation and Lightning
    disagree on its processes: Lightning takes its ranks from Slurm and stops the job (after
    its wait in the queue) when ``trainer.num_nodes`` is not the job's node count, or when
    ``trainer.devices`` is not its tasks per node."""
    job = " ".join(filter_overrides(overrides)) or "(no overrides)"
    nodes, num_nodes = launcher.get("nodes") or 1, trainer.get("num_nodes") or 1
    if nodes != num_nodes:
        raise ValueError(
            f"hydra.launcher.nodes={nodes} but trainer.num_nodes={num_nodes} (job: {job}): "
            f"each run would get {nodes} node(s) from Slurm and Lightning would expect "
            f"{num_nodes}. Set both to the same number, e.g. trainer.num_nodes={nodes}."
        )
    tasks, devices = launcher.get("tasks_per_node") or 1, trainer.get("devices")
    if tasks > 1 and isinstance(devices, int) and devices > 0 and devices != tasks:
        raise ValueError(
            f"hydra.launcher.tasks_per_node={tasks} but trainer.devices={devices} (job: {job}): "
            "Lightning runs one process per device and takes them from Slurm's tasks, so each "
            f"node needs as many tasks as devices. Set both to the same number, e.g. "
            f"trainer.devices={tasks}."
        )
