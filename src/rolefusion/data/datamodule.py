"""The LightningDataModule: manifests in, :class:`Batch` objects out."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from rolefusion.data.audio import read_wav
from rolefusion.data.batch import Batch
from rolefusion.data.manifest import ManifestError, Record, read_manifest
from rolefusion.data.tokenizer import TokenizerRecipe, pad_id

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")


MODALITIES: tuple[str, ...] = ("image", "text", "audio")


class DataSource(Protocol):
    """Anything that can produce one manifest per split (generating it first if it must)."""

    def prepare(self) -> dict[str, Path]: ...


@dataclass(frozen=True)
class DataSpec:
    """What the model must know about the data before it can be built."""

    class_names: tuple[str, ...]
    vocab_size: int
    pad_id: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _class_order(labels: set[str]) -> tuple[str, ...]:
    """Integers in numeric order (so "10" follows "9"), anything else alphabetically."""
    if all(label.lstrip("-").isdigit() for label in labels):
        return tuple(sorted(labels, key=int))
    return tuple(sorted(labels))


class RoleFusionDataset(Dataset):
    """Decodes one example's files; tokenization happens per batch in :class:`BatchCollator`."""

    def __init__(
        self,
        records: Sequence[Record],
        class_index: Mapping[str, int],
        image_transform: v2.Transform,
        sample_rate: int | None = None,
    ) -> None:
        self.records = records
        self.class_index = class_index
        self.image_transform = image_transform
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        item: dict[str, Any] = {"label": self.class_index[record.label], "text": record.text}
        if record.image is not None:
            item["image"] = self.image_transform(decode_image(str(record.image), ImageReadMode.RGB))
        if record.audio is not None:
            item["audio"] = read_wav(record.audio, self.sample_rate)
        return item


def _pad_waveforms(waveforms: list[torch.Tensor]) -> torch.Tensor:
    """``[1, S_i]`` clips -> ``[B, 1, max S_i]``, zero-padded at the end (silence)."""
    length = max(w.shape[-1] for w in waveforms)
    return torch.stack([torch.nn.functional.pad(w, (0, length - w.shape[-1])) for w in waveforms])


class BatchCollator:
    """Stacks images and tokenizes a whole batch of texts in one call (HF tokenizers' fast path)."""

    def __init__(self, tokenizer: Tokenizer, max_text_length: int) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.enable_truncation(max_length=max_text_length)
        padding = pad_id(tokenizer)
        self.tokenizer.enable_padding(pad_id=padding, pad_token=tokenizer.id_to_token(padding))

    def __call__(self, items: list[dict[str, Any]]) -> Batch:
        batch = Batch(label=torch.tensor([item["label"] for item in items], dtype=torch.long))
        if "image" in items[0]:
            batch.image = torch.stack([item["image"] for item in items])
        if "audio" in items[0]:
            batch.audio = _pad_waveforms([item["audio"] for item in items])
        if items[0]["text"] is not None:
            encodings = self.tokenizer.encode_batch([item["text"] for item in items])
            batch.text_ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            batch.text_mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.bool)
        return batch


class RoleFusionDataModule(L.LightningDataModule):
    """Reads the manifests a :class:`DataSource` provides and serves :class:`Batch` objects.

    The class list and the tokenizer are derived from the training split only and are part
    of the checkpoint (``state_dict``), so a restored run sees exactly the same ids.
    """

    def __init__(
        self,
        source: DataSource,
        modalities: Sequence[str] = ("image", "text"),
        tokenizer: TokenizerRecipe | None = None,
        columns: Mapping[str, str] | None = None,
        image_size: int = 64,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        max_text_length: int = 64,
        sample_rate: int | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"data.modalities: unknown {sorted(unknown)}; expected {MODALITIES}")
        self.source = source
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.tokenizer_recipe = tokenizer or TokenizerRecipe()
        self.columns = dict(columns or {})
        self.max_text_length = max_text_length
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.image_transform = v2.Compose(
            [
                v2.Resize((image_size, image_size), antialias=True),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=list(mean), std=list(std)),
            ]
        )
        self.class_names: tuple[str, ...] | None = None
        self.tokenizer: Tokenizer | None = None
        self.datasets: dict[str, RoleFusionDataset] = {}

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        manifests = self.source.prepare()
        records = {
            split: read_manifest(manifests[split], self.columns, self.modalities)
            for split in SPLITS
        }
        if self.class_names is None:
            self.class_names = _class_order({r.label for r in records["train"]})
        class_index = {name: i for i, name in enumerate(self.class_names)}
        for split in ("val", "test"):
            for record in records[split]:
                if record.label not in class_index:
                    raise ManifestError(
                        manifests[split],
                        None,
                        f"label {record.label!r} of example {record.id!r} never occurs in the "
                        f"training split {manifests['train']}",
                        field="label",
                    )
        if self.tokenizer is None:
            self.tokenizer = self.tokenizer_recipe.build(r.text or "" for r in records["train"])
        self.datasets = {
            split: RoleFusionDataset(
                records[split], class_index, self.image_transform, self.sample_rate
            )
            for split in SPLITS
        }
        log.info(
            "data: %s examples (train/val/test), %d classes, vocabulary %d",
            "/".join(str(len(self.datasets[s])) for s in SPLITS),
            len(self.class_names),
            self.tokenizer.get_vocab_size(),
        )

    @property
    def spec(self) -> DataSpec:
        if self.class_names is None or self.tokenizer is None:
            raise RuntimeError("call setup() before asking for the data spec")
        return DataSpec(self.class_names, self.tokenizer.get_vocab_size(), pad_id(self.tokenizer))

    def save(self, directory: str | Path) -> None:
        """Write the tokenizer and class list beside the run, for people and tools to read."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / "tokenizer.json"))
        (directory / "classes.json").write_text(json.dumps(list(self.class_names), indent=2))

    def state_dict(self) -> dict[str, Any]:
        return {"class_names": list(self.class_names or ()), "tokenizer": self.tokenizer.to_str()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.class_names = tuple(state_dict["class_names"])
        self.tokenizer = Tokenizer.from_str(state_dict["tokenizer"])

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=split == "train",
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            collate_fn=BatchCollator(self.tokenizer, self.max_text_length),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
