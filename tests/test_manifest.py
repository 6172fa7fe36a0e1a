"""The manifest loader: every data set, synthetic or real, is read through it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolefusion.data.manifest import ManifestError, parse_label, read_manifest
from rolefusion.data.roleplay_scenes import RolePlayScenes

COLUMNS = {"image": "image", "text": "text", "label": "label"}


def test_synthetic_manifest_round_trips_through_the_loader(data_dir: Path):
    manifests = RolePlayScenes(data_dir / "roleplay_scenes", 64, 32, 32, image_size=32).prepare()
    lines = [json.loads(line) for line in manifests["train"].read_text().splitlines()]
    records = read_manifest(manifests["train"], COLUMNS, ("image", "text"))
    assert len(records) == len(lines)
    for record, line in zip(records, lines, strict=True):
        assert record.id == line["id"]
        assert record.label == line["label"]
        assert record.text == line["text"]
        assert record.image == manifests["train"].parent / line["image"]
        assert record.image.is_file()


def test_csv_with_mapped_columns(tmp_path: Path):
    manifest = tmp_path / "train.csv"
    manifest.write_text('img,caption,role\na.png,"hello, there",7\nb.png,bye,10\n')
    records = read_manifest(
        manifest, {"image": "img", "text": "caption", "label": "role"}, ("image", "text")
    )
    assert [(r.image.name, r.text, r.label) for r in records] == [
        ("a.png", "hello, there", "7"),
        ("b.png", "bye", "10"),
    ]


def test_bad_json_line_is_named(tmp_path: Path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text('{"image": "a.png", "text": "hi", "label": 1}\n{"image": "b.png", \n')
    with pytest.raises(ManifestError, match=r"train\.jsonl:2: not valid JSON"):
        read_manifest(manifest, COLUMNS, ("image", "text"))


def test_missing_column_names_line_and_field(tmp_path: Path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text(
        '{"image": "a.png", "text": "hi", "label": 1}\n\n{"image": "b.png", "label": 2}\n'
    )
    with pytest.raises(
        ManifestError, match=r"train\.jsonl:3: field 'text': missing value \(column 'text'\)"
    ):
        read_manifest(manifest, COLUMNS, ("image", "text"))


def test_missing_manifest_and_wrong_format(tmp_path: Path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl", COLUMNS, ("text",))
    (tmp_path / "train.parquet").write_text("")
    with pytest.raises(ManifestError, match=r"expected a \.jsonl, \.csv or \.tsv"):
        read_manifest(tmp_path / "train.parquet", COLUMNS, ("text",))


def test_a_csv_header_without_a_required_column_stops_even_when_skipping(tmp_path: Path):
    manifest = tmp_path / "train.csv"
    manifest.write_text("image,caption,label\na.png,hi,1\n")
    dropped = []
    with pytest.raises(ManifestError, match=r"train\.csv:1: field 'text': no column 'text'"):
        read_manifest(manifest, COLUMNS, ("image", "text"), on_error=dropped.append)
    assert dropped == []


def test_columns_can_be_templates_over_the_row(tmp_path: Path):
    manifest = tmp_path / "train.csv"
    manifest.write_text("Dialogue_ID,Utterance_ID,Utterance,Emotion\n3,7,hi,joy\n")
    columns = {
        "id": "dia{Dialogue_ID}_utt{Utterance_ID}",
        "image": "f/{Dialogue_ID}.jpg",
        "text": "Utterance",
        "label": "Emotion",
    }
    [record] = read_manifest(manifest, columns, ("image", "text"))
    assert (record.id, record.image.name, record.label) == ("dia3_utt7", "3.jpg", "joy")


def test_unlabelled_lines_read_when_labels_are_not_required(tmp_path: Path):
    manifest = tmp_path / "test.jsonl"
    manifest.write_text('{"text": "no label here"}\n')
    [record] = read_manifest(manifest, COLUMNS, ("text",), labels_required=False)
    assert record.label is None
    with pytest.raises(ManifestError, match="missing label"):
        read_manifest(manifest, COLUMNS, ("text",))


@pytest.mark.parametrize(
    ("cell", "multilabel", "expected"),
    [
        ("['Monica Geller']", False, "Monica Geller"),
        ("['Ross Geller', 'Monica Geller']", False, "Monica Geller & Ross Geller"),
        (["Drama", "Comedy"], True, ("Drama", "Comedy")),
        ("Drama|Comedy", True, ("Drama", "Comedy")),
        (1, False, "1"),
    ],
)
def test_labels_as_people_write_them(cell, multilabel, expected):
    assert parse_label(cell, multilabel, "|") == expected
