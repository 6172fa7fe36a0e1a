"""Weights & Biases for runs nobody should have to babysit: never a prompt, never a failed run
because the server is unreachable, and offline unless the machine has an API key."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

log = logging.getLogger(__name__)

OFFLINE_MODES = ("offline", "dryrun", "disabled")


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
    """Lightning's W&B logger, offline by default and falling back to offline on failure.

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
        super().__init__(*args, offline=offline, **kwargs)

    @property
    def experiment(self) -> Any:
        # Lightning switches an offline run on by setting WANDB_MODE for the whole process;
        # put it back, or every later job of a sweep in this process would be offline too.
        mode = os.environ.get("WANDB_MODE")
        try:
            return self._start()
        finally:
            if mode is None:
                os.environ.pop("WANDB_MODE", None)
            else:
                os.environ["WANDB_MODE"] = mode

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


def finish_loggers(loggers: Iterable[Any]) -> None:
    """Close W&B's run, so that the next job of a sweep in this process starts its own."""
    for logger in loggers:
        if isinstance(logger, LightningWandbLogger):
            import wandb

            wandb.finish()
