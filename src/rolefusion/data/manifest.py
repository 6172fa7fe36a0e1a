"""Read a data set from a manifest: JSONL or CSV, one example a line, paths relative to it.

Every data set rolefusion reads, the synthetic one included, goes through this module, so
what is tested on the synthetic scenes is what runs on real data. A line that cannot be read
is a :class:`ManifestError` naming the file, line, field and reason; the caller decides, through
``on_error``, whether that stops the run or drops the line (``data.on_error``).
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

FILE_FIELDS: tuple[str, ...] = ("image", "audio")
"""Fields that hold a path, relative to the manifest's directory."""

Label = str | tuple[str, ...]
"""One class name, or for multilabel data the tuple of every class that applies."""

_UNDECODABLE = re.compile("[\udc80-\udcff]")
"""Bytes that are not UTF-8 come through ``surrogateescape`` as lone surrogates."""

ENCODING = "utf-8-sig"
"""UTF-8, with the byte-order mark that spreadsheet programs write first skipped if present."""

MAX_CSV_FIELD = 16 * 1024**2
"""Longest CSV cell read, in characters (Python's default is 131,072); a longer one is that
row's ``CSV field too long``."""


class ManifestError(ValueError):
    """A manifest line that cannot be used; the message names the file, line and field.

    ``reason`` is a short phrase that drop counts are keyed by (``"not valid JSON"``);
    ``detail`` is what is particular to this line.
    """

    def __init__(
        self,
        path: Path,
        line: int | None,
        reason: str,
        field: str | None = None,
        detail: str = "",
    ) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        what = f" field {field!r}:" if field else ""
        why = f"{reason} ({detail})" if detail else reason
        super().__init__(f"{where}:{what} {why}")
        self.path, self.line, self.field, self.reason, self.detail = (
            path,
            line,
            field,
            reason,
            detail,
        )


@dataclass(frozen=True)
class Record:
    """One example as the manifest describes it, before any file is opened.

    ``manifest`` and ``line`` say where it came from, so that a problem found later (an image
    that does not decode) is reported at its line.
    """

    id: str
    label: Label | None
    image: Path | None = None
    text: str | None = None
    audio: Path | None = None
    manifest: Path | None = None
    line: int | None = None

    def error(self, reason: str, field: str | None = None, detail: str = "") -> ManifestError:
        return ManifestError(self.manifest or Path("?"), self.line, reason, field, detail)


def _rows(path: Path, on_error: Callable[[ManifestError], None]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, row)``; line numbers are 1-based as an editor shows them."""
    if path.suffix == ".jsonl":
        with path.open(encoding=ENCODING, errors="surrogateescape") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    on_error(ManifestError(path, number, "not valid JSON", detail=error.msg))
                    continue
                if not isinstance(row, dict):
                    on_error(ManifestError(path, number, "not a JSON object"))
                    continue
                yield number, row
    elif path.suffix in {".csv", ".tsv"}:
        yield from _csv_rows(path, on_error)
    else:
        raise ManifestError(path, None, "expected a .jsonl, .csv or .tsv manifest")


def _csv_rows(path: Path, on_error: Callable[[ManifestError], None]) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV or TSV manifest; a row with more or fewer cells than the header is refused
    (an unquoted comma would otherwise shift its label into another column, silently)."""
    csv.field_size_limit(MAX_CSV_FIELD)
    with path.open(encoding=ENCODING, errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t" if path.suffix == ".tsv" else ",")
        header = next(reader, [])
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # a cell over the limit, a NUL byte, a stray newline
                too_long = "field limit" in str(error)
                reason = "CSV field too long" if too_long else "unreadable CSV row"
                detail = (
                    f"{error}; the limit is {MAX_CSV_FIELD:,} characters"
                    if too_long
                    else str(error)
                )
                on_error(ManifestError(path, reader.line_num, reason, detail=detail))
                continue
            if not cells:
                continue
            if len(cells) != len(header):
                reason = "more cells than the header" if len(cells) > len(header) else (
                    "fewer cells than the header")  # fmt: skip
                detail = f"{len(cells)} cells, the header has {len(header)} (an unquoted comma?)"
                on_error(ManifestError(path, reader.line_num, reason, detail=detail))
                continue
            yield reader.line_num, dict(zip(header, cells, strict=True))


def _csv_header(path: Path) -> list[str] | None:
    if path.suffix not in {".csv", ".tsv"}:
        return None
    with path.open(encoding=ENCODING, errors="surrogateescape", newline="") as handle:
        return next(csv.reader(handle, delimiter="\t" if path.suffix == ".tsv" else ","), [])


def _value(row: Mapping[str, object], column: str, split: str | None = None) -> object:
    """A column's value; a column spec with braces is a template over the row's columns,
    e.g. ``"dia{Dialogue_ID}_utt{Utterance_ID}"``. ``{split}`` is the split being read
    (``train``, ``val``, ``test``) unless the row has a column of that name: MELD numbers its
    dialogues from 0 in every split, so its frames live in one folder per split."""
    if "{" in column:
        try:
            return column.format_map({"split": split, **row} if split else row)
        except (KeyError, IndexError, ValueError):
            return None
    return row.get(column)


def _template_columns(column: str, split: str | None) -> list[str]:
    """The manifest columns a column spec reads (``{split}`` is none when the split is known)."""
    if "{" not in column:
        return [column]
    return [n for n in re.findall(r"{(\w+)}", column) if not (n == "split" and split)]


def plain_label(value: object) -> object:
    """A label cell as it may be: a string, an integer (``1.0`` is read as ``1``) or a list of
    them. Booleans, NaN, fractions and objects would each become a class of their own."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean; write the class name or a 0/1 integer")
    if isinstance(value, float):
        if value != value or not value.is_integer():
            raise ValueError(f"{value!r} is not a class: expected a string or an integer")
        return int(value)
    if isinstance(value, dict):
        raise ValueError(f"a JSON object is not a class: {str(value)[:80]}")
    return value


def parse_label(value: object, multilabel: bool, separator: str | None) -> Label:
    """A label cell as written -> a class name, or a tuple of them for multilabel data.

    Lists come as JSON lists, as lists written as a string (``"['Monica Geller']"``, as
    EmoryNLP writes speakers) or, with ``separator``, as ``"Drama|Comedy"``. A single-label
    cell holding a list of several names becomes one class of them all (``"A & B"``).
    """
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as error:
            raise ValueError(f"{value!r} looks like a list but does not parse") from error
    if isinstance(value, list | tuple):
        names = [str(v).strip() for v in value]
    elif isinstance(value, str) and multilabel and separator:
        names = [v.strip() for v in value.split(separator)]
    else:
        names = [str(value).strip()]
    names = list(dict.fromkeys(n for n in names if n))
    if multilabel:
        return tuple(names)
    if not names:
        raise ValueError("empty label")
    return " & ".join(sorted(names)) if len(names) > 1 else names[0]


def read_manifest(
    path: str | Path,
    columns: Mapping[str, str],
    modalities: Sequence[str],
    *,
    multilabel: bool = False,
    label_separator: str | None = None,
    labels_required: bool = True,
    on_error: Callable[[ManifestError], None] | None = None,
    split: str | None = None,
) -> list[Record]:
    """Read every line of a manifest into :class:`Record` objects.

    Args:
        path: the manifest file; file paths in it are relative to its directory.
        columns: which column holds each field, e.g. ``{"image": "img", "text": "text",
            "label": "label", "id": "id"}``; a value with braces is a template over the row.
            An ``id`` column is optional (``<file stem>-<line>`` otherwise).
        modalities: the fields besides ``label`` that must be present, e.g. ``("image", "text")``.
        multilabel, label_separator: how labels are written (:func:`parse_label`).
        labels_required: False for data that is only predicted (an unlabelled test split).
        on_error: called with each line that cannot be read; it raises to stop (the default)
            or records the line as dropped. A CSV header without a required column is never
            a per-line problem: it raises at line 1 whatever ``on_error`` does.
        split: the split this manifest is (``train``, ``val``, ``test``), for column templates
            that name it (``frames/{split}/dia{Dialogue_ID}_utt{Utterance_ID}.jpg``).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, None, "manifest file not found")
    report = on_error or _raise
    required = ("label", *modalities) if labels_required else tuple(modalities)
    header = _csv_header(path)
    if header is not None:
        for field in required:
            for name in _template_columns(columns.get(field, field), split):
                if name not in header:
                    raise ManifestError(
                        path, 1, f"no column {name!r}", field, f"the header has {header}"
                    )
    records = []
    label_kinds: dict[str, int] = {}
    for number, row in _rows(path, report):
        try:
            records.append(
                _record(
                    path,
                    number,
                    row,
                    columns,
                    modalities,
                    multilabel,
                    label_separator,
                    labels_required,
                    label_kinds,
                    split,
                )
            )
        except ManifestError as error:
            report(error)
    if not records:
        raise ManifestError(path, None, "manifest has no usable examples")
    return records


def _record(
    path: Path,
    number: int,
    row: Mapping[str, object],
    columns: Mapping[str, str],
    modalities: Sequence[str],
    multilabel: bool,
    separator: str | None,
    labels_required: bool,
    label_kinds: dict[str, int],
    split: str | None = None,
) -> Record:
    """One row as a :class:`Record`; ``label_kinds`` holds the kind of label (``integer`` or
    ``string``) this file started with and its line, which every later row must match."""
    values: dict[str, object] = {}
    for field in ("label", *modalities):
        column = columns.get(field, field)
        value = _value(row, column, split)
        if value is None or (isinstance(value, str) and field != "text" and not value.strip()):
            if field == "label" and not labels_required:
                continue
            if field == "label":
                raise ManifestError(
                    path,
                    number,
                    "missing label",
                    field,
                    f"column {column!r}; a split without labels can be "
                    "predicted but not trained on or evaluated",
                )
            raise ManifestError(path, number, "missing value", field, f"column {column!r}")
        if field == "text" and isinstance(value, list):
            value = value[0] if value else ""  # several texts (MM-IMDb's plots): the first
        if isinstance(value, str) and _UNDECODABLE.search(value):
            bad = _UNDECODABLE.search(value).group()  # type: ignore[union-attr]
            byte = f"0x{ord(bad) - 0xDC00:02x}"
            raise ManifestError(path, number, "not valid UTF-8", field, f"byte {byte}")
        values[field] = value
    label = None
    if "label" in values:
        try:
            raw = plain_label(values["label"])
            label = parse_label(raw, multilabel, separator)
        except ValueError as error:
            raise ManifestError(path, number, "unreadable label", "label", str(error)) from None
        kind = "integer" if isinstance(raw, int) else "string" if isinstance(raw, str) else None
        if kind is not None:
            first_kind, first_line = next(iter(label_kinds.items()), (kind, number))
            if kind != first_kind:
                raise ManifestError(
                    path, number, "label of another kind", "label",
                    f"{raw!r} is a JSON {kind}; this file's labels are {first_kind}s (line "
                    f"{first_line})",
                )  # fmt: skip
            label_kinds.setdefault(kind, number)
    identifier = _value(row, columns.get("id", "id"), split)
    return Record(
        id=str(identifier) if identifier not in (None, "") else f"{path.stem}-{number}",
        label=label,
        text=str(values["text"]) if "text" in values else None,
        manifest=path,
        line=number,
        **{f: path.parent / str(values[f]) for f in FILE_FIELDS if f in values},
    )


def absent_fields(
    path: str | Path,
    columns: Mapping[str, str],
    fields: Sequence[str],
    split: str | None = None,
) -> dict[str, str]:
    """The fields of ``fields`` that this manifest lacks altogether, each with why.

    A field is absent when its column is not in the header (or in no JSONL row), or, for a
    file field, when not one row names a file that exists: a data set released without its
    frames (MELD's CSVs) lacks its images, whereas one with some files missing has images and
    its missing files are errors of their lines. Lines that cannot be read are passed over
    here; reading the split reports them.
    """
    path = Path(path)
    header = _csv_header(path)
    found_column: set[str] = set()
    found_file: set[str] = set()
    named: dict[str, str] = {}
    for _, row in _rows(path, lambda error: None):
        for field in fields:
            column = columns.get(field, field)
            if header is not None and not set(_template_columns(column, split)) <= set(header):
                continue
            value = _value(row, column, split)
            if value in (None, "") or isinstance(value, list | dict):
                continue
            found_column.add(field)
            if field in FILE_FIELDS and field not in found_file:
                named.setdefault(field, str(value))
                if (path.parent / str(value)).is_file():
                    found_file.add(field)
        if found_column >= set(fields) and found_file >= set(fields) & set(FILE_FIELDS):
            break
    absent = {}
    for field in fields:
        column = columns.get(field, field)
        if field not in found_column:
            absent[field] = f"no column {column!r} in {path.name}"
        elif field in FILE_FIELDS and field not in found_file:
            absent[field] = (
                f"none of the files that column {column!r} names exists "
                f"(e.g. {path.parent / named[field]})"
            )
    return absent


def _raise(error: ManifestError) -> None:
    raise error


@dataclass(frozen=True)
class ManifestFiles:
    """A data set that already exists on disk as one manifest per split under ``root``.

    Each split names a file, or a list of candidates of which the first that exists is used
    (Hateful Memes ships ``dev_seen.jsonl`` in some releases and ``dev.jsonl`` in others).
    """

    root: str
    train: str | list[str] = "train.jsonl"
    val: str | list[str] = "val.jsonl"
    test: str | list[str] = "test.jsonl"

    def manifest(self, split: str) -> Path:
        """The manifest of one split, or a FileNotFoundError listing what was looked for."""
        names = getattr(self, split)
        candidates = [Path(self.root) / n for n in ([names] if isinstance(names, str) else names)]
        for path in candidates:
            if path.is_file():
                return path
        tried = ", ".join(str(p) for p in candidates)
        raise FileNotFoundError(
            f"data.source.{split}: no manifest found (looked for {tried}; data.root={self.root})"
        )

    def prepare(self) -> dict[str, Path]:
        """Return the manifest of each split, failing early if one is missing."""
        return {split: self.manifest(split) for split in ("train", "val", "test")}
