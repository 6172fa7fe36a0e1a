"""Every data preset reads its data set in the released layout and trains on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolefusion.commands.train import train
from rolefusion.data.manifest import ManifestError
from rolefusion.runs.build import prepared_datamodule

from conftest import compose_config
from real_layouts import PRESETS, emorynlp, hateful_memes, meld, mmimdb

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
        compose_preset(
            tmp_path, "meld", root, "data.columns.label=Speaker", "data.min_label_count=6"
        )
    )
    # 16 lines over 3 speakers: 6, 5, 5 -> the two rarer become "other".
    assert speakers.labels.class_names == ("Monica Geller", "other")
    assert speakers.summary()["class_counts"]["train"] == {"Monica Geller": 6, "other": 10}


def test_emorynlp_speaker_lists_written_as_strings(tmp_path: Path) -> None:
    root = emorynlp(tmp_path / "emory")
    datamodule = prepared_datamodule(
        compose_preset(tmp_path, "emorynlp", root, "data.columns.label=Speaker")
    )
    labels = [e.record.label for e in datamodule.examples["train"]]
    assert labels[0] == "Monica Geller"
    assert labels[5] == "Chandler Bing & Monica Geller"
    assert "['" not in "".join(datamodule.labels.class_names)


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
