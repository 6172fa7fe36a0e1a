"""Binary, multiclass and multilabel tasks: targets, losses, metrics and class balance."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from rolefusion.data.labels import LabelMap
from rolefusion.models.metrics import classification_metrics, metric_inputs
from rolefusion.runs.build import build_model, prepared_datamodule

from conftest import compose_manifest
from real_layouts import write_image, write_jsonl


def test_multilabel_metrics_match_a_hand_computed_example() -> None:
    probabilities = torch.tensor(
        [[0.9, 0.2, 0.6], [0.1, 0.8, 0.4], [0.7, 0.7, 0.1], [0.2, 0.3, 0.9]]
    )
    target = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]])
    metrics = classification_metrics("multilabel", 3, average="macro")
    metrics.update(*metric_inputs("multilabel", torch.logit(probabilities), target.float()))
    scores = {name: float(value) for name, value in metrics.compute().items()}
    # Per class (threshold 0.5): TP/FP/FN = 2/0/0, 1/1/0, 1/1/1 -> F1 1, 2/3, 1/2.
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    assert scores["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert scores["recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    # Pooled: TP 4, FP 2, FN 1 -> F1 8/11; 9 of 12 label decisions right.
    assert scores["f1_micro"] == pytest.approx(8 / 11)
    assert scores["acc"] == pytest.approx(9 / 12)
    # AUROC per class, the share of (positive, negative) pairs ranked right: class 0 ranks .9 and
    # .7 above .1 and .2, class 1 .8 above .2, .7 and .3 (both 1); class 2 ranks .4 and .9
    # against .6 and .1, wrong only for .4 < .6 (3/4). Macro: 11/12; micro (pooled) would be
    # 32.5/35, weighted by support 9/10.
    assert scores["auroc"] == pytest.approx(11 / 12)


def test_binary_metrics_read_the_positive_probability_against_the_threshold() -> None:
    logits = torch.tensor([[0.0, 2.0], [0.0, 0.5], [0.0, -1.0], [0.0, -3.0]])  # p+ .88 .62 .27 .05
    target = torch.tensor([1, 0, 1, 0])
    strict = classification_metrics("binary", 2, threshold=0.7)
    strict.update(*metric_inputs("binary", logits, target))
    scores = strict.compute()
    assert float(scores["precision"]) == 1.0 and float(scores["recall"]) == 0.5
    assert float(scores["auroc"]) == pytest.approx(0.75)


def test_label_map_balancing_weights() -> None:
    labels = LabelMap.from_training(["a"] * 6 + ["b"] * 2, "multiclass")
    targets = [labels.target(x) for x in ["a"] * 6 + ["b"] * 2]
    assert labels.balancing_weights(targets) == pytest.approx([8 / (2 * 6), 8 / (2 * 2)])
    multi = LabelMap.from_training([("x",), ("x", "y"), ("x",), ()], "multilabel")
    targets = [multi.target(t) for t in [("x",), ("x", "y"), ("x",), ()]]
    assert multi.balancing_weights(targets) == pytest.approx([1 / 3, 3 / 1])


def test_binary_needs_two_classes_and_honours_the_positive_label() -> None:
    with pytest.raises(ValueError, match=r"data\.task=binary: the training split has 3 classes"):
        LabelMap.from_training(["a", "b", "c"], "binary")
    assert LabelMap.from_training(["yes", "no"], "binary").class_names == ("no", "yes")
    flipped = LabelMap.from_training(["yes", "no"], "binary", positive_label="no")
    assert flipped.class_names == ("yes", "no")


def imbalanced_data(root: Path) -> Path:
    for split, size in {"train": 16, "val": 4, "test": 4}.items():
        rows = []
        for i in range(size):
            write_image(root / "images" / f"{split}_{i}.png", i)
            label = "knight" if i % 4 == 0 else "pirate"  # 1 in 4
            rows.append(
                {"image": f"images/{split}_{i}.png", "text": f"{label} {i}", "label": label}
            )
        write_jsonl(root / f"{split}.jsonl", rows)
    return root


def compose(tmp_path: Path, *overrides: str):
    return compose_manifest(tmp_path, imbalanced_data(tmp_path / "data"), *overrides)


def test_class_weighted_loss_reaches_the_model_and_the_run_record(tmp_path: Path) -> None:
    cfg = compose(tmp_path, "data.class_balance=loss")
    datamodule = prepared_datamodule(cfg)
    model = build_model(cfg, datamodule.spec)
    # 4 knights, 12 pirates: 16 / (2 * n).
    assert model.loss.weight.tolist() == pytest.approx([2.0, 2 / 3])
    assert datamodule.summary()["class_weights"] == pytest.approx([2.0, 2 / 3])
    assert model.hparams.class_weights == pytest.approx([2.0, 2 / 3])


def test_weighted_sampler_draws_classes_equally_often(tmp_path: Path) -> None:
    datamodule = prepared_datamodule(compose(tmp_path, "data.class_balance=sampler"))
    torch.manual_seed(0)
    seen: Counter = Counter()
    for _ in range(200):
        for batch in datamodule.train_dataloader():
            seen.update(batch.label.tolist())
    assert seen[0] / (seen[0] + seen[1]) == pytest.approx(0.5, abs=0.03)
