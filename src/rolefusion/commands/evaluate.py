"""``rolefusion-eval``: a checkpoint's metrics on a split, with per-class scores and the
confusion matrix, from nothing but the checkpoint and its run directory.

Evaluating a run's best checkpoint on its test split reproduces the run's test metrics: the same
model, the same label map, tokenizer and normalization, the same batches.

Beside the metrics it says why the model decided and how far its confidence can be trusted:
each example's Shapley values over modalities (``attribution``), the expected calibration error
and Brier score with a reliability diagram, and, with ``calibrate=true``, a temperature fitted on
the validation split (docs/understanding.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from rolefusion.choices import SPLITS, Split
from rolefusion.config.checks import check_targets
from rolefusion.data.batch import Batch
from rolefusion.models.attribution import attribution_enabled
from rolefusion.models.calibration import (
    Calibration,
    checkpoint_digest,
    confidence_and_correct,
    fit_temperature,
    nll,
    reliability,
    write_calibration,
)
from rolefusion.models.metrics import class_probabilities, per_class_scores
from rolefusion.models.module import CONFUSION_MATRIX
from rolefusion.robustness.corruptions import Corruption, InputEncoding
from rolefusion.robustness.suite import (
    plot_curves,
    print_table,
    read_reference,
    run_suite,
    summarize,
    write_markdown,
)
from rolefusion.runs.artifacts import print_metrics_table, scalar_metrics, write_json_atomically
from rolefusion.runs.modality_shares import (
    attributed_classes,
    card_rows,
    plot_class_shares,
    plot_example_cards,
    summary_of,
)
from rolefusion.runs.plots import plot_confusion_matrix
from rolefusion.runs.predictions import PREDICTIONS_FILE, collected_predictions, write_predictions
from rolefusion.runs.reliability import plot_reliability
from rolefusion.runs.restore import restore

log = logging.getLogger(__name__)


class Evaluation:
    """A restored checkpoint, ready to score batches of one split on one process."""

    def __init__(
        self,
        ckpt_path: str,
        split: Split = "test",
        data: DictConfig | None = None,
        attribution: bool | str = "auto",
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        self.ckpt_path, self.split = ckpt_path, split
        self.run = restore(ckpt_path, data)
        self.run.model.attribution = attribution_enabled(
            attribution, self.modalities, "attribution"
        )
        self.run.datamodule.read(split)
        # One process, every batch: the run's own trainer settings, minus how it was distributed
        # or cut short for debugging.
        self.trainer: L.Trainer = instantiate(
            self.run.cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False,
            enable_progress_bar=False, devices=1, num_nodes=1, strategy="auto",
            fast_dev_run=False, limit_test_batches=1.0,
        )  # fmt: skip

    def score(self, batches: Iterable[Batch]) -> dict[str, float]:
        """The test metrics of ``batches`` (``f1``, ``acc``, ...); the confusion matrix stays in
        ``trainer.callback_metrics``."""
        self.trainer.test(self.run.model, dataloaders=batches, verbose=False)
        return {
            name.removeprefix("test/"): float(value)
            for name, value in scalar_metrics(self.trainer.callback_metrics).items()
            if name.startswith("test/")
        }

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the model reads, in its order."""
        return tuple(self.run.model.net.encoders)

    def clean(self) -> dict[str, Any]:
        """Metrics, per-class scores, the confusion matrix and (when the model attributes) the
        attribution summary on the uncorrupted split."""
        metrics = self.score(self.run.datamodule.dataloader(self.split))
        class_names = list(self.run.model.hparams.class_names)
        confusion = self.trainer.callback_metrics[CONFUSION_MATRIX]
        collected = collected_predictions(self.trainer.callback_metrics)
        attribution = (
            {"attribution": summary_of(collected, self.run.model)} if "shapley" in collected else {}
        )
        return {
            "metrics": {f"{self.split}/{name}": value for name, value in metrics.items()},
            "per_class": per_class_scores(confusion, class_names),
            "confusion_matrix": confusion.tolist(),
            "classes": class_names,
            "checkpoint": str(Path(self.ckpt_path).resolve()),
            "split": self.split,
            "examples": len(self.run.datamodule.examples[self.split]),
            "dropped": self.run.datamodule.summary()["dropped"].get(self.split),
            **attribution,
        }

    @torch.no_grad()
    def logits(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, C]`` float logits and the targets of ``split``, on the CPU."""
        self.run.datamodule.read(split)
        model = self.run.model.eval()
        logits, targets = [], []
        for batch in self.run.datamodule.dataloader(split):
            logits.append(model(batch.to(model.device)).float().cpu())
            targets.append(batch.label)
        return torch.cat(logits), torch.cat(targets)

    def calibrate(self) -> tuple[dict[str, Any], np.ndarray]:
        """Fit a temperature on the validation split and store it beside the checkpoint; returns
        what it does to the NLL and ECE of the validation split and of the evaluated one, and the
        evaluated split's calibrated probabilities ``[N, C]``."""
        task = self.run.model.hparams.task
        fitted_on, split_scores = self.logits("val"), self.logits(self.split)
        temperature = fit_temperature(*fitted_on, task)
        before_after = {
            name: _calibration_scores(logits, target, task, temperature)
            for name, (logits, target) in {"val": fitted_on, self.split: split_scores}.items()
        }
        record = Calibration(
            temperature=temperature,
            fitted_on="val",
            examples=len(fitted_on[0]),
            nll_before=before_after["val"]["nll_before"],
            nll_after=before_after["val"]["nll_after"],
            ece_before=before_after["val"]["ece_before"],
            ece_after=before_after["val"]["ece_after"],
            checkpoint=Path(self.ckpt_path).name,
            checkpoint_sha256=checkpoint_digest(self.ckpt_path),
        )
        path = write_calibration(self.ckpt_path, record)
        log.info("temperature %.4f fitted on val: written to %s", temperature, path)
        probabilities = class_probabilities(task, split_scores[0] / temperature).numpy()
        return {
            "temperature": temperature,
            "file": str(path),
            "splits": before_after,
        }, probabilities

    def robustness(
        self, clean: dict[str, Any], suite: Mapping[str, Corruption], seed: int
    ) -> dict[str, Any]:
        """Metrics under every corruption of ``suite`` (see :mod:`rolefusion.robustness.suite`)."""
        self.run.model.attribution = False  # the clean split's values are the ones asked for
        datamodule = self.run.datamodule
        encoding = InputEncoding.of(datamodule.tokenizer, datamodule.mean, datamodule.std)
        clean_metrics = {k.removeprefix(f"{self.split}/"): v for k, v in clean["metrics"].items()}
        return run_suite(
            self.score, datamodule.dataloader(self.split), suite, encoding,
            datamodule.modalities, clean_metrics, seed,
        )  # fmt: skip


def _calibration_scores(
    logits: torch.Tensor, target: torch.Tensor, task: str, temperature: float
) -> dict[str, float]:
    """NLL and ECE of ``logits`` as they are and divided by ``temperature``."""
    scores = {}
    for when, scale in (("before", 1.0), ("after", temperature)):
        probabilities = class_probabilities(task, logits / scale).numpy()
        confidence, correct = confidence_and_correct(probabilities, target.numpy(), task)
        scores[f"nll_{when}"] = nll(logits, target, task, scale)
        scores[f"ece_{when}"] = reliability(confidence, correct).ece
    return scores


def evaluate(
    ckpt_path: str,
    split: Split = "test",
    data: DictConfig | None = None,
    attribution: bool | str = "auto",
) -> dict[str, Any]:
    """Metrics (``<split>/f1``, ...), per-class scores, the confusion matrix and (``attribution``:
    auto, true or false) the attribution summary of a checkpoint."""
    return Evaluation(ckpt_path, split, data, attribution).clean()


def selected_corruptions(suite: Mapping[str, Any], names: Sequence[str]) -> dict[str, Corruption]:
    """The corruptions named in ``corruptions`` (``all``: the whole suite), instantiated."""
    chosen = list(suite) if list(names) == ["all"] else list(names)
    unknown = [name for name in chosen if name not in suite]
    if unknown:
        raise ValueError(
            f"corruptions: unknown {unknown}; expected 'all' or names from corruption_suite: "
            f"{', '.join(suite)}"
        )
    return {name: instantiate(suite[name], _convert_="all") for name in chosen}


def plot_confusion(result: dict[str, Any], path: Path) -> None:
    matrix = np.array(result["confusion_matrix"])
    if matrix.ndim != 2:  # multilabel: one 2x2 table per class, in metrics.json only
        return
    title = f"{result['split']}: {Path(result['checkpoint']).name}"
    plot_confusion_matrix(matrix, result["classes"], title, path)


def write_robustness(out_dir: Path, results: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """``robustness.json``, ``robustness.md`` and (for graded corruptions) ``robustness.png``."""
    rows = results["summary"]
    write_json_atomically(out_dir / "robustness.json", results)
    write_markdown(out_dir / "robustness.md", rows, "f1", title)
    plot_curves(rows, "f1", title, out_dir / "robustness.png")
    return rows


def run(cfg: DictConfig) -> None:
    # Bad names, settings and reference files fail before any evaluation runs or file is written.
    if cfg.get("data") is not None:
        check_targets(cfg.data, "data")
    suite = selected_corruptions(cfg.corruption_suite, cfg.corruptions)
    reference = read_reference(cfg.robustness_reference) if cfg.robustness_reference else None
    evaluation = Evaluation(cfg.ckpt_path, cfg.split, cfg.get("data"), cfg.attribution)
    model = evaluation.run.model
    result = evaluation.clean()
    calibrated = None
    if cfg.calibrate:
        result["calibration"], calibrated = evaluation.calibrate()
    run_dir = Path(cfg.ckpt_path).resolve().parent.parent
    out_dir = Path(cfg.out_dir) if cfg.out_dir else run_dir / "eval" / cfg.split
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out_dir / "metrics.json", result)
    # Now, before the robustness suite scores other batches with the same trainer.
    examples = evaluation.run.datamodule.examples[cfg.split]
    collected = collected_predictions(evaluation.trainer.callback_metrics)
    write_predictions(out_dir / PREDICTIONS_FILE, evaluation.trainer.callback_metrics, examples,
                      model.hparams, evaluation.modalities)  # fmt: skip
    title = f"{cfg.split}: {Path(result['checkpoint']).name}"
    plot_confusion(result, out_dir / "confusion_matrix.png")
    plot_reliability(collected["probabilities"], collected["target"], model.hparams.task, title,
                     out_dir / "reliability.png", calibrated)  # fmt: skip
    if "attribution" in result:
        plot_attribution(result, collected, examples, model.hparams, title, out_dir)
    print_metrics_table(result["metrics"], cfg.split)
    log.info("written: %s", out_dir / "metrics.json")
    if suite:
        results = evaluation.robustness(result, suite, cfg.seed)
        results["summary"] = summarize(results, "f1", reference)
        results["reference"] = cfg.robustness_reference
        title = f"{cfg.split} of {run_dir.name}"
        print_table(write_robustness(out_dir, results, title), "f1")
        for name, why in results["skipped"].items():
            log.warning("corruption %s skipped: %s", name, why)
        log.info("written: %s", out_dir / "robustness.json")


def plot_attribution(
    result: dict[str, Any],
    collected: dict[str, np.ndarray],
    examples: Sequence[Any],
    hparams: Any,
    title: str,
    out_dir: Path,
) -> None:
    """``attribution.png`` (shares per predicted class) and ``attribution_examples.png``
    (the examples each modality accounts for most of)."""
    shapley = collected["shapley"]
    rows = [examples[i] for i in collected["index"]]
    predicted = attributed_classes(collected["probabilities"], hparams.task, hparams.threshold)
    names = [hparams.class_names[i] for i in predicted]
    plot_class_shares(result["attribution"], title, out_dir / "attribution.png")
    modalities = result["attribution"]["modalities"]
    cards = out_dir / "attribution_examples.png"
    plot_example_cards(rows, card_rows(shapley), shapley, names, modalities, cards)
