"""``rolefusion-train``: compose the config, build everything, fit, test, report.

Any Hydra override works, e.g.
``rolefusion-train model/fusion=sequence model/text_encoder=gru trainer.max_epochs=5``.

A run directory is the unit of work of a sweep: a job whose directory already holds its
``metrics.json`` is not trained again, a job whose directory holds ``checkpoints/last.ckpt``
resumes from it (a re-run sweep, a requeued Slurm job), and a job that fails leaves
``failed.json`` with its error instead of stopping the other jobs.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from rolefusion.build import build_model, prepared_datamodule
from rolefusion.config import check_targets, register_configs
from rolefusion.models.metrics import per_class_scores
from rolefusion.models.module import CONFUSION_MATRIX
from rolefusion.provenance import provenance
from rolefusion.run_summary import (
    log_test_details,
    print_metrics_table,
    write_json_atomically,
)

log = logging.getLogger(__name__)
register_configs()

"""The checkout's ``conf/``: rolefusion is installed editable from a checkout, configs and all."""

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


class RunDirectoryConflict(RuntimeError):
    """A run directory already holds a finished run of a different configuration."""


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """Callbacks and loggers are dicts of named configs; an empty or null group means none."""
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def scalar_metrics(callback_metrics: dict[str, Any]) -> dict[str, float]:
    """Every scalar metric as a float (the test confusion matrix travels there too)."""
    return {name: float(v) for name, v in callback_metrics.items() if v.numel() == 1}


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


def _checkpoint_to_resume(cfg: DictConfig, output_dir: Path) -> str | None:
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


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test one configuration; return every logged metric (``test/f1``, ...)."""
    check_targets(cfg)
    output_dir = Path(cfg.paths.output_dir)
    done = finished_metrics(output_dir, _overrides())
    if done is not None:
        log.info("%s already holds this run's metrics.json: not training again", output_dir)
        return done
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # every rank of a multi-process Slurm job runs this
        (output_dir / "failed.json").unlink(missing_ok=True)  # an earlier attempt's
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        write_json_atomically(output_dir / "provenance.json", provenance(cfg.seed))

    datamodule = prepared_datamodule(cfg)
    if rank_zero_only.rank == 0:
        datamodule.save(output_dir)
    model = build_model(cfg, datamodule.spec)
    # Lightning logs these with the model's hyperparameters when fitting starts, in the process
    # that fits (a spawned one under ddp_spawn): the run's config in W&B, hparams.yaml, ...
    datamodule.save_hyperparameters(
        {"config": OmegaConf.to_container(cfg, resolve=True), "data_summary": datamodule.summary()}
    )
    loggers = _instantiate_all(cfg.logger)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=_instantiate_all(cfg.callbacks), logger=loggers or False
    )

    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=_checkpoint_to_resume(cfg, output_dir))
    metrics = scalar_metrics(trainer.callback_metrics)

    best_checkpoint = (
        trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    )
    details: dict[str, Any] = {}
    if cfg.test:
        if not best_checkpoint:
            log.warning("no best checkpoint was saved (fast_dev_run?): testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best_checkpoint or None, verbose=False)
        tested = scalar_metrics(trainer.callback_metrics)
        metrics.update({n: v for n, v in tested.items() if n.startswith("test/")})
        confusion = trainer.callback_metrics[CONFUSION_MATRIX]
        details = {
            "per_class": per_class_scores(confusion, datamodule.spec.class_names),
            "confusion_matrix": confusion.tolist(),
        }
        log_test_details(trainer.loggers, details, datamodule.spec.class_names)

    if trainer.is_global_zero:
        write_json_atomically(
            output_dir / "metrics.json",
            {
                "metrics": metrics,
                **details,
                "classes": list(datamodule.spec.class_names),
                "best_checkpoint": best_checkpoint,
                "overrides": _overrides(),
                "seed": cfg.seed,
                "task_name": cfg.task_name,
            },
        )
    if trainer.is_global_zero and cfg.test:
        print_metrics_table(metrics, "test")
        log.info("run directory: %s", output_dir)
    _finish_loggers(trainer.loggers)
    return metrics


def _finish_loggers(loggers: list) -> None:
    """Close W&B's run, so that the next job of a sweep in this process starts its own."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


def record_failure(output_dir: Path, error: BaseException) -> None:
    """Write what went wrong into the run directory, for people and ``rolefusion-report``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(
        output_dir / "failed.json",
        {
            "error": type(error).__name__,
            "message": str(error),
            "traceback": traceback.format_exception(error),
            "overrides": _overrides(),
        },
    )


def run(cfg: DictConfig) -> float | None:
    """Entry point; returns ``optimized_metric`` so Hydra sweepers (Optuna) can optimise it.

    In a sweep, a failing job is recorded (``failed.json``) and scores NaN, so the other jobs
    run on; a single run re-raises.
    """
    try:
        metrics = train(cfg)
    except Exception as error:
        if rank_zero_only.rank == 0:
            record_failure(Path(cfg.paths.output_dir), error)
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.exception("job failed; recorded in %s/failed.json", cfg.paths.output_dir)
        return math.nan
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    from rolefusion.cli import train

    train()
