"""Weights & Biases for runs nobody should have to babysit: never a prompt, never a failed run
because the server is unreachable, offline unless the machine has an API key, and one W&B run per
run directory, however often the run is interrupted and resumed."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

OFFLINE_MODES = ("offline", "dryrun", "disabled")
RUN_ID_FILE = "wandb_run_id"
"""The W&B run id of a run directory, in the directory (beside ``wandb/``): a resumed or
requeued run reads it and continues that W&B run instead of starting another."""


def stored_run_id(run_dir: str | os.PathLike | None) -> str | None:
    """The W&B run id kept in ``run_dir``, or None for a directory that has none yet."""
    path = Path(run_dir or ".") / RUN_ID_FILE
    run_id = path.read_text().strip() if path.is_file() else ""
    return run_id or None


def store_run_id(run_dir: str | os.PathLike | None, run_id: str) -> None:
    """Keep ``run_id`` in ``run_dir`` (through a temporary file: never half an id)."""
    path = Path(run_dir or ".") / RUN_ID_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{RUN_ID_FILE}.partial")
    partial.write_text(run_id + "\n")
    partial.replace(path)


def wandb_api_key_configured() -> bool:
    """Whether W&B could log in without asking: ``WANDB_API_KEY``, or ``wandb login``'s
    entry in ``~/.netrc``. ``WANDB_MODE`` decides first when it is set."""
    mode = os.environ.get("WANDB_MODE", "")
    if mode in OFFLINE_MODES:
        return False
    if mode == "online" or os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="replace")


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, offline by default and falling back to offline on failure, that
    continues the W&B run its run directory (``save_dir``) already holds.

    The run's id is kept in ``save_dir`` (:data:`RUN_ID_FILE`) as the run starts; a logger made
    for a directory holding one passes it to ``wandb.init`` with Lightning's ``resume="allow"``,
    so a killed and resumed run, or a requeued Slurm job, logs on into the same W&B run (offline
    too: each attempt leaves an ``offline-run-*`` folder of that id for ``wandb sync``). A fresh
    directory gets a fresh id; an explicit ``id`` wins over the stored one.

    Args:
        offline: None (the default) logs online only when :func:`wandb_api_key_configured`.
        init_timeout: seconds to wait for the W&B server before logging offline instead.
        **kwargs: Lightning's ``WandbLogger`` arguments and ``wandb.init``'s (project, entity,
            group, tags, job_type, ...).
    """

    def __init__(self, *args: Any, offline: bool | None = None, init_timeout: float = 30,
                 **kwargs: Any) -> None:  # fmt: skip
        import wandb

        offline = not wandb_api_key_configured() if offline is None else offline
        kwargs.setdefault("settings", wandb.Settings(init_timeout=init_timeout))
        if not (kwargs.get("id") or kwargs.get("version")):
            kwargs["id"] = stored_run_id(kwargs.get("save_dir"))
        super().__init__(*args, offline=offline, **kwargs)

    @property
    def experiment(self) -> Any:
        # Lightning switches an offline run on by setting WANDB_MODE for the whole process;
        # put it back, or every later job of a sweep in this process would be offline too.
        mode = os.environ.get("WANDB_MODE")
        started = self._experiment is not None
        if not started and rank_zero_only.rank == 0:
            close_a_failed_jobs_run()
        try:
            run = self._start()
            if not started and rank_zero_only.rank == 0:
                self._keep_run_id(run.id)
            return run
        finally:
            if mode is None:
                os.environ.pop("WANDB_MODE", None)
            else:
                os.environ["WANDB_MODE"] = mode

    def _keep_run_id(self, run_id: str) -> None:
        if stored_run_id(self.save_dir) != run_id:
            store_run_id(self.save_dir, run_id)

    def _start(self) -> Any:
        try:
            return super().experiment
        except Exception as error:  # wandb raises several types for "cannot reach the server"
            if self._offline:
                raise
            log.warning(
                "W&B unreachable (%s): logging offline instead; upload the run later with "
                "`wandb sync %s/wandb/offline-run-*`", error, self.save_dir,
            )  # fmt: skip
            self._offline = True
            # Said to wandb.init itself: the WANDB_MODE that Lightning sets for offline runs is
            # ignored once a session has started, and the failed attempt started one.
            self._wandb_init["mode"] = "offline"
            return super().experiment


def close_a_failed_jobs_run() -> None:
    """Finish, marked failed, a W&B run still open as a job starts its own: a job of the same
    sweep process that failed left it (a job that finishes closes its run with
    :func:`finish_loggers`), and Lightning would log this job into it, under the other job's id."""
    import wandb

    if wandb.run is not None:
        log.warning("W&B run %s of an earlier job that failed was still open: finished as failed",
                    wandb.run.id)  # fmt: skip
        wandb.finish(exit_code=1)


def finish_loggers(loggers: Iterable[Any]) -> None:
    """Close W&B's run, so that the next job of a sweep in this process starts its own."""
    for logger in loggers:
        if isinstance(logger, LightningWandbLogger):
            import wandb

            wandb.finish()
