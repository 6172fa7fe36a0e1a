"""The assembled model: every fusion trains every encoder it reads, and only those."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from hydra.utils import instantiate

from rolefusion.data.batch import Batch
from rolefusion.models.module import RoleFusionModule

from test_train import IMAGE_TEXT_FUSIONS, THREE_WAY_FUSIONS

VOCAB = 40


def tiny_batch(size: int = 4, audio: bool = False) -> Batch:
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(size, 7, dtype=torch.bool)
    mask[0, 3:] = False
    return Batch(
        label=torch.arange(size) % 3,
        image=torch.randn(size, 3, 32, 32, generator=generator),
        text_ids=torch.randint(1, VOCAB, (size, 7), generator=generator) * mask,
        text_mask=mask,
        audio=torch.randn(size, 1, 4000, generator=generator) * 0.1 if audio else None,
    )


def build(
    compose_train, fusion: str, audio: bool = False, modality_dropout: float = 0.0
) -> RoleFusionModule:
    overrides = [
        f"model/fusion={fusion}",
        "model.dim=32",
        f"model.modality_dropout={modality_dropout}",
    ]
    cfg = compose_train(*overrides, *(["model/audio_encoder=cnn1d"] if audio else []))
    return instantiate(
        cfg.model,
        optimizer=partial(torch.optim.SGD, lr=0.1),
        class_names=["a", "b", "c"],
        vocab_size=VOCAB,
        pad_id=0,
    )


UNIMODAL = {"image_only": {"image"}, "text_only": {"text"}, "audio_only": {"audio"}}
CASES = [(f, False) for f in IMAGE_TEXT_FUSIONS] + [(f, True) for f in THREE_WAY_FUSIONS]


@pytest.mark.parametrize(("fusion", "audio"), CASES)
def test_every_parameter_is_optimised_and_gradient_reaches_every_encoder(
    compose_train, fusion, audio
):
    module = build(compose_train, fusion, audio)
    batch = tiny_batch(audio=audio)
    logits = module(batch)
    assert logits.shape == (4, 3)
    torch.nn.functional.cross_entropy(logits, batch.label).backward()
    present = {"image", "text", "audio"} if audio else {"image", "text"}
    assert set(module.net.encoders) == UNIMODAL.get(fusion, present)

    optimised = {
        id(p) for group in module.configure_optimizers().param_groups for p in group["params"]
    }
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:  # trained only with model.modality_dropout
            assert name.startswith("net.absent."), f"{name} is frozen"
            continue
        assert id(parameter) in optimised, f"{name} never reaches the optimizer"
        assert parameter.grad is not None, f"{name} got no gradient"
    for modality, encoder in module.net.encoders.items():
        grads = [p.grad for p in encoder.parameters()]
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
