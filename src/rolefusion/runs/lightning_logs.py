"""Lightning's log lines through Hydra's handlers only, so that each is printed once and also
reaches the run's log file.

``import lightning`` gives the ``lightning`` logger a stderr handler of its own, whatever logging
is configured already, and lets it propagate to the root logger too: once Hydra has configured
the root (a console handler and ``train.log``), every Lightning line ("GPU available: ...",
"Seed set to ...") is printed twice, once per handler. Hydra's ``job_logging`` cannot remove
the extra handler: our commands import Lightning only when the job starts, after Hydra has
configured logging, and the import adds it again.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


class LightningLogsThroughHydra(Callback):
    """A Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``) that imports
    Lightning as each job starts (the job would import it a moment later) and leaves its log
    records to the root logger's handlers, when Hydra has configured any."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        route_lightning_logs_to_root()


def route_lightning_logs_to_root() -> None:
    """Remove the handlers Lightning gave its own loggers, if the root logger has handlers to
    print and write their records instead (else Lightning's would be the only ones)."""
    if not logging.getLogger().handlers:
        return
    import lightning  # noqa: F401  (adds the handler this removes)

    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
