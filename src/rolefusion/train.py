"""``rolefusion-train``: compose the config, build everything, fit, test, report.

Any Hydra override works, e.g.
``rolefusion-train model/fusion=sequence model/text_encoder=gru trainer.max_epochs=5``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rolefusion.build import build_model, prepared_datamodule
from rolefusion.config import check_targets, register_configs
from rolefusion.run_summary import print_metrics_table, write_json_atomically

log = logging.getLogger(__name__)
register_configs()

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
"""The checkout's ``conf/``: rolefusion is installed editable from a checkout, configs and all."""


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """Callbacks and loggers are dicts of named configs; an empty or null group means none."""
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test one configuration; return every logged metric (``test/f1``, ...)."""
    check_targets(cfg)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    datamodule = prepared_datamodule(cfg)
    datamodule.save(output_dir)
    model = build_model(cfg, datamodule.spec)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=_instantiate_all(cfg.callbacks),
        logger=_instantiate_all(cfg.logger) or False,
    )

    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}

    best_checkpoint = (
        trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    )
    if cfg.test:
        if not best_checkpoint:
            log.warning("no best checkpoint was saved (fast_dev_run?): testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best_checkpoint or None, verbose=False)
        metrics.update(
            {n: float(v) for n, v in trainer.callback_metrics.items() if n.startswith("test/")}
        )

    write_json_atomically(
        output_dir / "metrics.json",
        {
            "metrics": metrics,
            "best_checkpoint": best_checkpoint,
            "overrides": _overrides(),
            "seed": cfg.seed,
            "task_name": cfg.task_name,
        },
    )
    if trainer.is_global_zero and cfg.test:
        print_metrics_table(metrics, "test")
        log.info("run directory: %s", output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Entry point; returns ``optimized_metric`` so Hydra sweepers (Optuna) can optimise it."""
    metrics = train(cfg)
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
