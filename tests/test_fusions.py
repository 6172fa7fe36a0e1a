"""Specifications of the fusions: what each reads, what it ignores, and how it fails."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from rolefusion.models.encoders.cnn import SmallCNN
from rolefusion.models.encoders.rnn import RNNTextEncoder
from rolefusion.models.features import ModalityFeatures
from rolefusion.models.fusion.base import Fusion
from rolefusion.models.fusion.channel import ChannelFusion
from rolefusion.models.fusion.concat import ConcatFusion
from rolefusion.models.fusion.sequence import SequenceFusion
from rolefusion.models.fusion.spatial import SpatialFusion
from rolefusion.models.fusion.unimodal import UnimodalFusion

CONF = Path(__file__).resolve().parents[1] / "conf" / "model" / "fusion"
B, D, GRID = 3, 16, 4
LENGTHS = {"text": (7, 4, 1), "audio": (5, 2, 5)}  # ragged: every row has >= 1 real token
TWO, THREE = ("image", "text"), ("image", "text", "audio")

BUILD: dict[str, Callable[[Sequence[str]], Fusion]] = {
    "sequence": lambda mods: SequenceFusion(mods, D),
    "spatial": lambda mods: SpatialFusion(mods, D),
    "channel": lambda mods: ChannelFusion(mods, D),
    "concat": lambda mods: ConcatFusion(mods, D),
    "image_only": lambda mods: UnimodalFusion(mods, D, modality="image"),
    "text_only": lambda mods: UnimodalFusion(mods, D, modality="text"),
}
# The view each fusion reads from each modality it consumes.
CONSUMES: dict[str, dict[str, str]] = {
    "sequence": {"image": "tokens", "text": "tokens", "audio": "tokens"},
    "spatial": {"image": "grid", "text": "tokens", "audio": "tokens"},
    "channel": {"image": "grid", "text": "pooled", "audio": "pooled"},
    "concat": {"image": "pooled", "text": "pooled", "audio": "pooled"},
    "image_only": {"image": "pooled"},
    "text_only": {"text": "pooled"},
}
CASES = [(name, mods) for name in BUILD for mods in (TWO, THREE)]


def make_features(modalities: Sequence[str], seed: int = 0) -> dict[str, ModalityFeatures]:
    """Random features with independent leaf tensors per view, so gradients show what is read."""
    g = torch.Generator().manual_seed(seed)
    features = {}
    for m in modalities:
        if m == "image":
            grid = torch.randn(B, D, GRID, GRID, generator=g).requires_grad_()
            n, mask = GRID * GRID, torch.ones(B, GRID * GRID, dtype=torch.bool)
        else:
            grid, n = None, max(LENGTHS[m])
            mask = torch.arange(n) < torch.tensor(LENGTHS[m])[:, None]
        tokens = torch.randn(B, n, D, generator=g).requires_grad_()
        pooled = torch.randn(B, D, generator=g).requires_grad_()
        features[m] = ModalityFeatures(tokens=tokens, mask=mask, pooled=pooled, grid=grid)
    return features


def views(feats: ModalityFeatures) -> dict[str, torch.Tensor]:
    return {"tokens": feats.tokens, "pooled": feats.pooled} | (
        {"grid": feats.grid} if feats.grid is not None else {}
    )


@pytest.mark.parametrize(("name", "mods"), CASES)
def test_fusion_sees_every_modality(name: str, mods: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    fusion = BUILD[name](mods)
    assert set(fusion.modalities) == set(CONSUMES[name]) & set(mods)
    assert fusion.view in {"tokens", "grid", "pooled"}
    features = make_features(mods)
    out = fusion(features)
    assert out.shape == (B, fusion.out_dim)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    for m, feats in features.items():
        for view, tensor in views(feats).items():
            reads = CONSUMES[name].get(m) == view
            if reads:
                assert tensor.grad is not None and tensor.grad.abs().sum() > 0, f"{m}.{view}"
            else:
                assert tensor.grad is None or not tensor.grad.any(), f"{m}.{view} leaks in"


@pytest.mark.parametrize(("name", "mods"), CASES)
def test_fusion_ignores_dict_order(name: str, mods: tuple[str, ...]) -> None:
    fusion = BUILD[name](mods).eval()
    features = make_features(mods)
    shuffled = dict(reversed(features.items()))
    assert torch.equal(fusion(features), fusion(shuffled))


@pytest.mark.parametrize("name", ["sequence", "spatial"])
def test_token_fusions_ignore_padding(name: str) -> None:
    fusion = BUILD[name](THREE).eval()
    features = make_features(THREE)
    before = fusion(features)
    for m in ("text", "audio"):
        feats = features[m]
        noise = 100 * torch.randn_like(feats.tokens)
        feats.tokens = torch.where(feats.mask[..., None], feats.tokens, noise)
    assert torch.allclose(before, fusion(features), atol=1e-5)


@pytest.mark.parametrize(
    ("name", "view"),
    [("channel", "pooled"), ("concat", "pooled"), ("spatial", "tokens"), ("sequence", "tokens")],
)
def test_fusion_output_depends_on_text(name: str, view: str) -> None:
    fusion = BUILD[name](TWO).eval()
    features = make_features(TWO)
    before = fusion(features)
    text = features["text"]
    setattr(text, view, getattr(text, view) + torch.randn_like(getattr(text, view)))
    changed = (fusion(features) - before).abs().amax(dim=1)
    assert (changed > 1e-4).all(), "every sample's output must move with its text"


@pytest.mark.parametrize("name", list(BUILD))
def test_fusion_survives_empty_text(name: str) -> None:
    fusion = BUILD[name](TWO)
    features = make_features(TWO)
    features["text"].mask[1] = False
    out = fusion(features)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(
        t.grad is None or torch.isfinite(t.grad).all()
        for f in features.values()
        for t in views(f).values()
    )


def test_hidden_sets_out_dim() -> None:
    features = make_features(TWO)
    for fusion in (
        SpatialFusion(TWO, D, hidden=8),
        ChannelFusion(TWO, D, hidden=8),
        ConcatFusion(TWO, D, hidden=8),
        UnimodalFusion(TWO, D, modality="text", hidden=8),
    ):
        assert fusion.out_dim == 8
        assert fusion(features).shape == (B, 8)


@pytest.mark.parametrize(("text_width", "query_size"), [(None, GRID), (3, 5)])
def test_spatial_fusion_canvas_shapes(text_width: int | None, query_size: int) -> None:
    fusion = SpatialFusion(THREE, D, text_width=text_width, query_size=query_size)
    assert fusion(make_features(THREE)).shape == (B, D)


def test_unimodal_fusion_reads_only_its_modality() -> None:
    fusion = UnimodalFusion(THREE, D, modality="audio")
    assert fusion.modalities == ("audio",)
    # The classifier encodes only fusion.modalities, so a forward with just audio must work.
    assert fusion({"audio": make_features(["audio"])["audio"]}).shape == (B, D)
    with pytest.raises(ValueError, match="UnimodalFusion"):
        UnimodalFusion(TWO, D, modality="audio")


@pytest.mark.parametrize("cls", [ChannelFusion, SpatialFusion])
def test_grid_fusions_need_the_image(cls: type[Fusion]) -> None:
    with pytest.raises(ValueError, match=cls.__name__):
        cls(("text", "audio"), D)
    features = make_features(TWO)
    features["image"].grid = None
    with pytest.raises(ValueError, match=f"{cls.__name__}.*grid"):
        cls(TWO, D)(features)


@pytest.mark.parametrize("name", list(BUILD))
def test_unknown_modality_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown modalities.*smell"):
        BUILD[name](("image", "text", "smell"))


@pytest.mark.parametrize("name", ["sequence", "spatial", "channel", "concat"])
def test_multimodal_fusions_need_two_modalities(name: str) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        BUILD[name](("image",))


@pytest.mark.parametrize("name", list(BUILD))
def test_missing_modality_at_forward_is_named(name: str) -> None:
    fusion = BUILD[name](THREE)
    missing = fusion.modalities[-1]
    features = make_features([m for m in THREE if m != missing])
    with pytest.raises(KeyError, match=missing):
        fusion(features)


def test_sequence_fusion_rejects_too_many_tokens() -> None:
    fusion = SequenceFusion(("text", "audio"), D, max_tokens=5)
    with pytest.raises(ValueError, match=r"'text' has 7 tokens but max_tokens=5"):
        fusion(make_features(("text", "audio")))


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_fusion_yaml_instantiates(path: Path) -> None:
    cfg = OmegaConf.load(path)
    # Late fusion returns class scores itself, so the classifier hands it num_classes.
    extra = {"num_classes": 5} if get_class(cfg._target_).produces_logits else {}
    for mods in (TWO, THREE):
        if cfg.get("modality", mods[0]) not in mods:  # audio_only has no audio in TWO
            continue
        fusion = instantiate(cfg)(modalities=mods, dim=D, **extra)
        assert isinstance(fusion, Fusion)
        assert fusion(make_features(mods)).shape == (B, fusion.out_dim)


@pytest.mark.parametrize("name", list(BUILD))
def test_real_encoders_feed_every_fusion(name: str) -> None:
    mask = torch.arange(6) < torch.tensor([6, 3, 1])[:, None]
    ids = torch.randint(1, 30, (B, 6)).masked_fill(~mask, 0)
    features = {
        "image": SmallCNN(D, grid_size=GRID)(torch.randn(B, 3, 32, 32)),
        "text": RNNTextEncoder(D, 30)(ids, mask),
    }
    fusion = BUILD[name](TWO)
    assert fusion(features).shape == (B, fusion.out_dim)
