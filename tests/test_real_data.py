"""Every data preset reads its data set in the released layout and trains on it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
import yaml

from rolefusion.commands.train import train
from rolefusion.data.audio import write_wav
from rolefusion.data.manifest import ManifestError
from rolefusion.runs.build import prepared_datamodule
from rolefusion.runs.data_modalities import drop_absent_modalities

from conftest import compose_config
from real_layouts import MELD_HEADER, PRESETS, emorynlp, hateful_memes, meld, mmimdb, write_csv

SMALL = ["data.image_size=32", "data.batch_size=4", "debug=fast"]


def compose_preset(tmp_path: Path, preset: str, root: Path, *overrides: str):
    return compose_config(
        tmp_path,
        tmp_path / "cache",
        f"data={preset}",
        f"data.root={root}",
        *SMALL,
        *overrides,
        tiny=False,
    )


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_reads_its_layout_and_trains(tmp_path: Path, preset: str) -> None:
    root = PRESETS[preset](tmp_path / preset)
    metrics = train(compose_preset(tmp_path, preset, root))
    assert {"test/f1", "test/acc"} <= set(metrics)
    summary = json.loads((tmp_path / "run" / "data.json").read_text())
    assert summary["examples"]["train"] == 16
    assert summary["dropped"] == {}


def test_hateful_memes_is_binary_with_auroc(tmp_path: Path) -> None:
    root = hateful_memes(tmp_path / "hm")
    metrics = train(compose_preset(tmp_path, "hateful_memes", root))
    assert "test/auroc" in metrics
    assert json.loads((tmp_path / "run" / "classes.json").read_text()) == ["0", "1"]


def test_hateful_memes_unlabelled_test_split_is_a_clear_error(tmp_path: Path) -> None:
    root = hateful_memes(tmp_path / "hm", test_labels=False)
    cfg = compose_preset(tmp_path, "hateful_memes", root)
    with pytest.raises(ManifestError, match=r"test_seen\.jsonl:1: field 'label': missing label"):
        prepared_datamodule(cfg)
    # Without a test step the unlabelled split is never read.
    assert prepared_datamodule(compose_preset(tmp_path, "hateful_memes", root, "test=false"))


def test_hateful_memes_falls_back_to_plain_dev_and_test(tmp_path: Path) -> None:
    root = hateful_memes(tmp_path / "hm")
    (root / "dev_seen.jsonl").rename(root / "dev.jsonl")
    datamodule = prepared_datamodule(compose_preset(tmp_path, "hateful_memes", root))
    assert datamodule.source.manifest("val").name == "dev.jsonl"


def test_missing_root_says_where_it_looked(tmp_path: Path) -> None:
    cfg = compose_preset(tmp_path, "hateful_memes", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"data\.source\.train: no manifest found"):
        prepared_datamodule(cfg)


def test_mmimdb_reads_genre_lists_as_multilabel_targets(tmp_path: Path) -> None:
    datamodule = prepared_datamodule(compose_preset(tmp_path, "mmimdb", mmimdb(tmp_path / "m")))
    assert datamodule.spec.task == "multilabel"
    assert datamodule.labels.class_names == ("Action", "Comedy", "Drama", "Sci-Fi")
    first = datamodule.examples["train"][0]
    assert first.record.text == "a film about Drama and Comedy"  # the first of the plots
    assert first.target.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_meld_label_column_is_a_choice_and_rare_speakers_fold(tmp_path: Path) -> None:
    root = meld(tmp_path / "meld")
    emotions = prepared_datamodule(compose_preset(tmp_path, "meld", root))
    assert emotions.labels.class_names == ("anger", "joy", "neutral", "sadness")
    assert emotions.examples["train"][5].record.id == "dia1_utt1"
    speakers = prepared_datamodule(
        compose_preset(tmp_path, "meld", root, "data/label=speaker", "data.min_label_count=6")
    )
    # 16 lines over 3 speakers: 6, 5, 5 -> the two rarer become "other".
    assert speakers.labels.class_names == ("Monica Geller", "other")
    assert speakers.summary()["class_counts"]["train"] == {"Monica Geller": 6, "other": 10}


def test_emorynlp_speaker_lists_written_as_strings(tmp_path: Path) -> None:
    root = emorynlp(tmp_path / "emory")
    datamodule = prepared_datamodule(
        compose_preset(tmp_path, "emorynlp", root, "data/label=speaker", "data.min_label_count=0")
    )
    labels = [e.record.label for e in datamodule.examples["train"]]
    assert labels[0] == "Monica Geller"
    assert labels[5] == "Chandler Bing & Monica Geller"
    assert "['" not in "".join(datamodule.labels.class_names)


def test_speaker_task_keeps_the_frequent_speakers_and_buckets_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "hand_made"
    root.mkdir()
    speakers = {
        "train": ["Joey"] * 3 + ["Ross"] * 2 + ["Janice"],
        "dev": ["Joey", "Ross", "Gunther"],
        "test": ["Ross", "Janice", "Joey"],
    }
    for split, names in speakers.items():
        rows = [[i + 1, f"line {i} of {name}", name, "neutral", "neutral", 0, i, 1, 1, "", ""]
                for i, name in enumerate(names)]  # fmt: skip
        write_csv(root / f"{split}_sent_emo.csv", MELD_HEADER, rows)
    cfg = compose_preset(tmp_path, "meld", root, "data/label=speaker", "data.min_label_count=2")
    assert cfg.data.columns.label == "Speaker"
    assert list(drop_absent_modalities(cfg)) == ["image"]
    datamodule = prepared_datamodule(cfg)
    assert datamodule.modalities == ("text",)  # no frames: the speaker is told by the line alone
    assert datamodule.labels.class_names == ("Joey", "Ross", "other")
    counts = datamodule.summary()["class_counts"]
    assert counts["train"] == {"Joey": 3, "Ross": 2, "other": 1}
    assert counts["val"] == {"Joey": 1, "Ross": 1, "other": 1}  # Gunther, unseen in training
    assert counts["test"] == {"Joey": 1, "Ross": 1, "other": 1}


# -- the released layouts: text alone, or with frames and audio beside it ------------------------


@pytest.mark.parametrize("preset", ["meld", "emorynlp"])
def test_released_csvs_alone_train_a_text_model_and_say_so_once(
    tmp_path: Path, preset: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = PRESETS[preset](tmp_path / preset, frames=False)
    with caplog.at_level(logging.WARNING, logger="rolefusion.runs.data_modalities"):
        train(compose_preset(tmp_path, preset, root))  # the default model: image + text
    said = [r.getMessage() for r in caplog.records if r.name == "rolefusion.runs.data_modalities"]
    assert len(said) == 1
    assert "the model reads text only, through text_only instead of ChannelFusion" in said[0]
    run = tmp_path / "run"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["modalities"] == ["text"]
    assert config["model"]["image_encoder"] is None
    assert config["model"]["fusion"]["modality"] == "text"
    recorded = json.loads((run / "metrics.json").read_text())
    assert recorded["modalities"] == ["text"]
    assert "none of the files that column" in recorded["absent_modalities"]["image"]
    assert recorded["absent_modalities"]["image"].endswith(
        "/frames/train/dia0_utt0.jpg)" if preset == "meld" else "/frames/train/s1_e2_c0_u0.jpg)"
    )


@pytest.mark.parametrize("preset", ["meld", "emorynlp"])
def test_extracted_frames_are_read_per_split(tmp_path: Path, preset: str) -> None:
    root = PRESETS[preset](tmp_path / preset)
    datamodule = prepared_datamodule(compose_preset(tmp_path, preset, root))
    assert datamodule.modalities == ("image", "text")
    assert datamodule.absent_modalities() == {}
    # MELD numbers dialogues from 0 in every split: each split reads its own folder.
    val = datamodule.examples["val"][0].record.image
    assert val.relative_to(root).parts[:2] == ("frames", "val")


def test_extracted_audio_is_read_by_a_model_with_an_audio_encoder(tmp_path: Path) -> None:
    root = meld(tmp_path / "meld")
    for split in ("train", "val", "test"):
        (root / "audio" / split).mkdir(parents=True)
    for split, size in {"train": 16, "val": 8, "test": 8}.items():
        for i in range(size):
            clip = torch.sin(torch.arange(1600) * (0.05 + 0.01 * i)).unsqueeze(0)
            write_wav(root / f"audio/{split}/dia{i // 4}_utt{i % 4}.wav", clip, 16000)
    train(compose_preset(tmp_path, "meld", root, "model/audio_encoder=cnn1d"))
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert recorded["modalities"] == ["image", "text", "audio"]
    assert "absent_modalities" not in recorded


def test_a_missing_modality_keeps_a_fusion_that_works_on_the_rest(tmp_path: Path) -> None:
    root = meld(tmp_path / "meld")  # frames, no audio
    cfg = compose_preset(tmp_path, "meld", root, "model/audio_encoder=cnn1d")
    assert drop_absent_modalities(cfg) == {
        "audio": "none of the files that column "
        f"'audio/{{split}}/dia{{Dialogue_ID}}_utt{{Utterance_ID}}.wav' names exists "
        f"(e.g. {root}/audio/train/dia0_utt0.wav)"
    }
    assert cfg.model.audio_encoder is None
    assert cfg.model.fusion._target_.endswith("ChannelFusion")
    assert list(cfg.data.modalities) == ["image", "text"]


def test_a_fusion_that_needs_the_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    root = meld(tmp_path / "meld", frames=False)
    (root / "audio" / "train").mkdir(parents=True)
    for i in range(16):
        write_wav(root / f"audio/train/dia{i // 4}_utt{i % 4}.wav", torch.zeros(1, 800), 16000)
    cfg = compose_preset(tmp_path, "meld", root, "model/audio_encoder=cnn1d")
    needs_image = r"ChannelFusion needs the image, .*choose a fusion of \['text', 'audio'\]"
    with pytest.raises(ValueError, match=f"model/fusion: {needs_image}"):
        drop_absent_modalities(cfg)
    image_only = compose_preset(tmp_path, "meld", root, "model/fusion=image_only")
    with pytest.raises(ValueError, match=r"model\.fusion reads 'image' only"):
        drop_absent_modalities(image_only)


def test_missing_modality_raise_names_what_the_data_lacks(tmp_path: Path) -> None:
    root = meld(tmp_path / "meld", frames=False)
    cfg = compose_preset(tmp_path, "meld", root, "data.missing_modality=raise")
    lacks = r"the model reads \['image'\], which .*train_sent_emo\.csv lacks"
    with pytest.raises(ValueError, match=f"data.missing_modality=raise: {lacks}"):
        drop_absent_modalities(cfg)


def test_label_map_and_statistics_travel_with_the_checkpoint(tmp_path: Path) -> None:
    root = PRESETS["manifest"](tmp_path / "plain")
    datamodule = prepared_datamodule(compose_preset(tmp_path, "manifest", root))
    state = datamodule.state_dict()
    assert state["class_names"] == ["knight", "pirate"]
    assert len(state["mean"]) == 3  # computed on the training images (data.mean=null)
    restored = prepared_datamodule(compose_preset(tmp_path, "manifest", root))
    restored.load_state_dict(state)
    assert restored.labels == datamodule.labels
    assert restored.mean == datamodule.mean
