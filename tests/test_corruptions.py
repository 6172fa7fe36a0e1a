"""Each corruption changes what it should and nothing else, the same way every time."""

from __future__ import annotations

import pytest
import torch

from rolefusion.data.batch import Batch
from rolefusion.robustness.corruptions import (
    DropModality,
    ImageBlur,
    ImageNoise,
    InputEncoding,
    TokenDropout,
    TokenShuffle,
)

CLS, SEP, PAD = 1, 2, 0
ENCODING = InputEncoding(
    mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), pad_id=PAD, special_ids=(CLS, SEP)
)


def scene_batch(size: int = 8, length: int = 20) -> Batch:
    """Pixels strictly inside (0, 1), texts framed by [CLS] ... [SEP] and padded."""
    generator = torch.Generator().manual_seed(0)
    pixels = 0.25 + 0.5 * torch.rand(size, 3, 16, 16, generator=generator)
    lengths = torch.randint(6, length + 1, (size,), generator=generator)
    mask = torch.arange(length) < lengths[:, None]
    ids = torch.randint(10, 1000, (size, length), generator=generator)
    ids[:, 0] = CLS
    ids[torch.arange(size), lengths - 1] = SEP
    return Batch(
        label=torch.arange(size) % 3,
        image=ENCODING.normalized(pixels),
        text_ids=torch.where(mask, ids, PAD),
        text_mask=mask,
    )


def corrupt(corruption, strength, batch=None, seed=0):
    return corruption(
        batch or scene_batch(), strength, torch.Generator().manual_seed(seed), ENCODING
    )


def real_tokens(batch: Batch, row: int) -> list[int]:
    return batch.text_ids[row][batch.text_mask[row]].tolist()


def assert_text_unchanged(before: Batch, after: Batch) -> None:
    assert torch.equal(before.text_ids, after.text_ids)
    assert torch.equal(before.text_mask, after.text_mask)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_drop_marks_the_modality_absent_zeroes_its_input_and_keeps_the_other(modality):
    clean = scene_batch()
    dropped = corrupt(DropModality(modality), None, clean)
    assert dropped.dropped == (modality,)
    if modality == "image":
        assert not dropped.image.any()
        assert_text_unchanged(clean, dropped)
    else:
        assert torch.equal(dropped.image, clean.image)
        assert (dropped.text_ids == PAD).all()
        assert dropped.text_mask.sum(1).tolist() == [1] * len(clean)
    assert torch.equal(dropped.label, clean.label)


def test_drop_of_a_modality_the_data_lacks_names_it():
    with pytest.raises(ValueError, match="drop:audio: the data has no audio"):
        corrupt(DropModality("audio"), None)


def test_image_noise_has_the_asked_deviation_in_pixel_units_and_leaves_text_alone():
    clean = scene_batch()
    noisy = corrupt(ImageNoise([0.05]), 0.05, clean)
    difference = ENCODING.pixels(noisy.image) - ENCODING.pixels(clean.image)
    # Pixels lie in [0.25, 0.75]: 0.05 noise is clipped only beyond five deviations.
    assert difference.std().item() == pytest.approx(0.05, rel=0.03)
    assert difference.mean().abs().item() < 0.002
    assert_text_unchanged(clean, noisy)


def test_image_noise_is_clipped_to_valid_pixels():
    pixels = ENCODING.pixels(corrupt(ImageNoise([2.0]), 2.0).image)
    assert pixels.min().item() >= -1e-6 and pixels.max().item() <= 1 + 1e-6


def test_blur_keeps_flat_images_and_channel_means_and_smooths_edges():
    clean = scene_batch()
    blurred = corrupt(ImageBlur([2.0]), 2.0, clean)
    assert_text_unchanged(clean, blurred)

    def spread(image):  # per-channel deviation: what blur smooths
        return (image - image.mean(dim=(-2, -1), keepdim=True)).std()

    assert spread(blurred.image) < 0.5 * spread(clean.image)
    means = blurred.image.mean(dim=(-2, -1)) - clean.image.mean(dim=(-2, -1))
    assert means.abs().max() < 0.05
    flat = Batch(label=clean.label[:1], image=torch.full((1, 3, 16, 16), 0.7))
    assert torch.allclose(corrupt(ImageBlur([2.0]), 2.0, flat).image, flat.image)
    # A kernel wider than the image is cut to fit rather than refused.
    assert corrupt(ImageBlur([40.0]), 40.0, clean).image.shape == clean.image.shape


def test_token_dropout_deletes_ordinary_tokens_in_order_and_keeps_special_ones():
    clean = scene_batch(size=64)
    dropped = corrupt(TokenDropout([0.5]), 0.5, clean)
    assert torch.equal(dropped.image, clean.image)
    kept = total = 0
    for row in range(len(clean)):
        before, after = real_tokens(clean, row), real_tokens(dropped, row)
        assert after[0] == CLS and after[-1] == SEP
        remaining = iter(before)
        assert all(token in remaining for token in after), "not a subsequence"
        kept += len(after) - 2
        total += len(before) - 2
    assert kept / total == pytest.approx(0.5, abs=0.06)


def test_token_shuffle_reorders_words_without_changing_them():
    clean = scene_batch()
    shuffled = corrupt(TokenShuffle([1.0]), 1.0, clean)
    assert torch.equal(shuffled.text_mask, clean.text_mask)
    moved = 0
    for row in range(len(clean)):
        before, after = real_tokens(clean, row), real_tokens(shuffled, row)
        assert sorted(before) == sorted(after)
        assert after[0] == CLS and after[-1] == SEP
        moved += sum(a != b for a, b in zip(before, after, strict=True))
    assert moved > 0
    assert torch.equal(shuffled.image, clean.image)


def test_a_small_shuffle_moves_only_its_share_of_tokens():
    clean = scene_batch(size=32)
    shuffled = corrupt(TokenShuffle([0.25]), 0.25, clean)
    for row in range(len(clean)):
        before, after = real_tokens(clean, row), real_tokens(shuffled, row)
        assert sum(a != b for a, b in zip(before, after, strict=True)) <= round(
            0.25 * (len(before) - 2)
        )


@pytest.mark.parametrize(
    ("corruption", "strength"),
    [(ImageNoise([0.1]), 0.1), (TokenDropout([0.3]), 0.3), (TokenShuffle([0.5]), 0.5)],
)
def test_corruptions_depend_only_on_the_generator(corruption, strength):
    first, again = corrupt(corruption, strength, seed=3), corrupt(corruption, strength, seed=3)
    other = corrupt(corruption, strength, seed=4)
    assert torch.equal(first.image, again.image) and torch.equal(first.text_ids, again.text_ids)
    assert not (
        torch.equal(first.image, other.image) and torch.equal(first.text_ids, other.text_ids)
    )


def test_the_encoding_of_a_bert_style_tokenizer_finds_its_added_tokens():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3}, "[PAD]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encoding = InputEncoding.of(tokenizer, None, None)
    assert encoding.special_ids == (1, 2) and encoding.pad_id == 0
