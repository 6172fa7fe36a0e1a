"""The LightningModule: loss, optimisation and metrics around a :class:`FusionClassifier`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Annotated, Any

import lightning as L
import torch
from annotated_types import Ge, Interval
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection

from rolefusion.choices import Task
from rolefusion.data.batch import Batch
from rolefusion.models.attribution import attribute, shares
from rolefusion.models.calibration import calibration_metrics, update_calibration
from rolefusion.models.classifier import FusionClassifier
from rolefusion.models.feature_cache import FeatureCache
from rolefusion.models.fusion.base import Fusion
from rolefusion.models.metrics import (
    Average,
    ExamplePredictions,
    class_probabilities,
    classification_loss,
    classification_metrics,
    confusion_metric,
    metric_inputs,
    unshare_metric_states,
)

CONFUSION_MATRIX = "test/confusion_matrix"
"""Where the last test epoch leaves its confusion matrix: ``trainer.callback_metrics[...]``."""

PREDICTIONS = "predictions/"
"""Where the last test epoch leaves each example's row in its split, target and class
probabilities (``predictions/index``, ``/target``, ``/probabilities``: see
:class:`ExamplePredictions`), beside the confusion matrix; outside ``test/``, so that no one
reads them as metrics."""

SHARE = "test/share_"
"""Logged per modality when a test epoch attributes: ``test/share_image`` is the image's share of
the summed mean ``|phi|`` over the epoch (see :mod:`rolefusion.models.attribution`)."""


class RoleFusionModule(L.LightningModule):
    """Trains a fusion classifier for its task and tracks metrics per split.

    Args:
        fusion: partial ``(modalities, dim) -> Fusion`` (``conf/model/fusion``).
        image_encoder: partial ``(dim) -> nn.Module``, or None to leave images out.
        text_encoder: partial ``(dim, vocab_size, pad_id) -> nn.Module``, or None.
        optimizer: partial ``(params) -> Optimizer`` (``conf/optimizer``).
        scheduler: partial ``(optimizer) -> LRScheduler`` stepped each epoch, or None.
        audio_encoder: partial ``(dim) -> nn.Module``, or None (the default) to leave audio out.
        class_names: the classes, in label-index order (from the data).
        vocab_size, pad_id: of the tokenizer trained on the training split.
        dim: the shared feature width of every encoder.
        head_dropout: dropout before the classification head.
        average: how precision, recall and F1 average over classes (``macro``, ``weighted``).
        task: ``multiclass``, ``binary`` or ``multilabel`` (from the data).
        threshold: decision threshold on the positive probability (binary, multilabel).
        class_weights: loss weights against imbalance (from the data, ``class_balance=loss``).
        modality_dropout: probability, in training, that a modality of an example is absent
            (see :class:`FusionClassifier`).
        channels_last: keep images and convolution weights in NHWC layout, which GPU
            convolutions (Tensor Cores, bf16) run fastest in.
        compile: ``torch.compile`` the network when training starts: False, True, or a mode
            (``reduce-overhead``, ``max-autotune``). Compiled in place, so checkpoints keep
            their parameter names and load into an uncompiled model.
        feature_cache: frozen encoders' outputs computed once per example and reused
            (``conf/model/fusion_classifier.yaml``), or None to compute them every time. Not a
            hyperparameter: it changes how long a run takes, and what it computes at most in
            the last bits of floats (docs/performance.md).
    """

    def __init__(
        self,
        fusion: Callable[..., Fusion],
        image_encoder: Callable[..., nn.Module] | None,
        text_encoder: Callable[..., nn.Module] | None,
        optimizer: Callable[..., torch.optim.Optimizer],
        class_names: Sequence[str],
        vocab_size: int,
        pad_id: int,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        audio_encoder: Callable[..., nn.Module] | None = None,
        dim: Annotated[int, Ge(1)] = 128,
        head_dropout: Annotated[float, Interval(ge=0, lt=1)] = 0.1,
        average: Average = "macro",
        task: Task = "multiclass",
        threshold: Annotated[float, Interval(gt=0, lt=1)] = 0.5,
        class_weights: Sequence[float] | None = None,
        modality_dropout: Annotated[float, Interval(ge=0, lt=1)] = 0.0,
        channels_last: bool = False,
        compile: bool | str = False,
        feature_cache: FeatureCache | None = None,
    ) -> None:
        super().__init__()
        if (
            task == "multilabel"
            and getattr(fusion, "keywords", {}).get("combine") == "probabilities"
        ):
            raise ValueError(
                "model.fusion.combine=probabilities averages softmax distributions, which "
                "multilabel data does not have; use combine=logits"
            )
        self.save_hyperparameters(
            {
                "class_names": list(class_names),
                "vocab_size": vocab_size,
                "pad_id": pad_id,
                "dim": dim,
                "head_dropout": head_dropout,
                "average": average,
                "task": task,
                "threshold": threshold,
                "class_weights": list(class_weights) if class_weights else None,
                "modality_dropout": modality_dropout,
            }
        )
        text_factory = (
            partial(text_encoder, vocab_size=vocab_size, pad_id=pad_id) if text_encoder else None
        )
        self.net = FusionClassifier(
            encoders={"image": image_encoder, "text": text_factory, "audio": audio_encoder},
            fusion=fusion,
            num_classes=len(class_names),
            dim=dim,
            head_dropout=head_dropout,
            modality_dropout=modality_dropout,
            channels_last=channels_last,
            feature_cache=feature_cache,
        )
        self.compile_mode = compile
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.task = task
        self.loss = classification_loss(task, class_weights)
        metrics = classification_metrics(task, len(class_names), average, threshold)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_calibration = calibration_metrics(task, len(class_names)).clone(prefix="test/")
        self.eval_losses = nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.val_f1_best = MaxMetric()
        self.val_f1_best.persistent(True)  # in checkpoints: a resumed run remembers its best
        self.test_confusion = confusion_metric(task, len(class_names), threshold)
        self.test_predictions = ExamplePredictions()
        self.attribution = False
        """Whether test epochs also compute each example's Shapley values over modalities; the
        commands set it (``attribution`` in their configs). Not a hyperparameter: it changes
        what a test reports, never the model."""

    def setup(self, stage: str) -> None:
        unshare_metric_states(self)
        if self.compile_mode and stage == "fit":
            mode = None if self.compile_mode is True else self.compile_mode
            self.net.compile(mode=mode)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.net(batch)

    def _step(
        self,
        batch: Batch,
        metrics: MetricCollection,
        split: str,
        logits: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and metric updates for one batch (its ``logits`` when already computed); returns
        the loss and the logits."""
        if logits is None:
            logits = self(batch)
        target = batch.label.float() if self.task == "multilabel" else batch.label
        loss = self.loss(logits, target)
        metrics.update(*metric_inputs(self.task, logits, batch.label))
        if split == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True,
                     batch_size=len(batch))  # fmt: skip
        else:
            # A metric rather than Lightning's mean of per-rank means: the mean over every
            # example, whatever share of them each rank held.
            self.eval_losses[split].update(loss.detach(), weight=len(batch))
            self.log(f"{split}/loss", self.eval_losses[split], prog_bar=True)
        return loss, logits

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_metrics, "train")[0]

    def on_train_epoch_end(self) -> None:
        # torchmetrics' compute() already gathers every rank's state: no sync_dist needed.
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def on_validation_epoch_start(self) -> None:
        # Sanity-check batches must not count towards the first epoch's score.
        self.val_metrics.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        scores = self.val_metrics.compute()
        self.log_dict(scores, prog_bar=True)
        if not self.trainer.sanity_checking:
            self.val_f1_best.update(scores["val/f1"])
            self.log("val/f1_best", self.val_f1_best.compute(), prog_bar=True)
        self.val_metrics.reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        logits = phi = None
        if self.attribution:
            logits, phi = attribute(self.net, batch, self.task, self.hparams.threshold)
        _, logits = self._step(batch, self.test_metrics, "test", logits)
        scores, target = metric_inputs(self.task, logits, batch.label)
        self.test_confusion.update(scores, target)
        probabilities = class_probabilities(self.task, logits)
        update_calibration(self.test_calibration, self.task, probabilities, batch.label)
        if batch.index is not None:
            self.test_predictions.update(batch.index, probabilities, batch.label, phi)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        self.log_dict(self.test_calibration.compute())
        self.test_calibration.reset()
        # Among the callback metrics rather than on the module: under ddp_spawn those are what
        # travels back to the launching process. Not logged: loggers take scalars.
        self.trainer.callback_metrics[CONFUSION_MATRIX] = self.test_confusion.compute().cpu()
        self.test_confusion.reset()
        predictions = self.test_predictions.compute()
        self.test_predictions.reset()
        for key in [k for k in self.trainer.callback_metrics if k.startswith(PREDICTIONS)]:
            del self.trainer.callback_metrics[key]  # never an earlier test's rows
        for name, value in (predictions or {}).items():
            self.trainer.callback_metrics[PREDICTIONS + name] = value.cpu()
        if predictions and "shapley" in predictions:
            mean_magnitude = predictions["shapley"].abs().mean(0, keepdim=True)
            for modality, share in zip(self.net.encoders, shares(mean_magnitude)[0], strict=True):
                self.log(SHARE + modality, share.float(), sync_dist=True)  # equal on every rank

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "name": "train/lr"},
        }
