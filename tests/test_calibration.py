"""Calibration: ECE and Brier as defined by hand, temperature scaling, its stored record, and the
reliability diagram."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rolefusion.models.calibration import (
    Calibration,
    calibration_metrics,
    calibration_path,
    confidence_and_correct,
    fit_temperature,
    nll,
    read_calibration,
    reliability,
    update_calibration,
    write_calibration,
)
from rolefusion.runs.reliability import plot_reliability

# 15 bins of width 1/15: [0, .067) [.067, .133) [.133, .2) [.2, .267) [.267, .333) [.333, .4)
# [.4, .467) [.467, .533) [.533, .6) [.6, .667) [.667, .733) [.733, .8) [.8, .867) [.867, .933)
# [.933, 1), and torchmetrics' own bin for exactly 1. No value below lies on an edge.
MULTICLASS_PROBABILITIES = [
    [0.90, 0.06, 0.04],  # target 0: top .90, right    -> bin [.867, .933)
    [0.02, 0.06, 0.92],  # target 1: top .92, wrong    -> bin [.867, .933)
    [0.50, 0.30, 0.20],  # target 0: top .50, right    -> bin [.467, .533)
    [0.25, 0.50, 0.25],  # target 0: top .50, wrong    -> bin [.467, .533)
    [0.15, 0.15, 0.70],  # target 2: top .70, right    -> bin [.667, .733)
    [0.45, 0.35, 0.20],  # target 2: top .45, wrong    -> bin [.4, .467)
    [0.00, 1.00, 0.00],  # target 0: top 1.0, wrong    -> the bin of exactly 1
    [0.02, 0.95, 0.03],  # target 1: top .95, right    -> bin [.933, 1)
]
MULTICLASS_TARGET = [0, 1, 0, 0, 2, 2, 0, 1]
# Per bin, |accuracy - mean confidence| x examples in it:
#   [.4, .467):   |0 - .45|  x 1 = .45
#   [.467, .533): |.5 - .50| x 2 = 0
#   [.667, .733): |1 - .70|  x 1 = .30
#   [.867, .933): |.5 - .91| x 2 = .82
#   [.933, 1):    |1 - .95|  x 1 = .05
#   exactly 1:    |0 - 1|    x 1 = 1
# ECE = (.45 + .30 + .82 + .05 + 1) / 8 = 2.62 / 8. (Were 1.0 binned with .95, as a closed last
# bin would, that bin's |.5 - .975| x 2 = .95 would give 2.52 / 8.)
MULTICLASS_ECE = 2.62 / 8
# Per example, sum over classes of (p_c - y_c)²:
#   .1² + .06² + .04² = .0152          .02² + .94² + .92² = 1.7304
#   .5² + .3² + .2² = .38              .75² + .5² + .25² = .875
#   .15² + .15² + .3² = .135           .45² + .35² + .8² = .965
#   1² + 1² + 0² = 2                   .02² + .05² + .03² = .0038
MULTICLASS_BRIER = (0.0152 + 1.7304 + 0.38 + 0.875 + 0.135 + 0.965 + 2 + 0.0038) / 8

# The positive class's probability, and the label:
BINARY_POSITIVE = [0.00, 0.03, 0.25, 0.62, 0.64, 0.97, 1.00, 1.00]
BINARY_TARGET = [0, 1, 0, 1, 0, 1, 0, 1]
# Per bin, |fraction positive - mean probability| x examples in it:
#   [0, .067):    0 and .03, one positive: |.5 - .015| x 2 = .97  (0 belongs to the first bin)
#   [.2, .267):   .25, negative:           |0 - .25|   x 1 = .25
#   [.6, .667):   .62 and .64, one pos.:   |.5 - .63|  x 2 = .26
#   [.933, 1):    .97, positive:           |1 - .97|   x 1 = .03
#   exactly 1:    1 and 1, one positive:   |.5 - 1|    x 2 = 1
BINARY_ECE = (0.97 + 0.25 + 0.26 + 0.03 + 1) / 8
# (p - y)²: 0, .97², .25², .38², .64², .03², 1, 0
BINARY_BRIER = (0.9409 + 0.0625 + 0.1444 + 0.4096 + 0.0009 + 1) / 8

MULTILABEL_PROBABILITIES = [[0.90, 0.25], [0.45, 0.70], [0.10, 0.55]]
MULTILABEL_TARGET = [[1, 0], [1, 1], [0, 0]]
# Six (example, class) pairs, each alone in its bin: |y - p| = .1, .25, .55, .3, .1, .55.
MULTILABEL_ECE = (0.1 + 0.25 + 0.55 + 0.3 + 0.1 + 0.55) / 6
# Mean of (p - y)² over the six pairs (not over the three examples).
MULTILABEL_BRIER = (0.01 + 0.0625 + 0.3025 + 0.09 + 0.01 + 0.3025) / 6


def binary_probabilities() -> torch.Tensor:
    positive = torch.tensor(BINARY_POSITIVE)
    return torch.stack([1 - positive, positive], dim=1)


CASES = {
    "multiclass": (
        torch.tensor(MULTICLASS_PROBABILITIES),
        torch.tensor(MULTICLASS_TARGET),
        3,
        MULTICLASS_ECE,
        MULTICLASS_BRIER,
    ),
    "binary": (binary_probabilities(), torch.tensor(BINARY_TARGET), 2, BINARY_ECE, BINARY_BRIER),
    "multilabel": (
        torch.tensor(MULTILABEL_PROBABILITIES),
        torch.tensor(MULTILABEL_TARGET),
        2,
        MULTILABEL_ECE,
        MULTILABEL_BRIER,
    ),
}


@pytest.mark.parametrize("task", CASES)
def test_ece_and_brier_are_the_hand_computed_ones(task: str) -> None:
    probabilities, target, num_classes, ece, brier = CASES[task]
    metrics = calibration_metrics(task, num_classes).clone(prefix="test/")
    # In two batches, as a test epoch feeds them.
    update_calibration(metrics, task, probabilities[:3], target[:3])
    update_calibration(metrics, task, probabilities[3:], target[3:])
    scores = metrics.compute()
    assert float(scores["test/ece"]) == pytest.approx(ece, abs=1e-6)
    assert float(scores["test/brier"]) == pytest.approx(brier, abs=1e-6)


@pytest.mark.parametrize("task", CASES)
def test_reliability_bins_as_the_logged_ece(task: str) -> None:
    probabilities, target, _, ece, _ = CASES[task]
    result = reliability(*confidence_and_correct(probabilities.numpy(), target.numpy(), task))
    assert result.ece == pytest.approx(ece, abs=1e-6)
    assert result.count.sum() == target.numel()


def test_reliability_bins_are_half_open_with_one_for_certainty() -> None:
    probabilities, target, *_ = CASES["multiclass"]
    result = reliability(
        *confidence_and_correct(probabilities.numpy(), target.numpy(), "multiclass")
    )
    expected = np.zeros(16, dtype=int)
    expected[[6, 7, 10, 13, 14, 15]] = [1, 2, 1, 2, 1, 1]
    np.testing.assert_array_equal(result.count, expected)
    assert result.confidence[13] == pytest.approx(0.91)
    assert result.accuracy[13] == 0.5
    assert np.isnan(result.accuracy[0]) and np.isnan(result.confidence[0])  # empty, not 0


def test_confidence_and_correct_per_task() -> None:
    confidence, correct = confidence_and_correct(
        np.array(MULTICLASS_PROBABILITIES), np.array(MULTICLASS_TARGET), "multiclass"
    )
    np.testing.assert_allclose(confidence, [0.9, 0.92, 0.5, 0.5, 0.7, 0.45, 1, 0.95])
    np.testing.assert_array_equal(correct, [1, 0, 1, 0, 1, 0, 0, 1])
    confidence, correct = confidence_and_correct(
        binary_probabilities().numpy(), np.array(BINARY_TARGET), "binary"
    )
    np.testing.assert_allclose(confidence, BINARY_POSITIVE, atol=1e-7)
    np.testing.assert_array_equal(correct, BINARY_TARGET)
    confidence, correct = confidence_and_correct(
        np.array(MULTILABEL_PROBABILITIES), np.array(MULTILABEL_TARGET), "multilabel"
    )
    np.testing.assert_allclose(confidence, [0.9, 0.25, 0.45, 0.7, 0.1, 0.55])
    np.testing.assert_array_equal(correct, [1, 0, 1, 1, 0, 0])


def test_nll_is_the_mean_loss_of_the_scaled_logits() -> None:
    # softmax([ln 2, 0, 0]) = [1/2, 1/4, 1/4] and softmax([0, 0, ln 2]) puts 1/4 on class 0.
    logits = torch.tensor([[math.log(2), 0, 0], [0, 0, math.log(2)]])
    target = torch.tensor([0, 0])
    assert nll(logits, target, "multiclass") == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert nll(2 * logits, target, "multiclass", temperature=2) == pytest.approx(
        nll(logits, target, "multiclass")
    )
    # Multilabel: the mean over every (example, class) pair: sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4.
    logits = torch.tensor([[0, math.log(3)]])
    expected = (math.log(2) + math.log(4 / 3)) / 2
    assert nll(logits, torch.tensor([[1, 1]]), "multilabel") == pytest.approx(expected)


def overconfident_logits(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits that put a clear margin on a class that is the label 70% of the time, then are
    multiplied by 5: far more sure than they are right."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 4, (1000,), generator=generator)
    wrong = torch.randint(0, 4, (1000,), generator=generator)
    predicted = torch.where(torch.rand(1000, generator=generator) < 0.7, target, wrong)
    logits = torch.randn(1000, 4, generator=generator) + 2 * F.one_hot(predicted, 4)
    return 5 * logits, target


def test_temperature_softens_overconfident_logits() -> None:
    logits, target = overconfident_logits(0)
    temperature = fit_temperature(logits, target, "multiclass")
    assert temperature > 1
    assert nll(logits, target, "multiclass", temperature) < nll(logits, target, "multiclass")


def test_temperature_sharpens_underconfident_logits() -> None:
    logits, target = overconfident_logits(1)
    assert fit_temperature(logits / 25, target, "multiclass") < 1


@pytest.mark.parametrize("seed", range(4))
def test_temperature_never_raises_nll_nor_moves_argmax(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(200, 5, generator=generator)
    target = torch.randint(0, 5, (200,), generator=generator)  # labels unrelated to the logits
    temperature = fit_temperature(logits, target, "multiclass")
    assert 0 < temperature < math.inf
    assert nll(logits, target, "multiclass", temperature) <= nll(logits, target, "multiclass")
    assert torch.equal((logits / temperature).argmax(1), logits.argmax(1))


def test_temperature_for_binary_and_multilabel() -> None:
    logits, target = overconfident_logits(2)
    binary_target = (target == 0).long()
    binary_logits = torch.stack([logits[:, 1:].max(1).values, logits[:, 0]], dim=1)
    temperature = fit_temperature(binary_logits, binary_target, "binary")
    assert temperature > 1
    assert nll(binary_logits, binary_target, "binary", temperature) < nll(
        binary_logits, binary_target, "binary"
    )
    # Multilabel: each label's logit is ±6 with the label's sign 80% of the time.
    generator = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (1000, 4), generator=generator)
    agree = torch.where(torch.rand(1000, 4, generator=generator) < 0.8, 1.0, -1.0)
    multilabel_logits = 6 * (2 * labels - 1) * agree + torch.randn(1000, 4, generator=generator)
    temperature = fit_temperature(multilabel_logits, labels, "multilabel")
    assert temperature > 1
    after = nll(multilabel_logits, labels, "multilabel", temperature)
    assert after < nll(multilabel_logits, labels, "multilabel")
    assert torch.equal(multilabel_logits / temperature > 0, multilabel_logits > 0)


def test_temperature_stays_one_when_the_fit_breaks_down() -> None:
    logits, target = overconfident_logits(4)
    logits[7, 2] = math.nan  # the NLL is NaN at every temperature: nothing to fit
    assert fit_temperature(logits, target, "multiclass") == 1.0


WEIGHTS = b"the checkpoint's bytes"

RECORD = Calibration(
    temperature=1.7,
    fitted_on="val",
    examples=500,
    nll_before=0.9,
    nll_after=0.6,
    ece_before=0.12,
    ece_after=0.03,
    checkpoint="epoch=3.ckpt",
    checkpoint_sha256=hashlib.sha256(WEIGHTS).hexdigest(),
)


def test_calibration_record_round_trips_beside_its_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoints" / "epoch=3.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(WEIGHTS)
    assert calibration_path(checkpoint) == tmp_path / "checkpoints" / "epoch=3.calibration.json"
    assert read_calibration(checkpoint) is None
    assert write_calibration(checkpoint, RECORD) == calibration_path(checkpoint)
    assert read_calibration(checkpoint) == RECORD
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == [
        "epoch=3.calibration.json",
        "epoch=3.ckpt",
    ]
    with pytest.raises(ValueError, match=re.escape("epoch=3.ckpt")):
        write_calibration(tmp_path / "checkpoints" / "last.ckpt", RECORD)


def fields_with(**changes: object) -> str:
    return json.dumps({**asdict(RECORD), **changes})


BAD_RECORDS = {
    "invalid JSON": '{"temperature": 1.7,',
    "a list": "[1.7]",
    "missing field": json.dumps({k: v for k, v in asdict(RECORD).items() if k != "ece_after"}),
    "unknown field": fields_with(bias=0.1),
    "temperature 0": fields_with(temperature=0),
    "negative temperature": fields_with(temperature=-1.5),
    "NaN temperature": fields_with(temperature=math.nan),
    "infinite temperature": fields_with(temperature=math.inf),
    "temperature as text": fields_with(temperature="1.7"),
    "another checkpoint": fields_with(checkpoint="epoch=7.ckpt"),
    "the checkpoint since rewritten": fields_with(checkpoint_sha256="0" * 64),
}


@pytest.mark.parametrize("case", BAD_RECORDS)
def test_bad_calibration_records_are_refused_by_name(tmp_path: Path, case: str) -> None:
    checkpoint = tmp_path / "epoch=3.ckpt"
    checkpoint.write_bytes(WEIGHTS)
    path = calibration_path(checkpoint)
    path.write_text(BAD_RECORDS[case])
    with pytest.raises(ValueError) as error:
        read_calibration(checkpoint)
    assert str(path) in str(error.value)


def test_an_integer_temperature_is_read_as_a_float(tmp_path: Path) -> None:
    # The refusals above are for what is wrong in a file, not for JSON's spelling of a number.
    checkpoint = tmp_path / "epoch=3.ckpt"
    checkpoint.write_bytes(WEIGHTS)
    calibration_path(checkpoint).write_text(fields_with(temperature=2))
    assert read_calibration(checkpoint) == replace(RECORD, temperature=2.0)


@pytest.mark.parametrize("task", CASES)
@pytest.mark.parametrize("with_calibrated", [False, True])
def test_reliability_diagram_is_written(tmp_path: Path, task: str, with_calibrated: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    num_classes = 2 if task == "binary" else 4
    logits = 4 * torch.randn(300, num_classes, generator=generator)
    if task == "multilabel":
        target = torch.randint(0, 2, (300, num_classes), generator=generator)
        probabilities, calibrated = logits.sigmoid(), (logits / 3).sigmoid()
    else:
        target = torch.randint(0, num_classes, (300,), generator=generator)
        probabilities, calibrated = logits.softmax(1), (logits / 3).softmax(1)
    path = tmp_path / "reliability.png"
    plot_reliability(
        probabilities.numpy(),
        target.numpy(),
        task,
        f"{task} test",
        path,
        calibrated.numpy() if with_calibrated else None,
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_reliability_diagram_draws_the_calibrated_probabilities(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(300, 3, generator=generator)
    target = torch.randint(0, 3, (300,), generator=generator).numpy()
    images = []
    for temperature in (2, 4):
        path = tmp_path / f"reliability-{temperature}.png"
        calibrated = (logits / temperature).softmax(1).numpy()
        plot_reliability(logits.softmax(1).numpy(), target, "multiclass", "t", path, calibrated)
        images.append(path.read_bytes())
    assert images[0] != images[1]
