"""``rolefusion-eval`` reproduces a run's test metrics from its checkpoint, and refuses files
that are not checkpoints without unpickling them."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from rolefusion.commands.evaluate import evaluate
from rolefusion.commands.train import train
from rolefusion.runs.restore import NotARolefusionCheckpoint, load_checkpoint


@pytest.fixture
def trained_run(compose_train: Callable[..., DictConfig]) -> Path:
    cfg = compose_train("trainer.max_epochs=2", "logger=none")
    train(cfg)
    return Path(cfg.paths.output_dir)


def test_eval_of_the_best_checkpoint_reproduces_the_runs_test_metrics(trained_run: Path) -> None:
    recorded = json.loads((trained_run / "metrics.json").read_text())
    result = evaluate(recorded["best_checkpoint"], "test")
    for name in ("acc", "precision", "recall", "f1", "loss"):
        assert result["metrics"][f"test/{name}"] == pytest.approx(
            recorded["metrics"][f"test/{name}"], abs=1e-6
        ), name
    assert result["confusion_matrix"] == recorded["confusion_matrix"]
    assert result["per_class"] == recorded["per_class"]


def test_eval_command_writes_metrics_and_a_confusion_png(trained_run: Path, tmp_path: Path) -> None:
    checkpoint = json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"]
    out = tmp_path / "eval"
    done = subprocess.run(
        [sys.executable, "-m", "rolefusion.evaluate", f"ckpt_path={checkpoint}", "split=val",
         f"out_dir={out}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((out / "metrics.json").read_text())
    assert result["split"] == "val" and "val/f1" in result["metrics"]
    assert sum(map(sum, result["confusion_matrix"])) == result["examples"]
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    ids = [line.split(",", 1)[0] for line in (out / "predictions.csv").read_text().splitlines()]
    assert ids[1:] == [f"val-{i:05d}" for i in range(result["examples"])]  # the split it scored


class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))

    def __init__(self, marker: Path) -> None:
        self.marker = marker


def test_a_crafted_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "run" / "checkpoints" / "best.ckpt"
    evil.parent.mkdir(parents=True)
    evil.write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
    with pytest.raises(NotARolefusionCheckpoint, match="It was not unpickled"):
        load_checkpoint(evil)
    with pytest.raises(NotARolefusionCheckpoint):
        evaluate(str(evil))
    assert not marker.exists()


def test_a_plain_tensor_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(NotARolefusionCheckpoint, match="no state_dict, hyper_parameters"):
        load_checkpoint(path)
