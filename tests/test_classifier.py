"""The assembled model: every fusion trains every encoder it reads, and only those."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from hydra.utils import instantiate

from rolefusion.data.batch import Batch
from rolefusion.models.module import RoleFusionModule

from test_train import FUSIONS

VOCAB = 40


def tiny_batch(size: int = 4) -> Batch:
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(size, 7, dtype=torch.bool)
    mask[0, 3:] = False
    return Batch(
        label=torch.arange(size) % 3,
        image=torch.randn(size, 3, 32, 32, generator=generator),
        text_ids=torch.randint(1, VOCAB, (size, 7), generator=generator) * mask,
        text_mask=mask,
    )


def build(compose_train, fusion: str) -> RoleFusionModule:
    cfg = compose_train(f"model/fusion={fusion}", "model.dim=32")
    return instantiate(
        cfg.model,
        optimizer=partial(torch.optim.SGD, lr=0.1),
        class_names=["a", "b", "c"],
        vocab_size=VOCAB,
        pad_id=0,
    )


@pytest.mark.parametrize("fusion", [f for f in FUSIONS if f != "audio_only"])  # batch: no audio
def test_gradient_reaches_every_encoder_the_fusion_reads(compose_train, fusion):
    module = build(compose_train, fusion)
    logits = module(tiny_batch())
    assert logits.shape == (4, 3)
    torch.nn.functional.cross_entropy(logits, tiny_batch().label).backward()
    expected = {"image_only": {"image"}, "text_only": {"text"}}.get(fusion, {"image", "text"})
    assert set(module.net.encoders) == expected
    for modality, encoder in module.net.encoders.items():
        grads = [p.grad for p in encoder.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), f"{modality} encoder got no gradient"
        assert any(g.abs().sum() > 0 for g in grads), f"{modality} encoder gradient is all zero"


@pytest.mark.parametrize("fusion", ["image_only", "text_only"])
def test_unimodal_baseline_ignores_the_other_modality(compose_train, fusion):
    module = build(compose_train, fusion).eval()
    batch = tiny_batch()
    ignored = "text" if fusion == "image_only" else "image"
    changed = Batch(**{**batch.__dict__})
    if ignored == "text":
        changed.text_ids = torch.flip(batch.text_ids, dims=[0])
    else:
        changed.image = torch.randn_like(batch.image)
    torch.testing.assert_close(module(batch), module(changed))


def test_missing_modality_in_batch_is_a_clear_error(compose_train):
    module = build(compose_train, "channel")
    batch = tiny_batch()
    batch.image = None
    with pytest.raises(KeyError, match="fuses 'image' but the batch has no image"):
        module(batch)
