"""A run directory as the unit of work of a sweep: a finished run is not trained again, an
interrupted one resumes from its ``last.ckpt``, a failed one says why in ``failed.json``."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rolefusion.runs.artifacts import write_json_atomically

log = logging.getLogger(__name__)

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


class RunDirectoryConflict(RuntimeError):
    """A run directory already holds a finished run of a different configuration."""


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


def checkpoint_to_resume(cfg: DictConfig, output_dir: Path) -> str | None:
    """``cfg.ckpt_path`` if given (``last`` meaning this run's ``last.ckpt``), else this run
    directory's ``last.ckpt`` when an interrupted run left one."""
    if cfg.ckpt_path not in (None, "last"):
        return cfg.ckpt_path
    last = output_dir / LAST_CHECKPOINT
    if last.is_file():
        log.info("resuming from %s", last)
        return str(last)
    if cfg.ckpt_path == "last":
        raise FileNotFoundError(f"ckpt_path=last: no {last} to resume from")
    return None


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
