"""Clean one split's records: text steps, image decoding and checks, audio, labels.

Every example is opened once here, at set-up, so that a corrupt image or an empty text is
found and counted before training starts rather than crashing a DataLoader worker hours in.
The decoded images land in the :class:`DecodedImageCache`, so the work is not wasted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import torch

from rolefusion.data.audio import read_wav
from rolefusion.data.files import ANYWHERE, FileAccess
from rolefusion.data.images import DecodedImageCache, ImagePolicy
from rolefusion.data.labels import LabelMap
from rolefusion.data.manifest import ManifestError, Record
from rolefusion.data.rejections import Rejected

TextStep = Callable[[str], str]


@dataclass(frozen=True)
class Example:
    """A record that passed cleaning; ``image_size`` is the file's (width, height), ``content``
    a digest of its image bytes and cleaned text (equal digests: the same example)."""

    record: Record
    target: int | torch.Tensor | None = None
    image_size: tuple[int, int] | None = None
    content: str | None = None


@dataclass
class Cleaner:
    """Applies the cleaning steps to records; problems go to ``on_error`` as located errors."""

    text_steps: Mapping[str, TextStep]
    images: ImagePolicy
    cache: DecodedImageCache
    sample_rate: int | None = None
    files: FileAccess = ANYWHERE
    threads: int = min(8, os.cpu_count() or 1)

    def clean(
        self, records: Sequence[Record], on_error: Callable[[ManifestError], None]
    ) -> list[Example]:
        """Records -> examples, in manifest order. Image decoding runs on ``threads`` threads
        (Pillow releases the GIL while it decodes)."""
        with ThreadPoolExecutor(self.threads) as pool:
            outcomes = list(pool.map(self._clean_one, records))
        examples = []
        for outcome in outcomes:
            if isinstance(outcome, ManifestError):
                on_error(outcome)
            else:
                examples.append(outcome)
        return examples

    def _clean_one(self, record: Record) -> Example | ManifestError:
        try:
            text = record.text
            if text is not None:
                for step in self.text_steps.values():
                    text = step(text)
            size, image_key = None, ""
            if record.image is not None:
                _, size, image_key = self.cache.load_keyed(record.image, self.images, self.files)
            if record.audio is not None:
                self.read_audio(record)
        except Rejected as rejected:
            return record.error(rejected.reason, rejected.field, rejected.detail)
        content = hashlib.blake2b(f"{image_key}\n{text!r}".encode(), digest_size=16).hexdigest()
        return Example(replace(record, text=text), image_size=size, content=content)

    def load_image(self, record: Record) -> tuple[torch.Tensor, tuple[int, int]]:
        """The decoded image and its original size; an unusable one is :class:`Rejected`."""
        return self.cache.load(record.image, self.images, self.files)

    def read_audio(self, record: Record) -> torch.Tensor:
        """The clip as ``[1, samples]``; an unreadable one is :class:`Rejected`."""
        path = self.files.check(record.audio, "audio")
        try:
            return read_wav(path, self.sample_rate)
        except (ValueError, OSError, EOFError) as error:
            raise Rejected("unreadable audio", "audio", str(error)) from None


def with_targets(
    examples: Sequence[Example], labels: LabelMap, on_error: Callable[[ManifestError], None]
) -> list[Example]:
    """Attach each example's target; a label outside the map is a located error."""
    kept = []
    for example in examples:
        record = example.record
        try:
            folded = labels.fold(record.label)
            kept.append(
                replace(example, record=replace(record, label=folded), target=labels.target(folded))
            )
        except Rejected as rejected:
            on_error(record.error(rejected.reason, rejected.field, rejected.detail))
    return kept
