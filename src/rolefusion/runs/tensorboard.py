"""TensorBoard whose HParams dashboard scores each run by the metric the sweep optimises."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

HP_METRIC = "hp_metric"


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's TensorBoard logger with ``hp_metric`` following ``optimized_metric``.

    Lightning writes ``hp_metric = -1`` when fitting starts and leaves it there unless the model
    logs it, so the HParams dashboard compares every run at -1. Here the hyperparameters are
    written with the first value of ``hp_metric`` (the first validation), and every later value
    of the optimised metric is written as ``hp_metric`` at the same step: the dashboard shows
    the value a sweep ranks by. A run that never validates has no HParams entry.

    Args:
        hp_metric: the metric ``hp_metric`` copies, e.g. ``val/f1_best``; None: Lightning's -1.
        **kwargs: Lightning's ``TensorBoardLogger`` arguments.
    """

    def __init__(self, *args: Any, hp_metric: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, default_hp_metric=hp_metric is None, **kwargs)
        self._hp_metric = hp_metric
        self._pending_params: dict[str, Any] | None = None

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: dict[str, Any] | None = None,
                        step: int | None = None) -> None:  # fmt: skip
        super().log_hyperparams(params, metrics, step)  # hparams.yaml now; the dashboard...
        if self._hp_metric is not None and metrics is None:
            self._pending_params = params  # ...once hp_metric has a value

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._hp_metric in metrics and HP_METRIC not in metrics:
            value = metrics[self._hp_metric]
            if self._pending_params is not None:
                params, self._pending_params = self._pending_params, None
                super().log_hyperparams(params, {HP_METRIC: value}, step)  # writes hp_metric
            else:
                metrics = {**metrics, HP_METRIC: value}
        super().log_metrics(metrics, step)
