"""``csv/metrics.csv`` across a resume: the rows logged before the checkpoint stay, the rows of the
lost stretch after it are dropped (the resumed run logs them again).

Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts, so a resumed run's
log began at the resume point and the curves of the epochs before it were lost.
"""

from __future__ import annotations

import csv
import math

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class ResumableExperimentWriter(ExperimentWriter):
    """Lightning's writer, appending to the ``metrics.csv`` an earlier attempt left."""

    def _check_log_dir_exists(self) -> None:
        # Lightning's version deletes metrics.csv here; this one reads its header instead, so
        # that new rows append under the same columns (new columns rewrite the header).
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])

    def forget_from(self, epoch: int, step: int) -> int:
        """Drop the rows logged at or after (``epoch``, ``step``), where a resumed run starts
        again; return how many. Lightning logs a step's rows before counting it, so a row of
        the resume epoch at ``step`` is the lost stretch's."""
        if not self._fs.isfile(self.metrics_file_path):
            return 0
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            rows = list(csv.DictReader(file))
        kept = [row for row in rows if _logged_before(row, epoch, step)]
        if len(kept) < len(rows):
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
        return len(rows) - len(kept)


def _logged_before(row: dict[str, str], epoch: int, step: int) -> bool:
    """Whether a row precedes (``epoch``, ``step``); a row without an epoch (one logged by hand
    with its own step) goes by its step alone."""
    row_step = float(row["step"]) if row.get("step") else math.inf
    if row.get("epoch"):
        return (float(row["epoch"]), row_step) < (epoch, step)
    return row_step < step


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger whose ``metrics.csv`` survives a resume (with
    :class:`TrimResumedCSVLog`)."""

    @property
    def experiment(self) -> ResumableExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ResumableExperimentWriter(log_dir=self.log_dir)
        return self._experiment


class TrimResumedCSVLog(L.Callback):
    """When a run resumes, drop its CSV log's rows from where training starts again: once
    Lightning has restored the checkpoint, before the first new row."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step == 0 or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.experiment.forget_from(trainer.current_epoch, trainer.global_step)
