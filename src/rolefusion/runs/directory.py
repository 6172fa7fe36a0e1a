"""A run directory as the unit of work of a sweep: a finished run is not trained again, an
interrupted one resumes from its ``last.ckpt`` (only with the overrides it was trained with), a
failed one says why in ``failed.json``."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rolefusion.runs.artifacts import write_json_atomically
from rolefusion.runs.checkpoint_files import NotARolefusionCheckpoint, check_checkpoint_file

log = logging.getLogger(__name__)

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
CHECKPOINT_OVERRIDES = Path("checkpoint_overrides.json")


class RunDirectoryConflict(RuntimeError):
    """A run directory already holds a finished or interrupted run of other overrides."""


def task_overrides() -> list[str]:
    """The command line's overrides of this run (empty outside a Hydra command)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def finished_metrics(output_dir: Path, overrides: list[str]) -> dict[str, float] | None:
    """The metrics of a run that already finished in ``output_dir`` with these overrides."""
    path = output_dir / "metrics.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if sorted(record.get("overrides", [])) != sorted(overrides):
        raise RunDirectoryConflict(
            f"{output_dir} holds a finished run of other overrides {record.get('overrides')}, "
            f"not {overrides}; give this sweep its own hydra.sweep.dir"
        )
    return record["metrics"]


def checkpoint_to_resume(cfg: DictConfig, output_dir: Path, overrides: list[str]) -> str | None:
    """The checkpoint this run starts from: ``cfg.ckpt_path`` if given (``last`` meaning this
    run's ``last.ckpt``), else this run directory's ``last.ckpt`` when an interrupted run of the
    same overrides left one. Checked whole before any data is read."""
    if cfg.ckpt_path not in (None, "last"):
        return str(check_checkpoint_file(cfg.ckpt_path))
    last = output_dir / LAST_CHECKPOINT
    if not last.is_file():
        if cfg.ckpt_path == "last":
            raise FileNotFoundError(f"ckpt_path=last: no {last} to resume from")
        return None
    try:
        check_checkpoint_file(last)
    except NotARolefusionCheckpoint as error:
        hint = "Delete it to train this run from the start."
        raise NotARolefusionCheckpoint(f"{error} {hint}") from None
    if cfg.ckpt_path is None:
        _refuse_other_overrides(output_dir, overrides)
    log.info("resuming from %s", last)
    return str(last)


def record_checkpoint_overrides(output_dir: Path, overrides: list[str]) -> None:
    """Remember the overrides this directory's checkpoints are trained with: Hydra rewrites its
    own record (``.hydra/overrides.yaml``) as each command starts, before it can be compared."""
    write_json_atomically(output_dir / CHECKPOINT_OVERRIDES, {"overrides": overrides})


def _refuse_other_overrides(output_dir: Path, overrides: list[str]) -> None:
    record = output_dir / CHECKPOINT_OVERRIDES
    if not record.is_file():
        log.warning("%s: no record of the overrides its checkpoints were trained with (an older "
                    "run): resuming without checking them", output_dir)  # fmt: skip
        return
    before = _by_key(json.loads(record.read_text())["overrides"])
    now = _by_key(overrides)
    changed = [
        f"{key}: {before.get(key, '(not set)')} -> {now.get(key, '(not set)')}"
        for key in sorted(before.keys() | now.keys())
        if before.get(key) != now.get(key)
    ]
    if changed:
        raise RunDirectoryConflict(
            f"{output_dir} holds the checkpoints of an interrupted run with other overrides "
            f"({'; '.join(changed)}); resuming it would go on training the old run while this "
            "run's config is recorded. Give this run its own directory (hydra.run.dir=..., or "
            "hydra.sweep.dir=... for a sweep), or resume the old one deliberately with "
            "ckpt_path=last (or the path of any checkpoint)."
        )


def _by_key(overrides: list[str]) -> dict[str, str]:
    """``["a.b=1", "+c=x"]`` -> ``{"a.b": "1", "+c": "x"}``."""
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in overrides)


def record_failure(output_dir: Path, error: BaseException) -> None:
    """Write what went wrong into the run directory, for people and ``rolefusion-report``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(
        output_dir / "failed.json",
        {
            "error": type(error).__name__,
            "message": str(error),
            "traceback": traceback.format_exception(error),
            "overrides": task_overrides(),
        },
    )


def log_file_on_rank_zero_only(rank: int) -> None:
    """In every rank of a multi-process job but the first, stop writing the run's log file
    (Hydra's ``train.log``): each rank runs the whole command, and the run directory holds one
    run's files, written by rank 0. The other ranks still log to their stderr (under Slurm,
    each task's own ``.err`` file)."""
    if rank == 0:
        return
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
