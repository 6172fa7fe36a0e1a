"""``rolefusion-train``: compose the config, build everything, fit, test, report.

Any Hydra override works, e.g.
``rolefusion-train model/fusion=sequence model/text_encoder=gru trainer.max_epochs=5``.

A run directory is the unit of work of a sweep: a job whose directory already holds its
``metrics.json`` is not trained again, a job whose directory holds ``checkpoints/last.ckpt``
resumes from it (a re-run sweep, a requeued Slurm job) if it has the same overrides, and a job
that fails leaves ``failed.json`` with its error instead of stopping the other jobs. A job of a
pruning Optuna search whose trial is pruned stops training there, is not tested (it lost to
other trials) and says so in its ``metrics.json`` (``status: pruned``, ``stopped_epoch``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from rolefusion.config.checks import check_targets
from rolefusion.models.attribution import attribution_enabled
from rolefusion.models.metrics import per_class_scores
from rolefusion.models.module import CONFUSION_MATRIX
from rolefusion.runs.artifacts import (
    log_test_details,
    print_metrics_table,
    scalar_metrics,
    write_json_atomically,
)
from rolefusion.runs.build import build_model, instantiate_all, prepared_datamodule
from rolefusion.runs.ceilings import model_ceilings
from rolefusion.runs.data_modalities import drop_absent_modalities
from rolefusion.runs.directory import (
    checkpoint_to_resume,
    finished_metrics,
    log_file_on_rank_zero_only,
    record_checkpoint_overrides,
    record_failure,
    task_overrides,
)
from rolefusion.runs.loggers import finish_loggers
from rolefusion.runs.modality_shares import summary_of
from rolefusion.runs.optuna_pruning import pruned_epoch
from rolefusion.runs.predictions import PREDICTIONS_FILE, collected_predictions, write_predictions
from rolefusion.runs.provenance import provenance
from rolefusion.runs.rendezvous import check_rendezvous_address

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test one configuration; return every logged metric (``test/f1``, ...)."""
    check_targets(cfg)
    log_file_on_rank_zero_only(rank_zero_only.rank)
    output_dir = Path(cfg.paths.output_dir)
    done = finished_metrics(output_dir, task_overrides())
    if done is not None:
        log.info("%s already holds this run's metrics.json: not training again", output_dir)
        return done
    absent = drop_absent_modalities(cfg)
    resume = checkpoint_to_resume(cfg, output_dir, task_overrides()) if cfg.train else None
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # every rank of a multi-process Slurm job runs this
        log.info("run directory: %s", output_dir)
        (output_dir / "failed.json").unlink(missing_ok=True)  # an earlier attempt's
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        write_json_atomically(output_dir / "provenance.json", provenance(cfg.seed))
        if cfg.train:
            record_checkpoint_overrides(output_dir, task_overrides())

    datamodule = prepared_datamodule(cfg)
    if rank_zero_only.rank == 0:
        datamodule.save(output_dir)
    model = build_model(cfg, datamodule.spec)
    model.attribution = attribution_enabled(cfg.attribution, tuple(model.net.encoders),
                                            "attribution")  # fmt: skip
    # Lightning logs these with the model's hyperparameters when fitting starts, in the process
    # that fits (a spawned one under ddp_spawn): the run's config in W&B, hparams.yaml, ...
    datamodule.save_hyperparameters(
        {"config": OmegaConf.to_container(cfg, resolve=True), "data_summary": datamodule.summary()}
    )
    loggers = instantiate_all(cfg.logger)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=instantiate_all(cfg.callbacks), logger=loggers or False
    )
    check_rendezvous_address(trainer)

    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
    metrics = scalar_metrics(trainer.callback_metrics)
    stopped_epoch = pruned_epoch(trainer)
    test = cfg.test and stopped_epoch is None

    best_checkpoint = (
        trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    )
    details: dict[str, Any] = {}
    if test:
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
        collected = collected_predictions(trainer.callback_metrics)
        if "shapley" in collected:
            details["attribution"] = summary_of(collected, model)
        log_test_details(trainer.loggers, details, datamodule.spec.class_names)

    if trainer.is_global_zero and test:  # before metrics.json, which marks the run finished
        write_predictions(output_dir / PREDICTIONS_FILE, trainer.callback_metrics,
                          datamodule.examples["test"], model.hparams,
                          list(model.net.encoders))  # fmt: skip
    if trainer.is_global_zero:
        write_json_atomically(
            output_dir / "metrics.json",
            {
                "status": "completed" if stopped_epoch is None else "pruned",
                **({} if stopped_epoch is None else {"stopped_epoch": stopped_epoch}),
                "metrics": metrics,
                **details,
                "classes": list(datamodule.spec.class_names),
                "modalities": list(datamodule.modalities),
                **({"absent_modalities": absent} if absent else {}),
                **_ceilings(datamodule, model),
                "best_checkpoint": best_checkpoint,
                "overrides": task_overrides(),
                "seed": cfg.seed,
                "task_name": cfg.task_name,
            },
        )
    if trainer.is_global_zero and test:
        print_metrics_table(metrics, "test")
        log.info("metrics: %s", output_dir / "metrics.json")
    finish_loggers(trainer.loggers)
    return metrics


def _ceilings(datamodule: Any, model: Any) -> dict[str, Any]:
    """``{"ceilings": ...}`` when the data knows the best accuracy of this model's class."""
    ceilings = model_ceilings(datamodule.source, model.net.fusion)
    return {} if ceilings is None else {"ceilings": ceilings}


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
