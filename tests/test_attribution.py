"""Exact Shapley values over modalities: the axioms that make them Shapley values, checked on
models whose answer is known, and the refusal of a model with nothing to share out."""

from __future__ import annotations

import itertools
from dataclasses import replace
from functools import partial
from math import factorial

import pytest
import torch
from torch import nn

from rolefusion.data.batch import Batch
from rolefusion.models.attribution import (
    AttributionUnavailable,
    attribute,
    attribution_enabled,
    coalitions,
    shapley_values,
    shares,
)
from rolefusion.models.classifier import FusionClassifier
from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.concat import ConcatFusion

DIM, CLASSES, SIZE = 4, 3, 5


class FixedEncoder(nn.Module):
    """Whatever the batch, the features it was given: a modality whose output the test knows."""

    def __init__(self, dim: int, pooled: torch.Tensor) -> None:
        super().__init__()
        self.pooled = pooled

    def forward(self, *inputs: torch.Tensor) -> ModalityFeatures:
        size = len(self.pooled)
        return ModalityFeatures(
            self.pooled[:, None, :], torch.ones(size, 1, dtype=torch.bool), self.pooled
        )


def batch(size: int = SIZE) -> Batch:
    return Batch(
        label=torch.zeros(size, dtype=torch.long),
        image=torch.zeros(size, 3, 2, 2),
        text_ids=torch.zeros(size, 2, dtype=torch.long),
        text_mask=torch.ones(size, 2, dtype=torch.bool),
        audio=torch.zeros(size, 1, 8),
    )


def model(pooled: dict[str, torch.Tensor], modality_dropout: float = 0.3) -> FusionClassifier:
    torch.manual_seed(0)
    net = FusionClassifier(
        {m: partial(FixedEncoder, pooled=p) for m, p in pooled.items()},
        partial(ConcatFusion, dropout=0.0),
        num_classes=CLASSES,
        dim=DIM,
        modality_dropout=modality_dropout,
    ).eval()
    with torch.no_grad():
        for vector in net.absent.values():
            vector.normal_()
    return net


def features(*names: str, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(SIZE, DIM, generator=generator) for name in names}


def permutation_shapley(value: dict[frozenset, float], players: int) -> list[float]:
    """The textbook definition: each player's marginal contribution, averaged over orderings."""
    phi = [0.0] * players
    for order in itertools.permutations(range(players)):
        before: frozenset = frozenset()
        for player in order:
            phi[player] += value[before | {player}] - value[before]
            before = before | {player}
    return [p / factorial(players) for p in phi]


@pytest.mark.parametrize("players", [1, 2, 3])
def test_values_equal_the_permutation_definition(players: int) -> None:
    values = torch.randn(6, 2**players, dtype=torch.float64)
    members = coalitions(players)
    phi = shapley_values(values)
    for row in range(6):
        game = {
            frozenset(torch.nonzero(member).flatten().tolist()): float(values[row, index])
            for index, member in enumerate(members)
        }
        assert phi[row].tolist() == pytest.approx(permutation_shapley(game, players), abs=1e-12)


def test_coalitions_run_from_no_one_to_everyone() -> None:
    members = coalitions(3)
    assert members.shape == (8, 3)
    assert not members[0].any() and members[-1].all()
    assert len({tuple(m.tolist()) for m in members}) == 8


def log_probability(net: FusionClassifier, data: Batch, chosen: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        scores = net(data).double().log_softmax(-1)
    return scores.gather(1, chosen[:, None]).squeeze(1)


@pytest.mark.parametrize("names", [("image", "text"), ("image", "text", "audio")])
def test_values_sum_to_everything_minus_nothing(names: tuple[str, ...]) -> None:
    net = model(features(*names))
    data = batch()
    logits, phi = attribute(net, data, "multiclass")
    chosen = logits.argmax(-1)
    everything = log_probability(net, data, chosen)
    nothing = log_probability(net, replace(data, dropped=names), chosen)
    assert torch.allclose(logits, net(data), atol=1e-6)  # the full coalition is the model
    assert phi.shape == (SIZE, len(names))
    assert torch.allclose(phi.sum(1), everything - nothing, atol=1e-6)
    assert (phi.abs() > 1e-4).all()  # the check above is not 0 == 0


def test_multilabel_attributes_the_most_probable_classes_sigmoid() -> None:
    net = model(features("image", "text"))
    data = batch()
    logits, phi = attribute(net, data, "multilabel")
    chosen = logits.argmax(-1)[:, None]
    with torch.no_grad():
        nothing = net(replace(data, dropped=("image", "text")))
    expected = torch.nn.functional.logsigmoid(logits.double()).gather(1, chosen)
    expected -= torch.nn.functional.logsigmoid(nothing.double()).gather(1, chosen)
    assert torch.allclose(phi.sum(1), expected.squeeze(1), atol=1e-6)


def test_a_modality_the_model_ignores_gets_zero() -> None:
    net = model(features("image", "text"))
    with torch.no_grad():
        net.fusion.mlp[0].weight[:, :DIM] = 0.0  # the image's half of the concatenated input
    _, phi = attribute(net, batch(), "multiclass")
    assert torch.equal(phi[:, 0], torch.zeros(SIZE, dtype=phi.dtype))
    assert (phi[:, 1].abs() > 1e-4).all()


def test_swapped_modalities_of_a_symmetric_model_get_equal_values() -> None:
    same = features("image")["image"]
    net = model({"image": same, "text": same})
    with torch.no_grad():
        weight = net.fusion.mlp[0].weight
        weight[:, DIM:] = weight[:, :DIM]
        net.absent["text"].copy_(net.absent["image"])
    _, phi = attribute(net, batch(), "multiclass")
    assert torch.allclose(phi[:, 0], phi[:, 1], atol=1e-9)
    assert (phi.abs() > 1e-4).all()


def test_a_modality_the_batch_drops_gets_zero() -> None:
    net = model(features("image", "text"))
    _, phi = attribute(net, replace(batch(), dropped=("image",)), "multiclass")
    assert torch.equal(phi[:, 0], torch.zeros(SIZE, dtype=phi.dtype))


def test_shares_are_of_magnitudes_and_zero_when_nothing_moved() -> None:
    phi = torch.tensor([[1.0, -3.0], [0.0, 0.0]], dtype=torch.float64)
    assert shares(phi).tolist() == [[0.25, 0.75], [0.0, 0.0]]


def test_auto_attributes_only_what_can_be_shared_out() -> None:
    assert attribution_enabled("auto", ("image", "text"), "attribution") is True
    assert attribution_enabled("auto", ("text",), "attribution") is False
    assert attribution_enabled(False, ("image", "text"), "attribution") is False
    with pytest.raises(AttributionUnavailable, match=r"at least two modalities.*only text"):
        attribution_enabled(True, ("text",), "attribution")
    with pytest.raises(ValueError, match="attribution: expected auto, true or false"):
        attribution_enabled("yes", ("image", "text"), "attribution")
