"""A sweep's job directories as the tools that read them see them (``rolefusion-report``, the
summary a sweep ends with): each job's overrides, resolved config, and its outcome from the files
its run left, ``metrics.json`` (finished, or a pruned Optuna trial) or ``failed.json`` (failed)
or neither; a job Slurm still has is running.

One reader, so that the report and the summary count the same jobs the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolefusion.runs.job_states import queued, submitted_runs
from rolefusion.runs.predictions import PREDICTIONS_FILE


@dataclass
class Job:
    directory: Path
    overrides: dict[str, str]
    metrics: dict[str, float] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    queued: bool = False
    """Slurm still has the job, pending or running (:mod:`rolefusion.runs.job_states`)."""

    @property
    def status(self) -> str:
        if self.metrics is not None:
            return "pruned" if (self.result or {}).get("status") == "pruned" else "done"
        if self.queued:
            return "running"
        return "failed" if self.error is not None else "incomplete"

    @property
    def predictions(self) -> Path:
        return self.directory / PREDICTIONS_FILE

    def setting(self, dotted: str, default: Any = None) -> Any:
        """A value of the job's resolved ``config.yaml`` (``data.task``), or ``default``."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def read_jobs(sweep_dir: Path, ask_slurm: bool = True) -> list[Job]:
    """Every job directory (one holding ``.hydra/overrides.yaml``) under ``sweep_dir``, and
    with ``ask_slurm`` the runs Slurm still has. Without it, for a sweep whose launcher waited
    for every job: each has returned its result, though Slurm may list it for a moment longer,
    while its processes exit."""
    jobs = []
    for overrides_file in sorted(sweep_dir.glob("**/.hydra/overrides.yaml")):
        directory = overrides_file.parent.parent
        job = Job(directory, _by_key(yaml.safe_load(overrides_file.read_text()) or []))
        if (directory / "config.yaml").is_file():
            job.config = yaml.safe_load((directory / "config.yaml").read_text()) or {}
        if (directory / "metrics.json").is_file():
            job.result = json.loads((directory / "metrics.json").read_text())
            job.metrics = job.result["metrics"]
        elif (directory / "failed.json").is_file():
            failure = json.loads((directory / "failed.json").read_text())
            job.error = f"{failure['error']}: {failure['message']}"
        jobs.append(job)
    if ask_slurm:
        jobs += mark_queued(sweep_dir, jobs)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job directories (*/.hydra/overrides.yaml)")
    return jobs


def mark_queued(sweep_dir: Path, jobs: list[Job]) -> list[Job]:
    """Mark the jobs Slurm still has; return those of them not started yet (no directory)."""
    runs = submitted_runs(sweep_dir)
    still = queued([run.slurm_id for run in runs]) or set()
    by_directory = {job.directory: job for job in jobs}
    waiting = []
    for run in (run for run in runs if run.slurm_id in still):
        directory = sweep_dir / run.directory
        if directory in by_directory:
            by_directory[directory].queued = True
        else:
            waiting.append(Job(directory, _by_key(run.overrides), queued=True))
    return waiting


def _by_key(overrides: list[str]) -> dict[str, str]:
    """``["+a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}``."""
    return {k.lstrip("+~"): v for k, v in (o.split("=", 1) for o in overrides)}
