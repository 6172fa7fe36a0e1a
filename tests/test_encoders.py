"""Specifications of the image and text encoders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rolefusion.models.encoders.cnn import SmallCNN
from rolefusion.models.encoders.rnn import RNNTextEncoder

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
B, D, T, VOCAB, PAD = 3, 16, 9, 50, 0
LENGTHS = (9, 4, 1)


def text_batch(lengths: tuple[int, ...] = LENGTHS) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids ``[B, T]`` (pad id 0) and their mask ``[B, T]``."""
    mask = torch.arange(T) < torch.tensor(lengths)[:, None]
    ids = torch.randint(1, VOCAB, (len(lengths), T), generator=torch.Generator().manual_seed(0))
    return ids.masked_fill(~mask, PAD), mask


@pytest.mark.parametrize("size", [32, 64])
def test_small_cnn_grid_is_fixed_whatever_the_image_size(size: int) -> None:
    feats = SmallCNN(D, grid_size=8)(torch.randn(B, 3, size, size))
    assert feats.grid is not None
    assert feats.grid.shape == (B, D, 8, 8)
    assert feats.tokens.shape == (B, 64, D)
    assert feats.mask.shape == (B, 64) and feats.mask.dtype == torch.bool and feats.mask.all()
    assert torch.allclose(feats.pooled, feats.grid.mean(dim=(2, 3)))
    # tokens are the grid flattened row-major: token 1 is cell (0, 1)
    assert torch.equal(feats.tokens[:, 1], feats.grid[:, :, 0, 1])


def test_small_cnn_takes_other_channels_and_grid_sizes() -> None:
    feats = SmallCNN(D, channels=(8, 8, 8), grid_size=2)(torch.randn(B, 3, 40, 40))
    assert feats.grid is not None and feats.grid.shape == (B, D, 2, 2)
    with pytest.raises(ValueError, match="SmallCNN"):
        SmallCNN(D, channels=())


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_text_encoder_shapes(cell: str, bidirectional: bool) -> None:
    ids, mask = text_batch()
    feats = RNNTextEncoder(D, VOCAB, PAD, cell=cell, bidirectional=bidirectional)(ids, mask)
    assert feats.tokens.shape == (B, T, D)
    assert feats.pooled.shape == (B, D)
    assert feats.grid is None
    assert torch.equal(feats.mask, mask)
    assert (feats.tokens[~mask] == 0).all(), "padded positions are zeroed"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_text_encoder_ignores_padding(cell: str) -> None:
    encoder = RNNTextEncoder(D, VOCAB, PAD, cell=cell, num_layers=2).eval()
    ids, mask = text_batch()
    noisy = torch.where(mask, ids, torch.randint(1, VOCAB, ids.shape))
    clean, dirty = encoder(ids, mask), encoder(noisy, mask)
    assert torch.allclose(clean.pooled, dirty.pooled, atol=1e-6)
    assert torch.allclose(clean.tokens, dirty.tokens, atol=1e-6)


def test_rnn_text_encoder_empty_text_is_finite() -> None:
    ids, mask = text_batch((9, 0, 3))
    feats = RNNTextEncoder(D, VOCAB, PAD)(ids, mask)
    assert torch.isfinite(feats.tokens).all() and torch.isfinite(feats.pooled).all()
    assert (feats.pooled[1] == 0).all()


def test_rnn_text_encoder_rejects_unknown_cell() -> None:
    with pytest.raises(ValueError, match="cell"):
        RNNTextEncoder(D, VOCAB, cell="transformer")


def test_image_encoder_yaml_instantiates() -> None:
    encoder = instantiate(OmegaConf.load(CONF / "image_encoder" / "cnn.yaml"))(dim=D)
    feats = encoder(torch.randn(B, 3, 32, 32))
    assert feats.tokens.shape[0] == B and feats.tokens.shape[2] == D


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_text_encoder_yaml_instantiates(name: str) -> None:
    encoder = instantiate(OmegaConf.load(CONF / "text_encoder" / f"{name}.yaml"))(
        dim=D, vocab_size=VOCAB
    )
    assert isinstance(encoder.rnn, torch.nn.LSTM if name == "lstm" else torch.nn.GRU)
    feats = encoder(*text_batch())
    assert feats.tokens.shape == (B, T, D)
