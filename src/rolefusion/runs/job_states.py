"""Which runs of a sweep Slurm still has in its queue: what ``rolefusion-report`` counts as
running, for a sweep submitted without waiting (``hydra.launcher.wait=false``) or still under way.

The Slurm launcher records each job it submits in ``slurm_jobs.json`` in the sweep directory:
its Slurm id, run directory and overrides. A run that has not started has no directory yet, so
this record is how the report knows of it. Slurm is asked (``squeue``) only where that record
exists and ``squeue`` is on the ``PATH``; otherwise nothing is known to be running.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from rolefusion.runs.artifacts import write_json_atomically

SLURM_JOBS = "slurm_jobs.json"


@dataclass(frozen=True)
class SubmittedRun:
    """A run of a sweep as submitted to Slurm; ``directory`` relative to the sweep's."""

    slurm_id: str
    directory: str
    overrides: list[str]


def record_submitted(sweep_dir: Path, runs: list[SubmittedRun]) -> None:
    """Add ``runs`` to the sweep's record; a run submitted again (a re-run sweep) keeps only
    its newest Slurm id."""
    by_directory = {run.directory: run for run in submitted_runs(sweep_dir)}
    by_directory.update({run.directory: run for run in runs})
    write_json_atomically(
        sweep_dir / SLURM_JOBS, {"runs": [asdict(run) for run in by_directory.values()]}
    )


def submitted_runs(sweep_dir: Path) -> list[SubmittedRun]:
    """The runs the launcher recorded in ``sweep_dir`` (none for another launcher's sweep)."""
    path = sweep_dir / SLURM_JOBS
    if not path.is_file():
        return []
    return [SubmittedRun(**run) for run in json.loads(path.read_text())["runs"]]


def still_queued(sweep_dir: Path, directories: list[str]) -> list[str]:
    """The Slurm ids of the jobs recorded for these run directories that Slurm still has: a
    new submission of them would have two jobs write one run directory."""
    recorded = [run.slurm_id for run in submitted_runs(sweep_dir) if run.directory in directories]
    return sorted(queued(recorded) or set())


def queued(slurm_ids: list[str]) -> set[str] | None:
    """Those of ``slurm_ids`` that Slurm still has, pending or running (a requeued job
    included); ``None`` where Slurm cannot be asked (no ``squeue``, or it fails)."""
    if not slurm_ids:
        return set()
    if shutil.which("squeue") is None:
        return None
    # -r: one line per array task, as submitit names them (123_4), not 123_[4-7].
    result = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    if result.returncode != 0:
        return None
    return set(result.stdout.split()) & set(slurm_ids)
