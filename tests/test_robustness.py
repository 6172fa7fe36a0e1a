"""Robustness evaluation end to end, its summaries, and the learned absent modality."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException

from rolefusion.commands.evaluate import Evaluation
from rolefusion.commands.evaluate import run as eval_command
from rolefusion.commands.train import train
from rolefusion.robustness.corruptions import DropModality
from rolefusion.robustness.suite import area, read_reference, summarize

from conftest import compose_command, compose_config
from test_classifier import build, tiny_batch


def run_eval(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rolefusion.evaluate", *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def image_only_checkpoint(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> str:
    cfg = compose_config(
        tmp_path_factory.mktemp("image_only"), data_dir,
        "model/fusion=image_only", "trainer.max_epochs=1", "logger=none",
    )  # fmt: skip
    train(cfg)
    return json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())["best_checkpoint"]


def test_eval_with_corruptions_writes_the_table_curves_and_json(image_only_checkpoint, tmp_path):
    out = tmp_path / "eval"
    done = run_eval(
        tmp_path, f"ckpt_path={image_only_checkpoint}", f"out_dir={out}",
        "corruptions=[drop:text,drop:audio,image_noise,text_shuffle]",
        "corruption_suite.image_noise.strengths=[0.1,0.8]",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "robustness.json").read_text())
    clean = json.loads((out / "metrics.json").read_text())["metrics"]
    assert results["clean"]["f1"] == clean["test/f1"]
    # image_only reads no text: dropping or shuffling it changes nothing at all.
    for name in ("drop:text", "text_shuffle"):
        for level in results["corruptions"][name]:
            assert (
                level["f1"] == results["clean"]["f1"] and level["loss"] == results["clean"]["loss"]
            )
    assert [level["strength"] for level in results["corruptions"]["image_noise"]] == [0.1, 0.8]
    assert results["corruptions"]["image_noise"][1]["loss"] != results["clean"]["loss"]
    assert results["skipped"] == {"drop:audio": "the data has no audio"}
    rows = {row["corruption"]: row for row in results["summary"]}
    assert (
        "relative_robustness" in rows["image_noise"]
        and "relative_robustness" not in rows["drop:text"]
    )
    assert "| image_noise | 0.1, 0.8 |" in (out / "robustness.md").read_text()
    assert (out / "robustness.png").stat().st_size > 1000
    assert "drop:audio skipped" in done.stdout + done.stderr


def test_an_unknown_corruption_is_refused_before_anything_is_evaluated(
    image_only_checkpoint, tmp_path
):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text("earlier result\n")
    cfg = compose_command(
        "eval", f"ckpt_path={image_only_checkpoint}", f"out_dir={out}", "corruptions=[fog]"
    )
    with pytest.raises(ValueError, match=r"corruptions: unknown \['fog'\].*image_noise"):
        eval_command(cfg)  # in this process: the test above runs the command line
    assert (out / "metrics.json").read_text() == "earlier result\n"


def test_a_reference_that_is_not_a_robustness_file_is_named(tmp_path):
    bogus = tmp_path / "robustness.json"
    bogus.write_text("{}")
    with pytest.raises(ValueError, match=r"expected a robustness\.json written by rolefusion-eval"):
        read_reference(bogus)


def test_relative_and_effective_robustness_by_hand():
    results = {
        "clean": {"f1": 0.9},
        "corruptions": {
            "noise": [{"strength": 0.1, "f1": 0.7}, {"strength": 0.2, "f1": 0.5}],
            "drop:text": [{"strength": None, "f1": 0.4}],
        },
    }
    reference = {
        "clean": {"f1": 0.8},
        "corruptions": {"noise": [{"strength": 0.1, "f1": 0.7}, {"strength": 0.2, "f1": 0.6}]},
    }
    noise, drop = summarize(results, "f1", reference)
    # Curve 0.9, 0.7, 0.5 at 0, 0.5, 1: area (0.9 + 0.7) / 4 + (0.7 + 0.5) / 4 = 0.7.
    assert noise["relative_robustness"] == pytest.approx(0.7)
    # The reference shifted to start at 0.9: 0.9, 0.8, 0.7; the gaps 0, -0.1, -0.2 have area -0.1.
    assert noise["effective_robustness"] == pytest.approx(-0.1)
    assert noise["corrupted"] == pytest.approx(0.6) and noise["change"] == pytest.approx(-0.3)
    assert drop["change"] == pytest.approx(-0.5) and "relative_robustness" not in drop
    # Without a reference, effective robustness is the area of the fall from clean.
    (alone, _) = summarize(results, "f1")
    assert alone["effective_robustness"] == pytest.approx(area([0.0, -0.2, -0.4]))


def test_a_dropped_modality_cannot_reach_the_prediction(compose_train):
    model = build(compose_train, "channel").eval()
    batch = replace(tiny_batch(), dropped=("text",))
    other_text = replace(batch, text_ids=torch.flip(batch.text_ids, dims=[0]))
    with torch.no_grad():
        assert torch.equal(model(batch), model(other_text))
        assert not torch.equal(model(batch), model(replace(batch, dropped=())))


def test_modality_dropout_is_learned_and_never_leaves_an_example_empty(compose_train):
    untrained = build(compose_train, "channel")
    assert not any(p.requires_grad for p in untrained.net.absent.parameters())
    model = build(compose_train, "channel", modality_dropout=0.9).train()
    assert all(p.requires_grad for p in model.net.absent.parameters())
    batch = tiny_batch(size=512)
    absent = model.net._absent_rows(batch)
    assert absent.shape == (512, 2)
    assert not absent.all(dim=1).any()
    # p = 0.9 on two modalities: almost every example loses exactly one of them.
    assert absent.float().mean().item() == pytest.approx(0.5, abs=0.05)
    torch.nn.functional.cross_entropy(model(batch), batch.label).backward()
    assert all(p.grad.abs().sum() > 0 for p in model.net.absent.parameters())
    assert model.eval().net._absent_rows(batch) is None


def test_modality_dropout_on_a_single_modality_is_refused(compose_train):
    with pytest.raises(
        InstantiationException, match=r"model\.modality_dropout=0\.3 needs a fusion of two"
    ):
        build(compose_train, "image_only", modality_dropout=0.3)


REDUNDANT_DATA = [
    "data.source.num_train=600",
    "data.source.num_val=100",
    "data.source.num_test=300",
    "data.source.image_size=32",
    "data.source.ambiguity=1",  # either modality alone names the role
    "data.source.label_noise=0.0",
    "data.batch_size=32",
    "trainer.max_epochs=3",
    "logger=none",
    "seed=0",
]


@pytest.mark.slow
def test_modality_dropout_makes_a_model_cope_with_a_missing_modality(tmp_path, data_dir):
    """On data where each modality alone suffices, a model trained without modality dropout
    leans on one modality and falls without it; trained with it, it answers from either."""
    worst = {}
    for p in (0.0, 0.5):
        cfg = compose_config(
            tmp_path / str(p), data_dir, *REDUNDANT_DATA, f"model.modality_dropout={p}", tiny=False
        )
        train(cfg)
        evaluation = Evaluation(str(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"))
        clean = evaluation.clean()
        assert clean["metrics"]["test/f1"] >= 0.95
        suite = {f"drop:{m}": DropModality(m) for m in ("image", "text")}
        results = evaluation.robustness(clean, suite, seed=0)
        worst[p] = min(levels[0]["f1"] for levels in results["corruptions"].values())
    assert worst[0.5] >= 0.9, worst
    assert worst[0.5] >= worst[0.0] + 0.2, worst
