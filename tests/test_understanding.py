"""Why the model decided and whether to trust its confidence, through the commands: attribution
and calibration in a run, in ``rolefusion-eval`` (with temperature scaling) and in
``rolefusion-predict``, and the refusal of attribution for a one-modality model."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rolefusion.commands.evaluate import evaluate
from rolefusion.commands.evaluate import run as eval_command
from rolefusion.commands.predict import predict
from rolefusion.commands.predict import run as predict_command
from rolefusion.commands.train import train
from rolefusion.models.attribution import AttributionUnavailable
from rolefusion.models.calibration import (
    calibration_path,
    confidence_and_correct,
    read_calibration,
    reliability,
)
from rolefusion.models.metrics import class_probabilities
from rolefusion.runs.restore import restore

from conftest import compose_command, compose_config

MODALITIES = ("image", "text")


def trained(root: Path, data_dir: Path, *overrides: str) -> Path:
    cfg = compose_config(root, data_dir, "trainer.max_epochs=2", "logger=none", *overrides)
    train(cfg)
    return Path(cfg.paths.output_dir)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A run trained with modality dropout: its absent modalities are in distribution."""
    return trained(tmp_path_factory.mktemp("dropout"), data_dir, "model.modality_dropout=0.3")


@pytest.fixture(scope="module")
def evaluated(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``rolefusion-eval calibrate=true`` of the run's best checkpoint: its output folder and
    what the command printed."""
    out = tmp_path_factory.mktemp("eval")
    done = run_command("evaluate", best_checkpoint(run_dir), "calibrate=true", f"out_dir={out}")
    return out, done.stdout + done.stderr


def best_checkpoint(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])


def run_command(name: str, checkpoint: Path, *overrides: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", f"rolefusion.{name}", f"ckpt_path={checkpoint}", *overrides],
        cwd=checkpoint.parent, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def shapley_columns(frame: pd.DataFrame) -> np.ndarray:
    return frame[[f"shap_{m}" for m in MODALITIES]].to_numpy()


def test_a_run_attributes_every_test_example_and_scores_its_calibration(run_dir: Path) -> None:
    result = json.loads((run_dir / "metrics.json").read_text())
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"id": str})
    phi = shapley_columns(frame)
    attribution = result["attribution"]
    assert attribution["modalities"] == list(MODALITIES) and attribution["in_distribution"]
    overall = attribution["overall"]
    mean_abs = np.abs(phi).mean(0)
    assert [overall["mean_abs"][m] for m in MODALITIES] == pytest.approx(mean_abs, abs=1e-5)
    shares = mean_abs / mean_abs.sum()
    assert [overall["share"][m] for m in MODALITIES] == pytest.approx(shares, abs=1e-5)
    for m, share in zip(MODALITIES, shares, strict=True):
        assert result["metrics"][f"test/share_{m}"] == pytest.approx(share, abs=1e-5)
    assert (mean_abs > 0).all()
    per_class = attribution["per_class"]
    assert sum(group["examples"] for group in per_class.values()) == len(frame)
    for name, group in per_class.items():
        rows = np.abs(phi[(frame["predicted"] == name).to_numpy()]).mean(0)
        assert [group["mean_abs"][m] for m in MODALITIES] == pytest.approx(rows, abs=1e-5)

    classes = result["classes"]
    probabilities = frame[[f"p_{c}" for c in classes]].to_numpy()
    target = frame["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    confidence, correct = confidence_and_correct(probabilities, target, "multiclass")
    assert result["metrics"]["test/ece"] == pytest.approx(
        reliability(confidence, correct).ece, abs=1e-5
    )
    brier = ((probabilities - np.eye(len(classes))[target]) ** 2).sum(1).mean()
    assert result["metrics"]["test/brier"] == pytest.approx(brier, abs=1e-5)


def test_eval_reproduces_the_runs_attributions_and_fits_a_temperature(
    run_dir: Path, evaluated: tuple[Path, str]
) -> None:
    out, _ = evaluated
    recorded = pd.read_csv(run_dir / "predictions.csv", dtype={"id": str})
    again = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    assert again["id"].tolist() == recorded["id"].tolist()
    np.testing.assert_allclose(shapley_columns(again), shapley_columns(recorded), atol=1e-5)

    result = json.loads((out / "metrics.json").read_text())
    calibration = result["calibration"]
    for split in ("val", "test"):
        scores = calibration["splits"][split]
        assert set(scores) == {"nll_before", "nll_after", "ece_before", "ece_after"}
    val = calibration["splits"]["val"]
    assert val["nll_after"] <= val["nll_before"]
    checkpoint = best_checkpoint(run_dir)
    stored = read_calibration(checkpoint)
    assert stored is not None and stored.temperature == calibration["temperature"] > 0
    assert Path(calibration["file"]) == calibration_path(checkpoint)
    assert stored.nll_after == pytest.approx(val["nll_after"])
    assert result["metrics"]["test/acc"] == pytest.approx(
        json.loads((run_dir / "metrics.json").read_text())["metrics"]["test/acc"]
    )  # scaling changes confidence, never a decision
    for picture in ("reliability.png", "attribution.png", "attribution_examples.png"):
        assert (out / picture).stat().st_size > 5000, picture


def test_predict_shows_the_shares_eval_computed_with_calibrated_probabilities(
    run_dir: Path, evaluated: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = evaluated
    checkpoint = best_checkpoint(run_dir)
    frame = pd.read_csv(out / "predictions.csv", dtype={"id": str}).set_index("id")
    magnitude = np.abs(shapley_columns(frame))
    eval_shares = magnitude / magnitude.sum(1, keepdims=True)

    run = restore(checkpoint)
    run.datamodule.read("test")
    records = [e.record for e in run.datamodule.examples["test"]]
    results = predict(run, records, batch_size=5, attribution=True)
    got = np.array([[r["shares"][m] for m in MODALITIES] for r in results])
    np.testing.assert_allclose(got, eval_shares[[frame.index.get_loc(r.id) for r in records]],
                               atol=1e-5)  # fmt: skip

    manifest = out / "some.jsonl"  # with copies of the images: predict reads from its folder
    for record in records[:4]:
        shutil.copy(record.image, out / record.image.name)
    manifest.write_text(
        "".join(
            json.dumps({"id": r.id, "image": r.image.name, "text": r.text}) + "\n"
            for r in records[:4]
        )
    )
    temperature = read_calibration(checkpoint).temperature

    def predict_to_stdout(*overrides: str) -> str:
        """rolefusion-predict in this process (test_predict.py runs its command line)."""
        capsys.readouterr()
        predict_command(compose_command("predict", f"ckpt_path={checkpoint}", *overrides))
        return capsys.readouterr().out

    jsonl = predict_to_stdout(f"input={manifest}", "format=jsonl")
    rows = [json.loads(line) for line in jsonl.splitlines()]
    assert [row["id"] for row in rows] == [r.id for r in records[:4]]
    for row in rows:
        assert [row["shares"][m] for m in MODALITIES] == pytest.approx(
            eval_shares[frame.index.get_loc(row["id"])], abs=1e-5
        )
    with torch.no_grad():
        batch = next(iter(run.datamodule.dataloader("test")))
        logits = run.model(batch)[:4]
    calibrated = class_probabilities("multiclass", logits / temperature)
    shown = [list(row["probabilities"].values()) for row in rows]
    np.testing.assert_allclose(shown, calibrated.numpy(), atol=1e-5)
    table = predict_to_stdout(f"input={manifest}", "format=table")
    assert "modality shares" in table and f"temperature {temperature:.3f}" in table
    written = out / "predicted.csv"
    predict_to_stdout(f"input={manifest}", "format=csv", f"output={written}")
    with written.open() as handle:
        header = next(csv.reader(handle))
    assert header == ["id", "label", "probability", "share_image", "share_text"]


def test_a_model_that_never_saw_a_modality_absent_is_flagged(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = trained(tmp_path, data_dir, "trainer.max_epochs=1")
    assert "out of distribution, so these values are indicative only" in caplog.text
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["attribution"]["in_distribution"] is False
    assert evaluate(str(best_checkpoint(run_dir)))["attribution"]["in_distribution"] is False


def test_attribution_of_a_one_modality_model_is_refused_and_writes_nothing(
    tmp_path: Path, data_dir: Path
) -> None:
    run_dir = trained(tmp_path, data_dir, "trainer.max_epochs=1", "model/fusion=text_only")
    result = json.loads((run_dir / "metrics.json").read_text())
    assert "attribution" not in result  # auto: nothing to share out
    assert "shap_text" not in (run_dir / "predictions.csv").read_text().splitlines()[0]
    out = tmp_path / "eval"
    checkpoint = best_checkpoint(run_dir)
    refusal = "attribution needs at least two modalities; this model reads only text"
    with pytest.raises(AttributionUnavailable, match=refusal):
        eval_command(
            compose_command("eval", f"ckpt_path={checkpoint}", "attribution=true", f"out_dir={out}")
        )
    assert not out.exists()
    with pytest.raises(AttributionUnavailable, match=refusal):
        predict_command(
            compose_command("predict", f"ckpt_path={checkpoint}", "attribution=true", "text=ahoy")
        )
    assert not calibration_path(checkpoint).exists()


@pytest.mark.slow
def test_attribution_finds_what_the_data_was_built_to_show(tmp_path: Path) -> None:
    """On today's (additive) scenes a model trained with modality dropout rests on both
    modalities; when every picture is the same blank, on the text. The cheapest settings that
    show it, through the script that measures docs/understanding.md."""
    out = tmp_path / "docs" / "understanding.md"
    subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "scripts" / "understanding.py"), "run",
         "--variants", "additive", "text_only", "--seeds", "1", "--parallel", "2",
         "--scene", "num_train=600", "num_val=100", "num_test=200", "image_size=16",
         "--work", str(tmp_path / "work"), "--out", str(out)],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    summary = json.loads(out.with_suffix(".json").read_text())["summary"]
    additive, text_only = summary["additive"], summary["text_only"]
    assert additive["in_distribution"] and text_only["in_distribution"]
    assert additive["f1"][0] > 0.8 and text_only["f1"][0] > 0.8  # both models learnt
    assert min(additive["share"]["image"][0], additive["share"]["text"][0]) > 0.2
    assert text_only["share"]["text"][0] > 0.8
    page = out.read_text()
    assert "| additive |" in page and "| text_only |" in page
    assert (out.parent / "images" / "understanding" / "text_only_examples.png").is_file()
