"""Bad input never passes silently: ``raise`` names file, line, field and reason; ``skip`` drops
the example and counts it exactly, by reason, in the log and the run directory."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rolefusion.commands.data_inspect import describe, print_report
from rolefusion.commands.train import train
from rolefusion.data.manifest import MAX_CSV_FIELD, ManifestError
from rolefusion.runs.build import prepared_datamodule

from conftest import compose_manifest
from real_layouts import write_image, write_jsonl

GOOD = {"train": 12, "val": 6, "test": 6}
BAD_LINE = 4
"""Every case spoils line 4 of one split's manifest."""


def good_row(split: str, i: int) -> dict:
    return {
        "id": f"{split}{i}",
        "image": f"images/{split}_{i}.png",
        "text": f"role {i % 2} speaks, line {i} of {split}",
        "label": ["pirate", "knight"][i % 2],
    }


def write_data(root: Path) -> Path:
    for split, size in GOOD.items():
        for i in range(size):
            write_image(root / "images" / f"{split}_{i}.png", i)
        write_jsonl(root / f"{split}.jsonl", [good_row(split, i) for i in range(size)])
    return root


def spoil(root: Path, split: str, line: str | None = None, **fields: object) -> None:
    """Insert a bad example as line :data:`BAD_LINE`: ``line`` verbatim, or a good row with
    ``fields`` changed (a value of None deletes the field)."""
    row = {**good_row(split, 0), "id": f"{split}-bad", **fields}
    row = {k: v for k, v in row.items() if v is not None}
    text = line if line is not None else json.dumps(row)
    manifest = root / f"{split}.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    encoded = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    lines.insert(BAD_LINE - 1, encoded + b"\n")
    manifest.write_bytes(b"".join(lines))


def corrupt(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.name


def png_bytes() -> bytes:
    write_image(Path("/tmp/rf_bad_input_probe.png"), 0)
    return Path("/tmp/rf_bad_input_probe.png").read_bytes()


def missing_image(root: Path) -> None:
    spoil(root, "train", image="images/not_there.png")


def corrupt_png(root: Path) -> None:
    corrupt(root / "images/broken.png", png_bytes()[:60])  # header survives, data is cut
    spoil(root, "train", image="images/broken.png")


def corrupt_jpeg(root: Path) -> None:
    corrupt(root / "images/broken.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    spoil(root, "train", image="images/broken.jpg")


def empty_text(root: Path) -> None:
    spoil(root, "train", text="   \t ")


def non_utf8_text(root: Path) -> None:
    row = json.dumps({**good_row("train", 0), "text": "caf\udce9"}, ensure_ascii=False)
    spoil(root, "train", line=row.encode("utf-8", "surrogateescape"))  # type: ignore[arg-type]


def malformed_json(root: Path) -> None:
    spoil(root, "train", line='{"id": "x", "image": "images/train_0.png", "text": "hi",')


def missing_column(root: Path) -> None:
    spoil(root, "train", text=None)


def unknown_label_in_val(root: Path) -> None:
    spoil(root, "val", label="wizard")


def tiny_image(root: Path) -> None:
    write_image(root / "images/tiny.png", 0, (1, 1))
    spoil(root, "train", image="images/tiny.png")


def huge_image(root: Path) -> None:
    Image.new("1", (8000, 8000)).save(root / "images/huge.png")  # compresses to a few KB
    spoil(root, "test", image="images/huge.png")


def outside_file(root: Path) -> Path:
    """A readable image beside the data root, not in it."""
    outside = root.parent / "outside.png"
    write_image(outside, 0)
    return outside


def parent_path(root: Path) -> None:
    outside_file(root)
    spoil(root, "train", image="../outside.png")


def absolute_path(root: Path) -> None:
    spoil(root, "train", image=str(outside_file(root)))


def symlink_out(root: Path) -> None:
    (root / "images" / "link.png").symlink_to(outside_file(root))
    spoil(root, "train", image="images/link.png")


def symlink_loop(root: Path) -> None:
    (root / "images" / "loop.png").symlink_to(root / "images" / "loop.png")
    spoil(root, "train", image="images/loop.png")


def nul_in_path(root: Path) -> None:
    spoil(root, "train", image="images/train_0\x00.png")


def long_name(root: Path) -> None:
    spoil(root, "train", image="images/" + "a" * 300 + ".png")


def directory_as_image(root: Path) -> None:
    (root / "images" / "folder.png").mkdir()
    spoil(root, "train", image="images/folder.png")


def oversized_file(root: Path) -> None:
    with (root / "images" / "big.png").open("wb") as file:
        file.truncate(257 * 1024**2)  # sparse: nothing is written, stat says 257 MiB
    spoil(root, "train", image="images/big.png")


CASES: dict[str, tuple[Callable[[Path], None], str, str, str]] = {
    # name: (how to spoil, split, field, reason)
    "missing image": (missing_image, "train", "image", "image file not found"),
    "corrupt PNG": (corrupt_png, "train", "image", "unreadable image"),
    "corrupt JPEG": (corrupt_jpeg, "train", "image", "unreadable image"),
    "empty text": (empty_text, "train", "text", "empty text"),
    "non-UTF-8 text": (non_utf8_text, "train", "text", "not valid UTF-8"),
    "malformed JSONL line": (malformed_json, "train", "", "not valid JSON"),
    "missing column": (missing_column, "train", "text", "missing value"),
    "unknown label in val": (
        unknown_label_in_val,
        "val",
        "label",
        "label not in the training split",
    ),
    "1x1 image": (tiny_image, "train", "image", "image too small"),
    "8000x8000 image": (huge_image, "test", "image", "image too large"),
    "../ path": (parent_path, "train", "image", "outside the data root"),
    "absolute path": (absolute_path, "train", "image", "outside the data root"),
    "symlink out of the root": (symlink_out, "train", "image", "outside the data root"),
    "symlink loop": (symlink_loop, "train", "image", "unreadable image path"),
    "NUL byte in the path": (nul_in_path, "train", "image", "unreadable image path"),
    "300-character file name": (long_name, "train", "image", "unreadable image path"),
    "a directory": (directory_as_image, "train", "image", "image is not a regular file"),
    "257 MiB file": (oversized_file, "train", "image", "image file too large"),
    "boolean label": (lambda root: spoil(root, "train", label=True), "train", "label",
                      "unreadable label"),
    "NaN label": (lambda root: spoil(root, "train", label=float("nan")), "train", "label",
                  "unreadable label"),
    "fractional label": (lambda root: spoil(root, "train", label=1.5), "train", "label",
                         "unreadable label"),
    "object label": (lambda root: spoil(root, "train", label={"role": "pirate"}), "train",
                     "label", "unreadable label"),
    "integer among string labels": (lambda root: spoil(root, "train", label=1), "train", "label",
                                    "label of another kind"),
}  # fmt: skip


def compose(tmp_path: Path, root: Path, *overrides: str):
    return compose_manifest(tmp_path, root, "debug=fast", *overrides)


@pytest.mark.parametrize("case", CASES)
def test_raise_names_file_line_field_and_reason(tmp_path: Path, case: str) -> None:
    make_bad, split, field, reason = CASES[case]
    root = write_data(tmp_path / "data")
    make_bad(root)
    with pytest.raises(ManifestError) as caught:
        prepared_datamodule(compose(tmp_path, root, "data.on_error=raise"))
    error = caught.value
    assert (error.path.name, error.line, error.reason) == (f"{split}.jsonl", BAD_LINE, reason)
    assert str(error).startswith(f"{root / split}.jsonl:{BAD_LINE}:")
    assert (f"field {field!r}" in str(error)) == bool(field)


@pytest.mark.parametrize("case", CASES)
def test_skip_drops_exactly_the_bad_example_and_counts_it(tmp_path: Path, case: str) -> None:
    make_bad, split, _, reason = CASES[case]
    root = write_data(tmp_path / "data")
    make_bad(root)
    datamodule = prepared_datamodule(compose(tmp_path, root, "data.on_error=skip"))
    assert {s: len(e) for s, e in datamodule.examples.items()} == GOOD
    dropped = datamodule.summary()["dropped"]
    assert list(dropped) == [split]
    assert dropped[split]["dropped"] == 1
    assert dropped[split]["by_reason"] == {reason: 1}
    [where] = dropped[split]["examples"][reason]
    assert where.startswith(f"{root / split}.jsonl:{BAD_LINE}:")


def test_skipped_counts_are_logged_and_written_into_the_run_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_data(tmp_path / "data")
    empty_text(root)
    missing_image(root)  # now line 4, the empty text line 5
    with caplog.at_level(logging.WARNING):
        train(compose(tmp_path, root, "data.on_error=skip"))
    summary = json.loads((tmp_path / "run" / "data.json").read_text())
    assert summary["dropped"]["train"]["by_reason"] == {"image file not found": 1, "empty text": 1}
    assert summary["examples"]["train"] == GOOD["train"]
    logged = [r.getMessage() for r in caplog.records]
    assert any("train: dropped 1 example: empty text" in m and ":5:" in m for m in logged)


def odd_image(mode: str) -> tuple[Image.Image, tuple[int, int, int]]:
    """A 40x30 image in ``mode`` and the RGB colour it must read as."""
    if mode == "I;16":
        return Image.fromarray(np.full((30, 40), 257 * 128, dtype=np.uint16)), (128, 128, 128)
    adaptive = {"palette": Image.Palette.ADAPTIVE} if mode == "P" else {}  # no dithering
    image = Image.new("RGB", (40, 30), (200, 30, 30)).convert(mode, **adaptive)
    return image, tuple(np.asarray(image.convert("RGB"))[15, 20].tolist())


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16"])
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_odd_image_modes_are_read_not_dropped(tmp_path: Path, mode: str, on_error: str) -> None:
    root = write_data(tmp_path / "data")
    image, colour = odd_image(mode)
    image.save(root / "images" / "odd.png")
    spoil(root, "train", image="images/odd.png")
    datamodule = prepared_datamodule(compose(tmp_path, root, f"data.on_error={on_error}"))
    assert len(datamodule.examples["train"]) == GOOD["train"] + 1
    assert datamodule.summary()["dropped"] == {}
    pixels, size = datamodule.cleaner.cache.load(root / "images" / "odd.png", datamodule.images)
    assert pixels.shape == (3, 32, 32) and size == (40, 30)
    assert pixels[:, 16, 16].tolist() == list(colour)


CSV_HEADER = "id,image,text,label"
CSV_CASES: dict[str, tuple[str, str]] = {
    # name: (line 4 of train.csv, reason)
    "unquoted comma": ("train-bad,images/train_0.png,role 0, speaks,pirate",
                       "more cells than the header"),
    "missing cell": ("train-bad,images/train_0.png,pirate", "fewer cells than the header"),
    "cell over the CSV limit": (f"train-bad,images/train_0.png,{'x' * (MAX_CSV_FIELD + 1)},pirate",
                                "CSV field too long"),
}  # fmt: skip


def as_csv(root: Path, bom: bool = False) -> Path:
    """:func:`write_data`'s manifests as CSV files (with a byte-order mark first)."""
    for split in GOOD:
        rows = [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()]
        (root / f"{split}.jsonl").unlink()
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_HEADER.split(","))
        writer.writerows([row[k] for k in CSV_HEADER.split(",")] for row in rows)
        (root / f"{split}.csv").write_text(("\ufeff" if bom else "") + text.getvalue())
    return root


def spoil_csv(root: Path, line: str) -> None:
    manifest = root / "train.csv"
    lines = manifest.read_text().splitlines()
    lines.insert(BAD_LINE - 1, line)
    manifest.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("case", CSV_CASES)
def test_a_csv_row_that_does_not_fit_its_header_is_refused_and_counted(
    tmp_path: Path, case: str
) -> None:
    line, reason = CSV_CASES[case]
    root = as_csv(write_data(tmp_path / "data"))
    spoil_csv(root, line)
    with pytest.raises(ManifestError) as caught:
        prepared_datamodule(compose(tmp_path, root, "data.on_error=raise"))
    assert (caught.value.path.name, caught.value.line, caught.value.reason) == (
        "train.csv", BAD_LINE, reason)  # fmt: skip
    datamodule = prepared_datamodule(compose(tmp_path, root, "data.on_error=skip"))
    assert {s: len(e) for s, e in datamodule.examples.items()} == GOOD
    assert datamodule.summary()["dropped"]["train"]["by_reason"] == {reason: 1}
    assert set(datamodule.labels.class_names) == {"pirate", "knight"}  # no shifted label


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_byte_order_mark_is_read_past(tmp_path: Path, kind: str) -> None:
    root = write_data(tmp_path / "data")
    if kind == "csv":
        as_csv(root, bom=True)
    else:
        for split in GOOD:
            manifest = root / f"{split}.jsonl"
            manifest.write_text("\ufeff" + manifest.read_text())
    datamodule = prepared_datamodule(compose(tmp_path, root, "data.on_error=raise"))
    assert {s: len(e) for s, e in datamodule.examples.items()} == GOOD
    assert datamodule.examples["train"][0].record.id == "train0"  # the first column is read


DUPLICATES = {
    # name: (how to spoil, split, reason)
    "duplicate id": (lambda root: spoil(root, "train", id="train1"), "train", "duplicate id"),
    "training example copied into test": (
        lambda root: spoil(root, "test", line=json.dumps({**good_row("train", 2), "id": "copy"})),
        "test", "identical to a training example"),
}  # fmt: skip


@pytest.mark.parametrize("case", DUPLICATES)
@pytest.mark.parametrize("policy", ["warn", "drop", "raise"])
def test_duplicates_are_reported_dropped_or_refused(
    tmp_path: Path, case: str, policy: str, capsys: pytest.CaptureFixture
) -> None:
    make_bad, split, reason = DUPLICATES[case]
    root = write_data(tmp_path / "data")
    make_bad(root)
    cfg = compose(tmp_path, root, f"data.on_duplicate={policy}")
    if policy == "raise":
        with pytest.raises(ManifestError) as caught:
            prepared_datamodule(cfg).setup("test")
        assert (caught.value.path.name, caught.value.line) == (f"{split}.jsonl", BAD_LINE)
        assert caught.value.reason == reason
        return
    datamodule = prepared_datamodule(cfg)
    datamodule.setup("test")
    summary = datamodule.summary()
    kept = GOOD[split] + (policy == "warn")
    assert len(datamodule.examples[split]) == kept
    counted = summary["duplicates" if policy == "warn" else "dropped"]
    assert counted[split]["by_reason"] == {reason: 1}
    [where] = counted[split]["examples"][reason]
    assert where.startswith(f"{root / split}.jsonl:{BAD_LINE}:")
    print_report(describe(datamodule))
    verb = "found" if policy == "warn" else "dropped"
    assert f"{split}: {verb} 1: {reason}" in capsys.readouterr().out
