"""Read a data set from a manifest: JSONL or CSV, one example a line, paths relative to it.

Every data set rolefusion reads, the synthetic one included, goes through this module, so
what is tested on the synthetic scenes is what runs on real data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

FILE_FIELDS: tuple[str, ...] = ("image", "audio")
"""Fields that hold a path, relative to the manifest's directory."""


class ManifestError(ValueError):
    """A manifest line that cannot be read; the message names the file, line and field."""

    def __init__(self, path: Path, line: int | None, reason: str, field: str | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {reason}")
        self.path, self.line, self.field, self.reason = path, line, field, reason


@dataclass(frozen=True)
class Record:
    """One example as the manifest describes it, before any file is opened."""

    id: str
    label: str
    image: Path | None = None
    text: str | None = None
    audio: Path | None = None


def _rows(path: Path) -> Iterator[tuple[int, Mapping[str, object]]]:
    """Yield ``(line number, row)``; line numbers are 1-based as an editor shows them."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ManifestError(path, number, f"not valid JSON ({error.msg})") from error
                if not isinstance(row, dict):
                    raise ManifestError(path, number, "expected a JSON object per line")
                yield number, row
    elif path.suffix in {".csv", ".tsv"}:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ",")
            for row in reader:
                yield reader.line_num, row
    else:
        raise ManifestError(path, None, "expected a .jsonl, .csv or .tsv manifest")


def read_manifest(
    path: str | Path, columns: Mapping[str, str], modalities: tuple[str, ...]
) -> list[Record]:
    """Read every line of a manifest into :class:`Record` objects.

    Args:
        path: the manifest file; image paths in it are relative to its directory.
        columns: which column holds each field, e.g. ``{"image": "img", "text": "text",
            "label": "label", "id": "id"}``. An ``id`` column is optional (the line number is
            used otherwise).
        modalities: the fields besides ``label`` that must be present, e.g. ``("image", "text")``
            (``audio`` too where the data has sound).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, None, "manifest file not found")
    required = ("label", *modalities)
    records = []
    for number, row in _rows(path):
        values = {}
        for field in required:
            column = columns.get(field, field)
            value = row.get(column)
            if value is None or (isinstance(value, str) and field != "text" and not value.strip()):
                raise ManifestError(path, number, f"missing column {column!r}", field=field)
            values[field] = value
        files = {f: path.parent / str(values[f]) for f in FILE_FIELDS if f in values}
        records.append(
            Record(
                id=str(row.get(columns.get("id", "id"), f"{path.stem}-{number}")),
                label=str(values["label"]),
                text=str(values["text"]) if "text" in values else None,
                **files,
            )
        )
    if not records:
        raise ManifestError(path, None, "manifest has no examples")
    return records


@dataclass(frozen=True)
class ManifestFiles:
    """A data set that already exists on disk as one manifest per split under ``root``."""

    root: str
    train: str = "train.jsonl"
    val: str = "val.jsonl"
    test: str = "test.jsonl"

    def prepare(self) -> dict[str, Path]:
        """Return the manifest of each split, failing early if one is missing."""
        splits = {"train": self.train, "val": self.val, "test": self.test}
        paths = {split: Path(self.root) / name for split, name in splits.items()}
        for split, path in paths.items():
            if not path.is_file():
                raise FileNotFoundError(
                    f"data.source.{split}: manifest {path} not found (data.source.root={self.root})"
                )
        return paths
