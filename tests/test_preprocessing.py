"""The preprocessing steps: text cleaning in order, augmentation on the training split only,
normalization statistics from the training split, and the decoded-image cache in use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rolefusion.data.augmentation import Augmentation, drop_tokens
from rolefusion.data.rejections import Rejected
from rolefusion.data.text_cleaning import (
    CollapseWhitespace,
    LimitLength,
    NormalizeUnicode,
    RejectEmpty,
    StripControlCharacters,
)
from rolefusion.runs.build import prepared_datamodule

from conftest import compose_manifest
from real_layouts import plain_manifest


def test_unicode_normalization_folds_look_alikes() -> None:
    assert NormalizeUnicode()("ｆｕｌｌ\u00a0width ﬁne x²") == "full width fine x2"
    with pytest.raises(ValueError, match="form must be one of"):
        NormalizeUnicode("NFX")


def test_control_characters_go_and_whitespace_collapses() -> None:
    text = "\x00 hello\u200b\tthere\r\n\x1b[0m friend  "
    assert CollapseWhitespace()(StripControlCharacters()(text)) == "hello there [0m friend"


def test_long_text_is_truncated_at_a_word_or_dropped() -> None:
    assert LimitLength(12)("the quick brown fox") == "the quick"
    with pytest.raises(Rejected, match="text too long"):
        LimitLength(12, action="drop")("the quick brown fox")


def test_empty_text_is_rejected() -> None:
    with pytest.raises(Rejected, match="empty text"):
        RejectEmpty()("  ")


def compose(tmp_path: Path, *overrides: str):
    return compose_manifest(tmp_path, plain_manifest(tmp_path / "data"), *overrides)


def test_text_steps_run_in_config_order_and_can_be_removed(tmp_path: Path) -> None:
    cfg = compose(tmp_path, "~data.text_cleaning.empty")
    datamodule = prepared_datamodule(cfg)
    assert list(datamodule.cleaner.text_steps) == [
        "unicode",
        "control_characters",
        "whitespace",
        "length",
    ]


def test_augmentation_touches_the_training_split_only(tmp_path: Path) -> None:
    datamodule = prepared_datamodule(
        compose(tmp_path, "data/augment=light", "data.augment.text_token_dropout=0.5")
    )
    torch.manual_seed(0)
    train_a, train_b = (datamodule.dataset("train")[0]["image"] for _ in range(2))
    val_a, val_b = (datamodule.dataset("val")[0]["image"] for _ in range(2))
    assert not torch.equal(train_a, train_b)
    assert torch.equal(val_a, val_b)
    assert datamodule.train_dataloader().collate_fn.token_dropout == 0.5
    assert datamodule.val_dataloader().collate_fn.token_dropout == 0.0


def test_token_dropout_keeps_special_tokens_and_sequences_contiguous() -> None:
    ids = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 2, 0, 0, 0]])
    mask = ids != 0
    special = (ids == 1) | (ids == 2)
    torch.manual_seed(0)
    dropped, kept = drop_tokens(ids, mask, special, p=0.5, pad_id=0)
    for row, keep in zip(dropped, kept, strict=True):
        real = row[keep].tolist()
        assert real[0] == 1 and real[-1] == 2  # [CLS] ... [SEP] survive
        assert keep.tolist() == sorted(keep.tolist(), reverse=True)  # no holes
    assert (dropped[~kept] == 0).all()


def test_augmentation_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"data\.augment\.crop_scale"):
        Augmentation(crop_scale=[0.9, 0.5])
    with pytest.raises(ValueError, match=r"data\.augment\.horizontal_flip"):
        Augmentation(horizontal_flip=1.5)


def test_normalization_statistics_come_from_the_training_split(tmp_path: Path) -> None:
    datamodule = prepared_datamodule(compose(tmp_path))
    pixels = (
        torch.stack(
            [
                datamodule.cleaner.cache.load(e.record.image, datamodule.images)[0]
                for e in datamodule.examples["train"]
            ]
        ).double()
        / 255
    )
    expected_mean = pixels.mean(dim=(0, 2, 3))
    expected_std = pixels.permute(1, 0, 2, 3).flatten(1).std(dim=1, unbiased=False)
    assert datamodule.mean == pytest.approx(expected_mean.tolist(), abs=1e-6)
    assert datamodule.std == pytest.approx(expected_std.tolist(), abs=1e-6)
    normalized = torch.stack([datamodule.dataset("train")[i]["image"] for i in range(16)])
    assert normalized.mean(dim=(0, 2, 3)).abs().max() < 1e-4


def test_decoded_images_are_served_from_the_cache_after_set_up(tmp_path: Path) -> None:
    datamodule = prepared_datamodule(compose(tmp_path))
    cache = datamodule.cleaner.cache
    misses = cache.misses
    for _ in range(2):
        for _batch in datamodule.train_dataloader():
            pass
    assert cache.misses == misses  # every image was decoded once, at set-up


def test_disk_cache_is_shared_by_a_second_run(tmp_path: Path) -> None:
    directory = tmp_path / "image_cache"
    first = prepared_datamodule(compose(tmp_path, f"data.image_cache.directory={directory}"))
    second = prepared_datamodule(compose(tmp_path, f"data.image_cache.directory={directory}"))
    assert first.cleaner.cache.misses > 0
    assert second.cleaner.cache.misses == 0
