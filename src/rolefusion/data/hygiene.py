"""Duplicates that make numbers wrong without an error: an id given twice within a split, and a
test example identical (same image bytes, same cleaned text) to a training one, which scores as
memorised rather than understood. Both are found as the splits are read and, by
``data.on_duplicate``, reported (``warn``), dropped and counted (``drop``) or refused (``raise``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from rolefusion.data.cleaning import Example
from rolefusion.data.manifest import ManifestError

OnDuplicate = Literal["warn", "drop", "raise"]

DUPLICATE_ID = "duplicate id"
SEEN_IN_TRAINING = "identical to a training example"


def _where(example: Example) -> str:
    return f"{example.record.manifest}:{example.record.line}"


def duplicate_ids(examples: Sequence[Example]) -> list[ManifestError]:
    """Every example whose id an earlier example of the split already has."""
    first: dict[str, Example] = {}
    found = []
    for example in examples:
        earlier = first.setdefault(example.record.id, example)
        if earlier is not example:
            detail = f"{example.record.id!r}, first at {_where(earlier)}"
            found.append(example.record.error(DUPLICATE_ID, "id", detail))
    return found


def seen_in_training(
    examples: Sequence[Example], training: Sequence[Example]
) -> list[ManifestError]:
    """Every example identical to a training example (its image bytes and cleaned text)."""
    trained = {e.content: e for e in training if e.content is not None}
    return [
        example.record.error(
            SEEN_IN_TRAINING,
            detail=f"same {_compared(example)} as {_where(trained[example.content])}",
        )
        for example in examples
        if example.content in trained
    ]


def _compared(example: Example) -> str:
    """What an example's ``content`` key covers (``image and text``; ``text`` for MELD's CSVs)."""
    held = {"image": example.record.image, "text": example.record.text}
    return " and ".join(name for name, value in held.items() if value is not None)


def apply(
    examples: list[Example], found: list[ManifestError], policy: OnDuplicate,
    report: Callable[[ManifestError], None], drop: Callable[[ManifestError], None],
) -> list[Example]:  # fmt: skip
    """``examples`` after ``policy`` for the ``found`` duplicates: all of them, reported
    (``warn``); without them, counted as dropped (``drop``); or the first raised (``raise``)."""
    if not found:
        return examples
    if policy == "raise":
        raise found[0]
    for error in found:
        (drop if policy == "drop" else report)(error)
    if policy == "warn":
        return examples
    spoiled = {(e.path, e.line) for e in found}
    return [e for e in examples if (e.record.manifest, e.record.line) not in spoiled]
