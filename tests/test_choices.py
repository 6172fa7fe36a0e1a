"""Every choice is typed: a value outside it fails before any data is read or model built,
naming the key and the values it allows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.config.checks import ConfigError
from rolefusion.data.images import ImagePolicy
from rolefusion.models.fusion.late import LateFusion

from conftest import compose_config

BAD_CHOICES = [
    ("model/fusion=late", "model.fusion.combine=mean", "'logits', 'probabilities'"),
    ("model/fusion=late", "model.fusion.weights=equal", "'learned', 'fixed'"),
    (None, "data.task=regression", "'multiclass', 'binary', 'multilabel'"),
    (None, "data.on_error=ignore", "'raise', 'skip'"),
    (None, "data.class_balance=oversample", "'none', 'loss', 'sampler'"),
    (None, "data.images.resize=zoom", "'pad', 'crop', 'stretch'"),
    (None, "data.text_cleaning.length.action=cut", "'truncate', 'drop'"),
    (None, "data.text_cleaning.unicode.form=NFX", "'NFC', 'NFKC', 'NFD', 'NFKD'"),
    (None, "model.average=samples", "'macro', 'weighted', 'micro'"),
    (None, "model.text_encoder.cell=rnn", "'lstm', 'gru'"),
    ("model/fusion=image_only", "model.fusion.modality=smell", "'image', 'text', 'audio'"),
]


@pytest.mark.parametrize(("group", "override", "allowed"), BAD_CHOICES)
def test_bad_choice_fails_before_data_is_read(
    tmp_path: Path, group: str | None, override: str, allowed: str
) -> None:
    data_dir = tmp_path / "never_written"
    cfg = compose_config(tmp_path, data_dir, *filter(None, [group, override]))
    key, value = override.split("=")
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value).startswith(f"{key}: expected one of {allowed}, got {value!r}")
    assert not data_dir.exists()
    assert not (tmp_path / "run").exists()


def test_predict_refuses_a_bad_format_before_reading_the_checkpoint(tmp_path: Path) -> None:
    from rolefusion.commands.predict import run

    cfg = DictConfig({"format": "xml", "ckpt_path": str(tmp_path / "missing.ckpt")})
    with pytest.raises(ValueError, match=r"^format: expected one of \('table', 'jsonl', 'csv'\)"):
        run(cfg)


def test_evaluate_checks_a_data_override_before_restoring(tmp_path: Path) -> None:
    from rolefusion.commands.evaluate import run

    data = compose_config(tmp_path, tmp_path / "data", "data.on_error=ignore").data
    cfg = DictConfig({"data": data, "ckpt_path": str(tmp_path / "missing.ckpt")})
    with pytest.raises(ConfigError, match=r"^data\.on_error: expected one of 'raise', 'skip'"):
        run(cfg)


@pytest.mark.parametrize(
    "build",
    [
        lambda: LateFusion(("image", "text"), 8, num_classes=2, combine="mean"),
        lambda: ImagePolicy(16, "zoom"),
    ],
    ids=["late_fusion", "image_policy"],
)
def test_python_callers_get_the_same_refusal(build: Callable[[], object]) -> None:
    """Built from Python rather than a config, the constructors refuse it themselves."""
    with pytest.raises(ValueError, match="must be one of"):
        build()
