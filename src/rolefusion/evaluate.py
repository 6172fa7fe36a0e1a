"""``rolefusion-eval``: a checkpoint's metrics on a split, with per-class scores and the
confusion matrix, from nothing but the checkpoint and its run directory.

Evaluating a run's best checkpoint on its test split reproduces the run's test metrics: the same
model, the same label map, tokenizer and normalization, the same batches.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from rolefusion.config import register_configs
from rolefusion.models.metrics import per_class_scores
from rolefusion.models.module import CONFUSION_MATRIX
from rolefusion.plots import plot_confusion_matrix
from rolefusion.restore import restore
from rolefusion.run_summary import print_metrics_table, write_json_atomically
from rolefusion.train import CONFIG_DIR, scalar_metrics

log = logging.getLogger(__name__)
register_configs()

SPLITS = ("train", "val", "test")


def evaluate(ckpt_path: str, split: str = "test", data: DictConfig | None = None) -> dict[str, Any]:
    """Metrics (``<split>/f1``, ...), per-class scores and the confusion matrix of a checkpoint."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    run = restore(ckpt_path, data)
    run.datamodule.read(split)
    # One process, every batch: the run's own trainer settings, minus how it was distributed
    # or cut short for debugging.
    trainer: L.Trainer = instantiate(
        run.cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False,
        enable_progress_bar=False, devices=1, num_nodes=1, strategy="auto", fast_dev_run=False,
        limit_test_batches=1.0,
    )  # fmt: skip
    trainer.test(run.model, dataloaders=run.datamodule.dataloader(split), verbose=False)
    metrics = {
        f"{split}/{name.removeprefix('test/')}": float(value)
        for name, value in scalar_metrics(trainer.callback_metrics).items()
        if name.startswith("test/")
    }
    class_names = list(run.model.hparams.class_names)
    confusion = trainer.callback_metrics[CONFUSION_MATRIX]
    return {
        "metrics": metrics,
        "per_class": per_class_scores(confusion, class_names),
        "confusion_matrix": confusion.tolist(),
        "classes": class_names,
        "checkpoint": str(Path(ckpt_path).resolve()),
        "split": split,
        "examples": len(run.datamodule.examples[split]),
        "dropped": run.datamodule.summary()["dropped"].get(split),
    }


def plot_confusion(result: dict[str, Any], path: Path) -> None:
    matrix = np.array(result["confusion_matrix"])
    if matrix.ndim != 2:  # multilabel: one 2x2 table per class, in metrics.json only
        return
    title = f"{result['split']}: {Path(result['checkpoint']).name}"
    plot_confusion_matrix(matrix, result["classes"], title, path)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    result = evaluate(cfg.ckpt_path, cfg.split, cfg.get("data"))
    run_dir = Path(cfg.ckpt_path).resolve().parent.parent
    out_dir = Path(cfg.out_dir) if cfg.out_dir else run_dir / "eval" / cfg.split
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out_dir / "metrics.json", result)
    plot_confusion(result, out_dir / "confusion_matrix.png")
    print_metrics_table(result["metrics"], cfg.split)
    log.info("written: %s", out_dir / "metrics.json")


if __name__ == "__main__":
    main()
