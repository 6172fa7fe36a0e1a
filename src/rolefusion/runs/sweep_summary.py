"""The end of a sweep, said where its command was run: how many jobs finished, failed, were
pruned or did not finish, which failed and why, and the report command to run next.

Read from the job directories with the report's reader (:mod:`rolefusion.runs.sweep_jobs`), so
the summary and the report count the same jobs the same way, and a sweep run again, which skips
its finished jobs, still counts them.
"""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

SHOWN = {"done": "done", "failed": "failed", "pruned": "pruned", "incomplete": "not finished"}
"""The report's job statuses always shown, in this order, as the summary names them; any other
status (``running``) follows when a job has it."""
ERROR_LENGTH = 160


class SweepSummary(Callback):
    """A Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``) that prints
    :func:`sweep_summary` when a multirun ends, locally or on Slurm."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        waited = OmegaConf.select(config, "hydra.launcher.wait", default=True)
        print(sweep_summary(Path(config.hydra.sweep.dir), ask_slurm=not waited), flush=True)


def sweep_summary(sweep_dir: Path, ask_slurm: bool = True) -> str:
    """A few lines: the number of jobs per outcome, each failed job's directory and error, and
    the ``rolefusion-report`` command for this sweep. ``ask_slurm=False`` once the launcher has
    every job's result: Slurm may still list a job whose tasks are exiting, which is not running
    any more (:func:`rolefusion.runs.sweep_jobs.read_jobs`)."""
    # Here, not at the top: Hydra imports this module as every command starts, and the reader
    # brings pandas (0.4 s).
    from rolefusion.runs.sweep_jobs import read_jobs

    try:
        jobs = read_jobs(sweep_dir, ask_slurm)
    except FileNotFoundError:
        return f"sweep {sweep_dir}: no job directories"
    counts = Counter(job.status for job in jobs)
    lines = [f"sweep {sweep_dir}: {len(jobs)} jobs"]
    for status in [*SHOWN, *sorted(counts.keys() - SHOWN.keys())]:
        lines.append(f"  {SHOWN.get(status, status):<13} {counts[status]}")
    for job in jobs:
        if job.status == "failed":
            error = (job.error or "").splitlines()[0][:ERROR_LENGTH]
            lines.append(f"  failed: {job.directory.relative_to(sweep_dir)}: {error}")
    lines.append(f"next: rolefusion-report {shlex.quote(str(sweep_dir))}")
    return "\n".join(lines)
