"""``debug=overfit``: every fusion memorises a few batches. One that cannot has a bug (a
modality that never reaches the head, a gradient that never flows)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from rolefusion.commands.train import train

from test_train import IMAGE_TEXT_FUSIONS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fusion", IMAGE_TEXT_FUSIONS)
def test_every_fusion_memorises_a_few_batches(
    compose_train: Callable[..., DictConfig], fusion: str
) -> None:
    # Two batches of 16 for 20 epochs: every fusion is at 1.0 by then (2026-12-02; image_only, the
    # slowest, at 0.97 after 15). Fewer epochs only make the bar harder to clear.
    cfg = compose_train(f"model/fusion={fusion}", "debug=overfit", "trainer.overfit_batches=2",
                        "trainer.max_epochs=20", "test=false", "callbacks=none")  # fmt: skip
    metrics = train(cfg)  # fmt: skip
    assert metrics["train/acc"] >= 0.99
