"""Specifications of the fusion zoo: late, gated, tensor, low-rank tensor, FiLM, cross-attention.

Besides the contract every fusion keeps (shapes, every parameter trained, every consumed view
reached, nothing else read), each is pinned down by what it can and cannot learn: late fusion
cannot fit an XOR of the modalities that concat fusion fits; low-rank tensor fusion at full rank
memorises what tensor fusion memorises, and rank one cannot fit a full-rank bilinear target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion
from rolefusion.models.fusion.concat import ConcatFusion
from rolefusion.models.fusion.cross_attention import CrossAttentionFusion
from rolefusion.models.fusion.film import FiLMFusion
from rolefusion.models.fusion.gated import GatedFusion
from rolefusion.models.fusion.late import LateFusion
from rolefusion.models.fusion.tensor import LowRankTensorFusion, TensorFusion

from test_fusions import GRID, THREE, TWO, B, D, make_features, views

C = 5  # classes, for late fusion
P, R, H = 4, 3, 8  # proj_dim, rank, hidden of the tensor fusions: small, so counts stay readable

BUILD: dict[str, Callable[[Sequence[str]], Fusion]] = {
    "late": lambda mods: LateFusion(mods, D, num_classes=C),
    "late_probabilities_fixed": lambda mods: LateFusion(
        mods, D, num_classes=C, combine="probabilities", weights="fixed"
    ),
    "gated": lambda mods: GatedFusion(mods, D),
    "tensor": lambda mods: TensorFusion(mods, D, proj_dim=P, hidden=H),
    "low_rank_tensor": lambda mods: LowRankTensorFusion(mods, D, rank=R, proj_dim=P, hidden=H),
    "film": lambda mods: FiLMFusion(mods, D),
    "cross_attention": lambda mods: CrossAttentionFusion(mods, D),
}
POOLED = {"image": "pooled", "text": "pooled", "audio": "pooled"}
CONSUMES: dict[str, dict[str, str]] = {
    "late": POOLED,
    "late_probabilities_fixed": POOLED,
    "gated": POOLED,
    "tensor": POOLED,
    "low_rank_tensor": POOLED,
    "film": {"image": "grid", "text": "pooled", "audio": "pooled"},
    "cross_attention": {"image": "tokens", "text": "tokens", "audio": "tokens"},
}
CASES = [(name, mods) for name in BUILD for mods in (TWO, THREE)]


def linear(i: int, o: int) -> int:
    return i * o + o


def layer_norm(d: int) -> int:
    return 2 * d


def expected_parameters(name: str, m: int) -> int:
    """Parameter count of ``BUILD[name]`` over ``m`` modalities, from each fusion's definition."""
    if name == "late":
        return m * linear(D, C) + m  # a head per modality, a weight logit per modality
    if name == "late_probabilities_fixed":
        return m * linear(D, C)
    if name == "gated":
        return m * linear(D, D) + linear(m * D, D) + linear(D, m)
    if name == "tensor":
        return m * linear(D, P) + linear((P + 1) ** m, H)
    if name == "low_rank_tensor":
        return m * linear(D, P) + m * R * (P + 1) * H + R + H
    if name == "film":
        conditioning = (m - 1) * D
        return linear(conditioning, 2 * D) + D * D * 9 + 2 * D  # FiLM, conv3x3 (no bias), BN
    if name == "cross_attention":
        attention = linear(D, 3 * D) + linear(D, D)
        feed_forward = linear(D, 2 * D) + linear(2 * D, D)
        block = 3 * layer_norm(D) + attention + feed_forward
        return m * block + m * layer_norm(D) + linear(m * D, D)
    raise KeyError(name)


@pytest.mark.parametrize(("name", "mods"), CASES)
def test_zoo_fusion_trains_every_parameter_and_reads_only_its_views(
    name: str, mods: tuple[str, ...]
) -> None:
    torch.manual_seed(0)
    fusion = BUILD[name](mods)
    assert sum(p.numel() for p in fusion.parameters()) == expected_parameters(name, len(mods))
    features = make_features(mods)
    out = fusion(features)
    assert out.shape == (B, C if fusion.produces_logits else fusion.out_dim)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{pname} gets no gradient"
    for m, feats in features.items():
        for view, tensor in views(feats).items():
            if CONSUMES[name].get(m) == view:
                assert tensor.grad is not None and tensor.grad.abs().sum() > 0, f"{m}.{view}"
            else:
                assert tensor.grad is None or not tensor.grad.any(), f"{m}.{view} leaks in"


@pytest.mark.parametrize(("name", "mods"), CASES)
def test_zoo_fusion_is_deterministic_and_ignores_dict_order(
    name: str, mods: tuple[str, ...]
) -> None:
    outputs = []
    for _ in range(2):
        torch.manual_seed(0)
        outputs.append(BUILD[name](mods).eval()(make_features(mods)))
    assert torch.equal(*outputs)
    torch.manual_seed(0)
    fusion = BUILD[name](mods).eval()
    features = make_features(mods)
    assert torch.equal(fusion(features), fusion(dict(reversed(features.items()))))


@pytest.mark.parametrize("name", list(BUILD))
def test_zoo_fusion_survives_empty_text(name: str) -> None:
    fusion = BUILD[name](THREE)
    features = make_features(THREE)
    features["text"].mask[1] = False
    features["audio"].mask[1] = False  # image tokens of row 1 now have no key to attend to
    out = fusion(features)
    out.sum().backward()
    assert torch.isfinite(out).all()
    for feats in features.values():
        assert all(t.grad is None or torch.isfinite(t.grad).all() for t in views(feats).values())


@pytest.mark.parametrize("mods", [TWO, THREE])
def test_cross_attention_ignores_padding(mods: tuple[str, ...]) -> None:
    fusion = CrossAttentionFusion(mods, D).eval()
    features = make_features(mods)
    before = fusion(features)
    for m in mods[1:]:
        feats = features[m]
        noise = 100 * torch.randn_like(feats.tokens)
        feats.tokens = torch.where(feats.mask[..., None], feats.tokens, noise)
    assert torch.allclose(before, fusion(features), atol=1e-5)


def test_cross_attention_hidden_sets_out_dim() -> None:
    fusion = CrossAttentionFusion(TWO, D, hidden=8, num_layers=2, num_heads=2)
    assert fusion.out_dim == 8
    assert fusion(make_features(TWO)).shape == (B, 8)


# --- late fusion ------------------------------------------------------------------------------


def test_late_fusion_averages_logits_with_equal_weights_at_init() -> None:
    fusion = LateFusion(TWO, D, num_classes=C).eval()
    features = make_features(TWO)
    per_modality = [fusion.heads[m](features[m].pooled) for m in TWO]
    torch.testing.assert_close(fusion.modality_weights(), torch.full((2,), 0.5))
    torch.testing.assert_close(fusion(features), (per_modality[0] + per_modality[1]) / 2)


@pytest.mark.parametrize("weights", ["learned", "fixed"])
def test_late_fusion_of_probabilities_returns_the_log_of_the_mixture(weights: str) -> None:
    fusion = LateFusion(THREE, D, num_classes=C, combine="probabilities", weights=weights).eval()
    assert (fusion.weight_logits is None) == (weights == "fixed")
    features = make_features(THREE)
    out = fusion(features)
    mixture = torch.stack([fusion.heads[m](features[m].pooled).softmax(-1) for m in THREE]).mean(0)
    torch.testing.assert_close(out.exp(), mixture)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(B))
    # Cross-entropy on the output is the mixture's negative log-likelihood.
    label = torch.arange(B) % C
    torch.testing.assert_close(
        F.cross_entropy(out, label), -mixture[torch.arange(B), label].log().mean()
    )


# --- gated fusion -----------------------------------------------------------------------------


@pytest.mark.parametrize("mods", [TWO, THREE])
def test_gated_fusion_gates_are_a_distribution_per_example(mods: tuple[str, ...]) -> None:
    fusion = GatedFusion(mods, D)
    assert fusion.last_gates is None
    fusion(make_features(mods)).sum().backward()
    gates = fusion.last_gates
    assert gates is not None and gates.shape == (B, len(mods)) and not gates.requires_grad
    assert (gates > 0).all()
    torch.testing.assert_close(gates.sum(dim=1), torch.ones(B))
    assert not torch.allclose(gates[0], gates[1]), "gates must depend on the example"
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.gate.parameters())


# --- FiLM -------------------------------------------------------------------------------------


def test_film_fusion_output_moves_with_the_text_pooled_vector_only() -> None:
    fusion = FiLMFusion(TWO, D).eval()
    features = make_features(TWO)
    before = fusion(features)
    features["text"].tokens = torch.randn_like(features["text"].tokens)
    torch.testing.assert_close(fusion(features), before)
    features["text"].pooled = features["text"].pooled + torch.randn_like(features["text"].pooled)
    assert ((fusion(features) - before).abs().amax(dim=1) > 1e-4).all()


@pytest.mark.parametrize("mods", [TWO, THREE])
def test_film_fusion_starts_near_the_identity_modulation(mods: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    fusion = FiLMFusion(mods, D)
    features = make_features(mods)
    gamma, beta = fusion.modulation(features)
    assert gamma.shape == beta.shape == (B, D)
    assert (gamma - 1).abs().max() < 0.2 and beta.abs().max() < 0.2
    grid = features["image"].grid
    modulated = gamma[:, :, None, None] * grid + beta[:, :, None, None]
    assert (modulated - grid).norm() / grid.norm() < 0.1


def test_film_fusion_conditions_on_the_named_modality_only() -> None:
    fusion = FiLMFusion(THREE, D, conditioning="text")
    assert fusion.modalities == ("image", "text")
    features = make_features(THREE)
    fusion(features).sum().backward()
    assert features["audio"].pooled.grad is None
    assert FiLMFusion(THREE, D, conditioning=["audio"]).modalities == ("image", "audio")
    assert FiLMFusion(THREE, D).modalities == THREE


def test_film_fusion_needs_the_image_grid() -> None:
    features = make_features(TWO)
    features["image"].grid = None
    with pytest.raises(ValueError, match=r"FiLMFusion.*grid"):
        FiLMFusion(TWO, D)(features)


# --- bad knobs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: LateFusion(TWO, D, num_classes=C, combine="mean"), r"LateFusion: combine.*'mean'"),
        (lambda: LateFusion(TWO, D, num_classes=C, weights="x"), r"LateFusion: weights.*'x'"),
        (lambda: FiLMFusion(("text", "audio"), D), r"FiLMFusion.*'image'"),
        (lambda: FiLMFusion(THREE, D, conditioning="image"), r"FiLMFusion: conditioning='image'"),
        (lambda: FiLMFusion(TWO, D, conditioning="audio"), r"FiLMFusion: conditioning='audio'"),
        (lambda: FiLMFusion(TWO, D, num_layers=0), r"FiLMFusion: num_layers"),
        (lambda: LowRankTensorFusion(TWO, D, rank=0), r"LowRankTensorFusion: rank"),
        (lambda: LowRankTensorFusion(TWO, D, proj_dim=0), r"LowRankTensorFusion: proj_dim"),
        (lambda: TensorFusion(TWO, D, proj_dim=0), r"TensorFusion: proj_dim"),
        (lambda: CrossAttentionFusion(TWO, D, num_heads=3), r"CrossAttentionFusion: num_heads"),
        (lambda: CrossAttentionFusion(TWO, D, num_layers=0), r"CrossAttentionFusion: num_layers"),
        (lambda: GatedFusion(("image",), D), r"GatedFusion fuses at least 2"),
    ],
    ids=[
        "late_combine",
        "late_weights",
        "film_without_image",
        "film_conditioning_image",
        "film_conditioning_absent",
        "film_num_layers",
        "low_rank_rank",
        "low_rank_proj_dim",
        "tensor_proj_dim",
        "cross_attention_num_heads",
        "cross_attention_num_layers",
        "gated_one_modality",
    ],
)
def test_bad_knob_is_rejected_naming_it(build: Callable[[], Fusion], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


# --- what each can learn ----------------------------------------------------------------------


class WithHead(nn.Module):
    """A fusion and, unless it already returns class scores, a linear head: the classifier."""

    def __init__(self, fusion: Fusion, num_classes: int) -> None:
        super().__init__()
        self.fusion = fusion
        self.head = (
            nn.Identity() if fusion.produces_logits else nn.Linear(fusion.out_dim, num_classes)
        )

    def forward(self, features: dict[str, ModalityFeatures]) -> torch.Tensor:
        return self.head(self.fusion(features))


def pooled_only(pooled: Sequence[torch.Tensor]) -> dict[str, ModalityFeatures]:
    """Features of ``image`` and ``text`` that carry only a pooled vector each."""
    n = pooled[0].shape[0]
    return {
        m: ModalityFeatures(tokens=p[:, None], mask=torch.ones(n, 1, dtype=torch.bool), pooled=p)
        for m, p in zip(TWO, pooled, strict=True)
    }


def training_accuracy(
    model: nn.Module, pooled: Sequence[torch.Tensor], label: torch.Tensor, steps: int, lr: float
) -> float:
    """Full-batch Adam on cross-entropy, then accuracy on the same examples."""
    features = pooled_only(pooled)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(features), label).backward()
        optimizer.step()
    with torch.no_grad():
        return (model.eval()(features).argmax(dim=1) == label).float().mean().item()


def xor_of_modalities(n: int = 256, noise: float = 0.05) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each modality carries one sign bit along a random direction; the label is their XOR.

    The four bit combinations are equally frequent, and a decision that is additive over the
    modalities gets at least one of them wrong, so its accuracy is at most 75%.
    """
    g = torch.Generator().manual_seed(0)
    bits = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(n // 4, 1)
    directions = F.normalize(torch.randn(2, D, generator=g), dim=1)
    pooled = [
        (2 * bits[:, i, None] - 1).float() * directions[i] + noise * torch.randn(n, D, generator=g)
        for i in range(2)
    ]
    return pooled, bits[:, 0] ^ bits[:, 1]


@pytest.mark.parametrize("combine", ["logits", "probabilities"])
def test_late_fusion_cannot_fit_an_xor_of_modalities_that_concat_fits(combine: str) -> None:
    pooled, label = xor_of_modalities()
    torch.manual_seed(0)
    concat = WithHead(ConcatFusion(TWO, D, dropout=0.0), 2)
    late = LateFusion(TWO, D, num_classes=2, combine=combine, dropout=0.0)
    assert training_accuracy(concat, pooled, label, steps=200, lr=1e-2) >= 0.95
    assert training_accuracy(late, pooled, label, steps=300, lr=5e-2) <= 0.75


@pytest.mark.parametrize(
    "build",
    [
        lambda: TensorFusion(TWO, D, proj_dim=P, hidden=H),
        lambda: LowRankTensorFusion(TWO, D, rank=P + 1, proj_dim=P, hidden=H),  # full rank
    ],
    ids=["tensor", "low_rank_tensor_full_rank"],
)
def test_tensor_fusions_memorise_random_labels(build: Callable[[], Fusion]) -> None:
    g = torch.Generator().manual_seed(0)
    pooled = [torch.randn(32, D, generator=g) for _ in TWO]
    label = torch.randint(0, 4, (32,), generator=g)
    torch.manual_seed(0)
    assert training_accuracy(WithHead(build(), 4), pooled, label, steps=200, lr=1e-2) >= 0.95


def test_low_rank_tensor_fusion_needs_rank_for_a_full_rank_bilinear_target() -> None:
    """``sign(x_1^T A x_2)``: one output unit of tensor fusion is exactly a bilinear form of the
    projections, of rank up to ``proj_dim + 1``; rank one is a product of two linear maps."""
    g = torch.Generator().manual_seed(0)
    pooled = [torch.randn(256, D, generator=g) for _ in TWO]
    label = ((pooled[0] @ torch.randn(D, D, generator=g)) * pooled[1]).sum(dim=1).gt(0).long()
    accuracy = {}
    for rank in (1, 7):
        torch.manual_seed(0)
        fusion = LowRankTensorFusion(TWO, D, rank=rank, proj_dim=6, hidden=1)
        accuracy[rank] = training_accuracy(WithHead(fusion, 2), pooled, label, steps=300, lr=3e-2)
    assert accuracy[7] >= 0.95
    assert accuracy[1] <= 0.85, accuracy


def test_low_rank_factors_are_registered_and_trained() -> None:
    torch.manual_seed(0)
    fusion = LowRankTensorFusion(THREE, D, rank=R, proj_dim=P, hidden=H)
    names = dict(fusion.named_parameters())
    for m in THREE:
        assert names[f"factors.{m}"].shape == (R, P + 1, H)
    before = {name: p.detach().clone() for name, p in names.items()}
    optimizer = torch.optim.SGD(fusion.parameters(), lr=0.1)
    fusion(make_features(THREE)).square().mean().backward()
    optimizer.step()
    for name, p in names.items():
        assert not torch.equal(p, before[name]), f"{name} was not trained"


def test_grid_size_does_not_matter_to_film() -> None:
    features = make_features(TWO)
    features["image"].grid = torch.randn(B, D, GRID + 3, GRID + 1)
    assert FiLMFusion(TWO, D, num_layers=2, hidden=8)(features).shape == (B, 8)
