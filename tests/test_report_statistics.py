"""``rolefusion-report`` says whether a difference is real: seed summaries with confidence
intervals, a paired bootstrap on the same test examples, Holm's correction, and the
``predictions.csv`` every run writes for it."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig
from scipy import stats

from rolefusion.commands.report import Configuration, configurations, read_jobs, report
from rolefusion.commands.report import plot_metric as plot_metric_of
from rolefusion.commands.train import train
from rolefusion.runs.predictions import decoded, header, prediction_rows, read_predictions
from rolefusion.runs.statistics import holm, paired_bootstrap, score, seed_summary, verdict

CLASSES = ["guard", "knight", "pirate", "wizard"]


def make_labels(examples: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(CLASSES), examples)


def wrong_on(labels: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The labels, except one class further on wherever ``where`` is True."""
    return np.where(where, (labels + 1) % len(CLASSES), labels)


def write_job(sweep: Path, number: int, overrides: Sequence[str], labels: np.ndarray,
              predicted: np.ndarray | None, val_f1: float,
              modalities: Sequence[str] = ("image", "text")) -> Path:  # fmt: skip
    """A finished job directory as ``rolefusion-train`` leaves it: overrides, resolved config,
    metrics.json and (unless ``predicted`` is None) predictions.csv."""
    job = sweep / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    config = {"optimized_metric": "val/f1_best",
              "data": {"task": "multiclass", "modalities": list(modalities)},
              "model": {"average": "macro"}}  # fmt: skip
    (job / "config.yaml").write_text(yaml.safe_dump(config))
    shown = predicted if predicted is not None else labels
    metrics = {
        "val/f1_best": val_f1,
        "test/f1": score(labels, shown, num_classes=len(CLASSES)),
        "test/acc": score(labels, shown, num_classes=len(CLASSES), metric="acc"),
    }
    (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "classes": CLASSES}))
    if predicted is not None:
        ids = [f"test-{i:05d}" for i in range(len(labels))]
        probabilities = np.eye(len(CLASSES))[predicted] * 0.7 + 0.3 / len(CLASSES)
        rows = prediction_rows(ids, labels, probabilities, CLASSES, "multiclass")
        with (job / "predictions.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "label", "predicted", *(f"p_{c}" for c in CLASSES)])
            writer.writerows(rows)
    return job


def read_report(sweep: Path) -> dict[str, dict[str, str]]:
    """report.csv rows by the value of their swept key."""
    with (sweep / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return {row["model/fusion"]: row for row in rows}


# -- the statistics, as plain functions ---------------------------------------------------------


def test_identical_predictions_give_p_exactly_1_and_tied() -> None:
    labels = make_labels(300)
    predicted = wrong_on(labels, np.random.default_rng(1).random(300) < 0.3)
    result = paired_bootstrap(labels, [predicted, predicted], [predicted])
    assert result.difference == 0 and result.p_value == 1.0
    assert verdict(result.difference, holm([result.p_value])[0]) == "tied"


def test_right_on_a_strict_subset_of_examples_is_worse() -> None:
    labels = make_labels(300)
    draws = np.random.default_rng(2).random(300)
    best = wrong_on(labels, draws < 0.10)  # right on 90%
    subset = wrong_on(labels, draws < 0.25)  # right only where best is, and less often
    assert set(np.flatnonzero(subset == labels)) < set(np.flatnonzero(best == labels))
    result = paired_bootstrap(labels, [subset], [best])
    assert result.difference < 0 and result.p_value < 0.05
    assert result.ci_high < 0
    assert verdict(result.difference, result.p_value) == "worse"
    assert verdict(-result.difference, result.p_value) == "better"


def test_the_bootstrap_statistic_averages_seeds_and_scores_like_torchmetrics() -> None:
    labels = make_labels(300)
    rng = np.random.default_rng(3)
    seeds = [wrong_on(labels, rng.random(300) < rate) for rate in (0.1, 0.2, 0.3)]
    reference = [wrong_on(labels, rng.random(300) < 0.15)]
    result = paired_bootstrap(labels, seeds, reference, resamples=200)
    expected = np.mean([score(labels, p) for p in seeds]) - score(labels, reference[0])
    assert result.difference == pytest.approx(expected)
    # Macro-F1 by hand on a tiny case: classes 0 and 1 only, class 2 never seen, so left out.
    assert score(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), num_classes=3) == (
        pytest.approx((2 * 1 / (1 + 2) + 2 * 2 / (3 + 2)) / 2)
    )


def test_holm_adjusts_as_computed_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Sorted: 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; then each at
    # least the one before it: 0.02, 0.03, 0.06, 0.06. Back in the order given:
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]).size == 0


def test_seed_summary_is_a_student_t_interval_and_says_nothing_for_one_seed() -> None:
    summary = seed_summary([0.90, 0.92, 0.94])
    half = stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)  # 4.303 * std / sqrt(n)
    assert (summary.n, summary.mean, summary.std) == (3, pytest.approx(0.92), pytest.approx(0.02))
    assert (summary.ci_low, summary.ci_high) == (pytest.approx(0.92 - half),
                                                 pytest.approx(0.92 + half))  # fmt: skip
    single = seed_summary([0.9])
    assert single.n == 1 and single.mean == 0.9
    assert all(math.isnan(v) for v in (single.std, single.ci_low, single.ci_high))


# -- the report ----------------------------------------------------------------------------------


def test_report_ranks_by_validation_and_tests_every_configuration_against_the_best(
    tmp_path: Path,
) -> None:
    labels = make_labels(400)
    rng = np.random.default_rng(4)
    draws = rng.random(400)
    best = wrong_on(labels, draws < 0.08)
    for seed in (1, 2):
        # The best on validation; the same test predictions as `film` (tied, p = 1).
        write_job(tmp_path, seed, ["model/fusion=concat", f"seed={seed}"], labels, best, 0.95)
        write_job(tmp_path, 10 + seed, ["model/fusion=film", f"seed={seed}"], labels, best, 0.9)
        # Right on a strict subset of what the best gets right: worse.
        worse = wrong_on(labels, draws < 0.08 + 0.1 * seed)
        write_job(tmp_path, 20 + seed, ["model/fusion=late", f"seed={seed}"], labels, worse, 0.94)
        # Picked lower on validation but better on test: the validation pick was beaten.
        write_job(tmp_path, 30 + seed, ["model/fusion=gated", f"seed={seed}"], labels, labels,
                  0.8)  # fmt: skip
    report(tmp_path, resamples=2000)
    rows = read_report(tmp_path)
    assert list(rows) == ["concat", "late", "film", "gated"]  # by val/f1_best, not test
    assert {name: row["verdict"] for name, row in rows.items()} == {
        "concat": "best", "late": "worse", "film": "tied", "gated": "better"}  # fmt: skip
    assert rows["concat"]["p"] == "" and float(rows["film"]["p"]) == 1.0
    assert float(rows["late"]["p"]) < 0.05 and float(rows["gated"]["p"]) < 0.05
    assert list(rows["concat"])[:5] == ["model/fusion", "n", "jobs", "failed", "incomplete"]
    for metric in ("val/f1_best", "test/f1", "test/acc"):
        for suffix in ("mean", "std", "ci_low", "ci_high"):
            assert f"{metric}_{suffix}" in rows["concat"]
    assert list(rows["concat"])[-2:] == ["p", "verdict"]
    text = (tmp_path / "report.md").read_text()
    assert "2,000 resamples" in text and "Holm" in text and "strata" in text
    assert "validation was beaten on test" in text


def test_one_seed_says_n_1_has_no_interval_and_draws_no_error_bar(tmp_path: Path) -> None:
    labels = make_labels(300)
    write_job(tmp_path, 0, ["model/fusion=concat", "seed=1"], labels, labels, 0.95)
    for seed in (1, 2, 3):
        predicted = wrong_on(labels, np.random.default_rng(seed).random(300) < 0.1)
        write_job(tmp_path, seed, ["model/fusion=late", f"seed={seed}"], labels, predicted, 0.9)
    report(tmp_path, resamples=500)
    rows = read_report(tmp_path)
    assert rows["concat"]["n"] == "1" and rows["late"]["n"] == "3"
    assert rows["concat"]["test/f1_ci_low"] == rows["concat"]["test/f1_std"] == ""
    assert float(rows["late"]["test/f1_ci_low"]) < float(rows["late"]["test/f1_mean"])
    assert "1.0000 (n=1)" in (tmp_path / "report.md").read_text()

    configs = [Configuration({"model/fusion": name}, name=f"C{i}") for i, name in
               enumerate(("concat", "late"), 1)]  # fmt: skip
    for job in read_jobs(tmp_path):
        configs[job.overrides["model/fusion"] == "late"].jobs.append(job)
    bars, errorbars = plot_metric_of(configs, "test/f1", tmp_path / "plot.png")
    assert len(bars) == 2
    (segments,) = [c.get_segments() for c in errorbars.lines[2]]
    assert [segment[0][0] for segment in segments] == [1]  # late's bar only, none at concat's
    late = configs[1].summary("test/f1")
    assert segments[0][:, 1] == pytest.approx([late.ci_low, late.ci_high])


def test_configurations_without_predictions_are_not_tested_and_say_why(tmp_path: Path) -> None:
    labels = make_labels(300)
    write_job(tmp_path, 0, ["model/fusion=concat"], labels, labels, 0.95)
    old = write_job(tmp_path, 1, ["model/fusion=late"], labels, None, 0.9)
    report(tmp_path, resamples=200)
    rows = read_report(tmp_path)
    assert (rows["late"]["p"], rows["late"]["verdict"]) == ("", "-")
    assert (
        f"no predictions.csv in {old / 'predictions.csv'}" in (tmp_path / "report.md").read_text()
    )


def test_jobs_that_read_different_modalities_are_never_one_configuration(tmp_path: Path) -> None:
    labels = make_labels(50)
    for seed, modalities in [(1, ["text"]), (2, ["text"]), (3, ["image", "text"])]:
        write_job(tmp_path, seed, ["model/fusion=concat", f"seed={seed}"], labels, labels, 0.9,
                  modalities)  # fmt: skip
    swept, configs = configurations(read_jobs(tmp_path))
    assert swept == ["model/fusion", "modalities"]
    assert sorted((c.label, len(c.jobs)) for c in configs) == [
        ("fusion=concat modalities=image+text", 1), ("fusion=concat modalities=text", 2)
    ]  # fmt: skip
    report(tmp_path, resamples=50)
    with (tmp_path / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["modalities"], row["n"]) for row in rows) == [("image+text", "1"),
                                                                     ("text", "2")]  # fmt: skip


def test_predictions_of_different_examples_are_refused_naming_both_files(tmp_path: Path) -> None:
    labels = make_labels(300)
    best = write_job(tmp_path, 0, ["model/fusion=concat"], labels, labels, 0.95)
    other = write_job(tmp_path, 1, ["model/fusion=late"], labels, labels, 0.9)
    frame = pd.read_csv(other / "predictions.csv", dtype=str)
    frame.loc[0, "id"] = "val-00000"
    frame.to_csv(other / "predictions.csv", index=False)
    with pytest.raises(ValueError, match="hold different examples") as refused:
        report(tmp_path, resamples=200)
    assert str(best / "predictions.csv") in str(refused.value)
    assert str(other / "predictions.csv") in str(refused.value)


# -- predictions.csv -----------------------------------------------------------------------------


def test_a_run_writes_one_prediction_row_per_test_example(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("trainer.max_epochs=1", "logger=none", "data.source.num_test=37")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    frame = read_predictions(run / "predictions.csv")
    recorded = json.loads((run / "metrics.json").read_text())
    classes = recorded["classes"]
    assert list(frame.columns) == [
        "id", "label", "predicted", *(f"p_{c}" for c in classes), "shap_image", "shap_text"
    ]  # fmt: skip
    manifest = instantiate(cfg.data).source.manifest("test")
    examples = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert list(frame["id"]) == [e["id"] for e in examples]  # every example once, in order
    assert list(frame["label"]) == [e["label"] for e in examples]
    probabilities = frame[[f"p_{c}" for c in classes]].to_numpy()
    assert probabilities.sum(1) == pytest.approx(np.ones(37), abs=1e-5)
    assert list(frame["predicted"]) == [classes[i] for i in probabilities.argmax(1)]
    assert (frame["label"] == frame["predicted"]).mean() == pytest.approx(
        recorded["metrics"]["test/acc"], abs=1e-6
    )
    position = {c: i for i, c in enumerate(classes)}
    f1 = score(frame["label"].map(position).to_numpy(), frame["predicted"].map(position).to_numpy(),
               num_classes=len(classes))  # fmt: skip
    assert f1 == pytest.approx(recorded["metrics"]["test/f1"], abs=1e-6)


def test_multilabel_rows_hold_sets_and_per_class_probabilities(tmp_path: Path) -> None:
    target = np.array([[1, 0, 1], [0, 0, 0]], dtype=float)
    probabilities = np.array([[0.9, 0.6, 0.2], [0.1, 0.3, 0.4]])
    rows = prediction_rows(["a", "b"], target, probabilities, ["x", "y", "z"], "multilabel")
    assert [row[:3] for row in rows] == [["a", "x|z", "x|y"], ["b", "", ""]]
    path = tmp_path / "predictions.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header(["x", "y", "z"]), *rows])
    labels, predicted = decoded(read_predictions(path), multilabel=True)
    assert labels.tolist() == [[True, False, True], [False, False, False]]
    assert predicted.tolist() == [[True, True, False], [False, False, False]]
