"""``rolefusion-predict``: probabilities equal the module's on the same inputs; formats; safety."""

from __future__ import annotations

import csv
import io
import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from rolefusion.commands.predict import predict
from rolefusion.commands.predict import run as predict_command
from rolefusion.commands.train import train
from rolefusion.runs.restore import restore

from conftest import compose_command, compose_config
from real_layouts import hateful_memes
from test_evaluate import RunsCode


@pytest.fixture
def checkpoint(compose_train: Callable[..., DictConfig]) -> Path:
    cfg = compose_train("trainer.max_epochs=1", "logger=none")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def test_probabilities_equal_the_modules_softmax(checkpoint: Path) -> None:
    run = restore(checkpoint)
    run.datamodule.read("test")
    records = [e.record for e in run.datamodule.examples["test"]]
    results = predict(run, records, batch_size=7)
    expected = torch.cat(
        [run.model(batch).softmax(-1) for batch in run.datamodule.dataloader("test")]
    )
    got = torch.tensor([list(r["probabilities"].values()) for r in results])
    assert [r["id"] for r in results] == [r.id for r in records]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def run_predict(checkpoint: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rolefusion.predict", f"ckpt_path={checkpoint}", *overrides],
        cwd=checkpoint.parent, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_one_example_from_the_command_line(checkpoint: Path, tmp_path: Path) -> None:
    run = restore(checkpoint)
    run.datamodule.read("test")
    record = run.datamodule.examples["test"][0].record
    elsewhere = tmp_path / "new scenes" / "scene.png"  # outside the training data root
    elsewhere.parent.mkdir()
    shutil.copy(record.image, elsewhere)
    done = run_predict(checkpoint, f"image='{elsewhere}'", f"text='{record.text}'",
                       "format=jsonl", "top_k=2")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = done.stdout.strip().splitlines()
    result = json.loads(line)
    assert len(result["top"]) == 2
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    [expected] = predict(run, [record])
    assert result["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)


def test_a_binary_task_writes_the_hateful_memes_submission(tmp_path: Path) -> None:
    root = hateful_memes(tmp_path / "hm", test_labels=False)
    cfg = compose_config(tmp_path, tmp_path / "cache", "data=hateful_memes", f"data.root={root}",
                         "data.image_size=32", "data.batch_size=4", "trainer.max_epochs=1",
                         "logger=none", "test=false", tiny=False)  # fmt: skip
    train(cfg)
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    out = tmp_path / "submission.csv"
    predict_command(compose_command("predict", f"ckpt_path={checkpoint}",
                                    f"input={root / 'test_seen.jsonl'}", "format=csv",
                                    f"output={out}"))  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["id", "proba", "label"] and len(rows) == 8
    for row in rows:
        assert row["label"] == str(int(float(row["proba"]) >= 0.5))


def test_predict_refuses_a_crafted_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "run" / "checkpoints" / "last.ckpt"
    evil.parent.mkdir(parents=True)
    evil.write_bytes(pickle.dumps(RunsCode(marker)))
    done = run_predict(evil, "image=x.png", "text=hi")
    assert done.returncode != 0 and "not a rolefusion checkpoint" in done.stderr
    assert not marker.exists()
