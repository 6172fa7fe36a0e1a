"""The LightningDataModule: manifests in, cleaned and counted, :class:`Batch` objects out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import lightning as L
import torch
from annotated_types import Ge
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from tokenizers import Tokenizer
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torchvision.transforms import v2

from rolefusion.choices import MODALITY_ORDER, SPLITS, Modality, Task, require_choice
from rolefusion.data import hygiene
from rolefusion.data.augmentation import Augmentation, drop_tokens
from rolefusion.data.batch import Batch
from rolefusion.data.cleaning import Cleaner, Example, TextStep, with_targets
from rolefusion.data.epoch_order import EpochOrder, TrainLoader
from rolefusion.data.files import DEFAULT_MAX_BYTES, FileAccess
from rolefusion.data.images import DecodedImageCache, ImagePolicy
from rolefusion.data.labels import LabelMap
from rolefusion.data.manifest import ManifestError, absent_fields, read_manifest
from rolefusion.data.rejections import DropReport
from rolefusion.data.tokenizer import TokenizerRecipe, pad_id

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
MissingModality = Literal["drop", "raise"]
ClassBalance = Literal["none", "loss", "sampler"]
STAGE_SPLITS = {"fit": ("val",), "validate": ("val",), "test": ("test",), "predict": ("test",)}


class DataSource(Protocol):
    """Where a split's manifest is (generating the data set first, if it must)."""

    def prepare(self) -> Any: ...

    def manifest(self, split: str) -> Path: ...


@dataclass(frozen=True)
class DataSpec:
    """What the model must know about the data before it can be built."""

    class_names: tuple[str, ...]
    vocab_size: int
    pad_id: int
    task: Task = "multiclass"
    class_weights: tuple[float, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class RoleFusionDataset(Dataset):
    """Serves cleaned examples; tokenization happens per batch in :class:`BatchCollator`."""

    def __init__(
        self,
        examples: Sequence[Example],
        load_image: Callable,
        image_transform: v2.Transform,
        read_audio: Callable,
    ) -> None:
        self.examples = examples
        self.load_image = load_image
        self.image_transform = image_transform
        self.read_audio = read_audio

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.examples[index]
        record = example.record
        item: dict[str, Any] = {"label": example.target, "text": record.text, "index": index}
        if record.image is not None:
            image, _ = self.load_image(record)
            item["image"] = self.image_transform(image)
        if record.audio is not None:
            item["audio"] = self.read_audio(record)
        return item


def _pad_waveforms(waveforms: list[torch.Tensor]) -> torch.Tensor:
    """``[1, S_i]`` clips -> ``[B, 1, max S_i]``, zero-padded at the end (silence)."""
    length = max(w.shape[-1] for w in waveforms)
    return torch.stack([torch.nn.functional.pad(w, (0, length - w.shape[-1])) for w in waveforms])


class BatchCollator:
    """Stacks images and tokenizes a whole batch of texts in one call (HF tokenizers' fast path);
    on the training split it also applies token dropout."""

    def __init__(
        self, tokenizer: Tokenizer, max_text_length: int, token_dropout: float = 0.0
    ) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.enable_truncation(max_length=max_text_length)
        self.pad_id = pad_id(tokenizer)
        self.tokenizer.enable_padding(
            pad_id=self.pad_id, pad_token=tokenizer.id_to_token(self.pad_id)
        )
        self.token_dropout = token_dropout

    def __call__(self, items: list[dict[str, Any]]) -> Batch:
        labels = [item["label"] for item in items]
        if labels[0] is None:  # examples to predict: no label, -1 as the Batch contract says
            label = torch.full((len(items),), -1, dtype=torch.long)
        elif isinstance(labels[0], torch.Tensor):
            label = torch.stack(labels)
        else:
            label = torch.tensor(labels, dtype=torch.long)
        batch = Batch(label=label, index=torch.tensor([item["index"] for item in items]))
        if "image" in items[0]:
            batch.image = torch.stack([item["image"] for item in items])
        if "audio" in items[0]:
            batch.audio = _pad_waveforms([item["audio"] for item in items])
        if items[0]["text"] is not None:
            encodings = self.tokenizer.encode_batch([item["text"] for item in items])
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.bool)
            if self.token_dropout:
                special = torch.tensor([e.special_tokens_mask for e in encodings], dtype=torch.bool)
                ids, mask = drop_tokens(ids, mask, special, self.token_dropout, self.pad_id)
            batch.text_ids, batch.text_mask = ids, mask
        return batch


class RoleFusionDataModule(L.LightningDataModule):
    """Reads, cleans and serves the splits of one data set.

    The label map, the tokenizer and the normalization statistics come from the training split
    only and are part of the checkpoint (``state_dict``), so a restored run sees exactly the
    same classes, ids and pixel scale. Every example that cleaning refuses is counted by reason
    (``data.on_error=skip``) or stops the run naming its file and line (``raise``).

    Args:
        source: partial ``(root) -> DataSource`` giving each split's manifest.
        root: the directory that holds the data set (``data.root``).
        task: ``multiclass``, ``binary`` or ``multilabel``.
        modalities: the modalities to read (those the model has an encoder for).
        missing_modality: what a run does when the data set lacks one of ``modalities``
            altogether (MELD's CSVs without frames): ``drop`` it (the run reads the rest,
            :mod:`rolefusion.runs.data_modalities`) or ``raise``.
        columns: which manifest column holds each field (``id``, ``image``, ``text``,
            ``audio``, ``label``); a value with braces is a template over the row.
        multilabel_separator: for multilabel labels written as ``"a|b"`` rather than a list.
        min_label_count: classes with fewer training examples are folded into
            ``other_label`` (0: keep every class; then an unseen label in val/test is refused).
        positive_label: for ``binary``, the positive class (default: the later in class order).
        on_error: ``raise`` or ``skip`` an example that cannot be used.
        on_duplicate: ``warn``, ``drop`` or ``raise`` for an id twice in a split and for a val
            or test example identical to a training one (:mod:`rolefusion.data.hygiene`).
        text_cleaning: named text steps, applied in order.
        image_size: side of the square images the model sees.
        images: partial ``(size) -> ImagePolicy``: how files are decoded and fitted to it.
        image_cache: where decoded, resized images are kept between epochs.
        allowed_roots: folders besides ``root`` that the manifests' files may lie in (symlinks
            are followed before the check); any other path is refused, row by row.
        max_file_bytes: larger image or audio files are refused before they are read.
        mean, std: per-channel normalization; ``null`` computes them on the training split.
        augment: training-split augmentation.
        class_balance: ``none``, ``loss`` (class-weighted loss) or ``sampler`` (a weighted
            sampler that draws every class equally often).
    """

    def __init__(
        self,
        source: Callable[..., DataSource],
        root: str,
        task: Task = "multiclass",
        modalities: Sequence[Modality] = ("image", "text"),
        missing_modality: MissingModality = "drop",
        columns: Mapping[str, str] | None = None,
        multilabel_separator: str | None = None,
        min_label_count: int = 0,
        other_label: str = "other",
        positive_label: str | None = None,
        on_error: OnError = "raise",
        on_duplicate: hygiene.OnDuplicate = "warn",
        text_cleaning: Mapping[str, TextStep | None] | None = None,
        image_size: int = 64,
        images: Callable[..., ImagePolicy] = ImagePolicy,
        image_cache: DecodedImageCache | None = None,
        allowed_roots: Sequence[str] = (),
        max_file_bytes: Annotated[int, Ge(1)] = DEFAULT_MAX_BYTES,
        mean: Sequence[float] | None = (0.5, 0.5, 0.5),
        std: Sequence[float] | None = (0.5, 0.5, 0.5),
        augment: Augmentation | None = None,
        tokenizer: TokenizerRecipe | None = None,
        max_text_length: Annotated[int, Ge(1)] = 64,
        sample_rate: int | None = None,
        class_balance: ClassBalance = "none",
        batch_size: Annotated[int, Ge(1)] = 64,
        num_workers: Annotated[int, Ge(0)] = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
    ) -> None:
        super().__init__()
        for modality in modalities:
            require_choice("data.modalities", modality, Modality)
        require_choice("data.on_error", on_error, OnError)
        require_choice("data.missing_modality", missing_modality, MissingModality)
        require_choice("data.on_duplicate", on_duplicate, hygiene.OnDuplicate)
        require_choice("data.class_balance", class_balance, ClassBalance)
        if (mean is None) != (std is None):
            raise ValueError("data.mean and data.std: give both, or neither (computed on train)")
        self.source = source(root=root)
        self.task = task
        self.modalities = tuple(m for m in MODALITY_ORDER if m in modalities)
        self.missing_modality = missing_modality
        self.columns = dict(columns or {})
        self.multilabel_separator = multilabel_separator
        self.label_options = {
            "min_count": min_label_count,
            "other_label": other_label,
            "positive_label": positive_label,
        }
        self.on_error = on_error
        self.on_duplicate = on_duplicate
        self.images = images(size=image_size)
        self.augment = augment or Augmentation()
        self.tokenizer_recipe = tokenizer or TokenizerRecipe()
        self.cleaner = Cleaner(
            {name: step for name, step in (text_cleaning or {}).items() if step is not None},
            self.images,
            image_cache or DecodedImageCache(),
            sample_rate,
            files=FileAccess.under([root, *allowed_roots], max_file_bytes),
        )
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self.max_text_length = max_text_length
        self.class_balance = class_balance
        self.loader_options = {
            "batch_size": batch_size,
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers and num_workers > 0,
        }
        self.labels: LabelMap | None = None
        self.tokenizer: Tokenizer | None = None
        self.class_weights: tuple[float, ...] | None = None
        self.examples: dict[str, list[Example]] = {}
        self.drops = DropReport()
        self.duplicates = DropReport(verb="found")
        self._train_order: EpochOrder | None = None
        self._order_to_resume: dict[str, int] | None = None

    # -- set-up -------------------------------------------------------------------------------

    def absent_modalities(self) -> dict[str, str]:
        """The modalities this data module would read that the data set has no column or no
        files for at all (in its training split), each with why; with
        ``missing_modality=raise``, a ValueError naming them instead."""
        self.source.prepare()
        manifest = self.source.manifest("train")
        absent = absent_fields(manifest, self.columns, self.modalities, split="train")
        if absent and self.missing_modality == "raise":
            reasons = "; ".join(f"{m}: {why}" for m, why in absent.items())
            raise ValueError(
                f"data.missing_modality=raise: the model reads {list(absent)}, which "
                f"{manifest} lacks ({reasons})"
            )
        return absent

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Read the training split (it defines the classes, vocabulary and pixel statistics,
        unless a checkpoint restored them), then the splits the stage needs. Each split is read
        once, however often Lightning calls this."""
        if stage in (None, "fit") or not self._restored:
            self.read("train")
        for split in STAGE_SPLITS.get(stage or "fit", SPLITS):
            self.read(split)

    @property
    def _restored(self) -> bool:
        """Whether everything the training split decides is known (from a checkpoint)."""
        images_ready = self.mean is not None or "image" not in self.modalities
        return self.labels is not None and self.tokenizer is not None and images_ready

    def read(self, split: str) -> None:
        """Read, clean and count one split (once)."""
        if split in self.examples:
            return
        manifest = self.source.manifest(split)
        on_error = self._error_handler(split)
        records = read_manifest(
            manifest,
            self.columns,
            self.modalities,
            multilabel=self.task == "multilabel",
            label_separator=self.multilabel_separator,
            on_error=on_error,
            split=split,
        )
        examples = self.cleaner.clean(records, on_error)
        if self.labels is None:
            self.labels = LabelMap.from_training(
                [e.record.label for e in examples], self.task, **self.label_options
            )
        examples = with_targets(examples, self.labels, on_error)
        examples = self._without_duplicates(split, examples)
        if not examples:
            raise ManifestError(
                manifest,
                None,
                "no example is left after cleaning",
                detail=f"dropped: {dict(self.drops.counts.get(split, {}))}",
            )
        self.examples[split] = examples
        if split == "train":
            self._fit_to_training(examples)
        for line in [*self.drops.lines(), *self.duplicates.lines()]:
            if line.startswith(f"{split}:"):
                log.warning(line)
        log.info("data: %s split: %d examples from %s", split, len(examples), manifest)

    def _without_duplicates(self, split: str, examples: list[Example]) -> list[Example]:
        """Duplicate ids, and (in a split read after the training one) examples identical to a
        training example, handled as ``data.on_duplicate`` says."""
        found = hygiene.duplicate_ids(examples)
        if split != "train" and "train" in self.examples:
            found += hygiene.seen_in_training(examples, self.examples["train"])
        return hygiene.apply(
            examples, found, self.on_duplicate,
            report=lambda error: self.duplicates.add(split, error),
            drop=lambda error: self.drops.add(split, error),
        )  # fmt: skip

    def _error_handler(self, split: str) -> Callable[[ManifestError], None]:
        def handle(error: ManifestError) -> None:
            if self.on_error == "raise":
                raise error
            self.drops.add(split, error)

        return handle

    def _fit_to_training(self, examples: list[Example]) -> None:
        """What the training split decides: vocabulary, loss weights and pixel statistics."""
        if self.class_balance == "loss":
            targets = [e.target for e in examples]
            self.class_weights = tuple(self.labels.balancing_weights(targets))
        if self.tokenizer is None:
            self.tokenizer = self.tokenizer_recipe.build(e.record.text or "" for e in examples)
        if self.mean is None and "image" in self.modalities:
            self.mean, self.std = self._pixel_statistics(examples)
            log.info(
                "data: normalization from the training split: mean %s, std %s",
                _rounded(self.mean),
                _rounded(self.std),
            )

    def _pixel_statistics(self, examples: list[Example]) -> tuple[tuple[float, ...], ...]:
        """Per-channel mean and standard deviation over every training pixel, in [0, 1]."""
        total = torch.zeros(3, dtype=torch.float64)
        squares = torch.zeros(3, dtype=torch.float64)
        pixels = 0
        for example in examples:
            image, _ = self.cleaner.load_image(example.record)
            values = image.flatten(1).double() / 255
            total += values.sum(1)
            squares += (values**2).sum(1)
            pixels += values.shape[1]
        mean = total / pixels
        std = (squares / pixels - mean**2).clamp_min(1e-12).sqrt()
        return tuple(mean.tolist()), tuple(std.tolist())

    # -- what the model and the run directory need ----------------------------------------------

    @property
    def spec(self) -> DataSpec:
        """What the model is built from: set by the training split, or by a checkpoint."""
        if self.labels is None or self.tokenizer is None:
            raise RuntimeError("call setup() or load_state_dict() before asking for the data spec")
        return DataSpec(
            self.labels.class_names,
            self.tokenizer.get_vocab_size(),
            pad_id(self.tokenizer),
            self.labels.task,
            self.class_weights,
        )

    def summary(self) -> dict[str, Any]:
        """Examples per split, drops by reason, class counts and the fitted statistics."""
        labels = self.labels
        return {
            "task": self.task,
            "modalities": list(self.modalities),
            "classes": list(labels.class_names) if labels else [],
            "examples": {split: len(examples) for split, examples in self.examples.items()},
            "class_counts": {
                split: dict(
                    zip(
                        labels.class_names, labels.counts([e.target for e in examples]), strict=True
                    )
                )
                for split, examples in self.examples.items()
            }
            if labels
            else {},
            "dropped": self.drops.as_dict(),
            "duplicates": self.duplicates.as_dict(),
            "class_balance": self.class_balance,
            "class_weights": list(self.spec.class_weights or ()) or None,
            "normalization": {"mean": self.mean, "std": self.std},
        }

    def save(self, directory: str | Path) -> None:
        """Write the tokenizer, class list and data summary beside the run."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / "tokenizer.json"))
        (directory / "classes.json").write_text(json.dumps(list(self.labels.class_names), indent=2))
        (directory / "data.json").write_text(json.dumps(self.summary(), indent=2) + "\n")

    def state_dict(self) -> dict[str, Any]:
        return {
            "task": self.labels.task,
            "class_names": list(self.labels.class_names),
            "other_label": self.labels.other,
            "tokenizer": self.tokenizer.to_str(),
            "mean": self.mean,
            "std": self.std,
            "class_weights": self.class_weights,
            **self._train_order_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.labels = LabelMap(
            state_dict.get("task", self.task),
            tuple(state_dict["class_names"]),
            state_dict.get("other_label"),
        )
        self.tokenizer = Tokenizer.from_str(state_dict["tokenizer"])
        weights = state_dict.get("class_weights")
        self.class_weights = tuple(weights) if weights is not None else None
        if state_dict.get("mean") is not None:
            self.mean, self.std = tuple(state_dict["mean"]), tuple(state_dict["std"])
        self._order_to_resume = state_dict.get("train_order")

    def _train_order_state(self) -> dict[str, Any]:
        """The epoch and permutation seed of the training order, while fitting: what a run
        resumed mid-epoch needs to go on with the same permutation."""
        order, trainer = self._train_order, self.trainer
        if order is None or order.seed is None or trainer is None:
            return {}
        return {"train_order": {"epoch": trainer.current_epoch, "seed": order.seed}}

    def _resume_order(self, order: EpochOrder) -> None:
        """On a resume in the middle of the epoch the checkpoint was saved in, make ``order``
        go on with that epoch's permutation, past the batches already trained on (Lightning's
        counters: the batches it skips are exactly those)."""
        saved, self._order_to_resume = self._order_to_resume, None
        trainer = self.trainer
        if saved is None or trainer is None or not trainer.fit_loop.restarting:
            return
        trained = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        skip = trained * self.loader_options["batch_size"]
        if saved["epoch"] == trainer.current_epoch and 0 < skip < len(order.data_source):
            order.resume(saved["seed"], skip)

    # -- loaders ------------------------------------------------------------------------------

    def dataset(self, split: str) -> RoleFusionDataset:
        return self.dataset_of(self.examples[split], augment=split == "train")

    def dataset_of(self, examples: Sequence[Example], augment: bool = False) -> RoleFusionDataset:
        """A dataset of any cleaned examples (new ones to predict), transformed as the run's."""
        steps = self.augment.image_steps(self.images.size) if augment else []
        transform = v2.Compose(
            [
                *steps,
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=list(self.mean or (0.5,) * 3), std=list(self.std or (0.5,) * 3)),
            ]
        )
        return RoleFusionDataset(
            examples, self.cleaner.load_image, transform, self.cleaner.read_audio
        )

    def _sampler(self) -> WeightedRandomSampler | None:
        """With ``class_balance=sampler``: each example drawn with weight 1 / its class's count
        (multilabel: its rarest class's), so every class is seen equally often per epoch."""
        if self.class_balance != "sampler":
            return None
        targets = [e.target for e in self.examples["train"]]
        counts = torch.tensor(self.labels.counts(targets), dtype=torch.double).clamp_min(1)
        if self.task == "multilabel":
            hot = torch.stack(targets).bool()
            weights = torch.where(hot, 1 / counts, 0).amax(1).clamp_min(1 / len(targets))
        else:
            weights = 1 / counts[torch.tensor(targets)]
        return WeightedRandomSampler(weights, num_samples=len(targets), replacement=True)

    def collator(self, token_dropout: float = 0.0) -> BatchCollator:
        return BatchCollator(self.tokenizer, self.max_text_length, token_dropout)

    def _evaluation_sampler(self, dataset: Dataset) -> UnrepeatedDistributedSampler | None:
        """Under multi-process training, each rank's share of ``dataset`` with nothing repeated.

        Lightning's default distributed sampler pads the split with duplicates to an equal
        share per rank, which counts those examples twice in validation and test metrics.
        Here ranks may hold one example more than others, and every example counts once.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return None
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def dataloader(self, split: str) -> DataLoader:
        """The loader of any split that was read; only ``train`` shuffles and augments."""
        training = split == "train"
        dataset = self.dataset(split)
        sampler = self._sampler() if training else self._evaluation_sampler(dataset)
        dropout = self.augment.text_token_dropout if training else 0.0
        if training and sampler is None:  # shuffled, resumably (epoch_order)
            sampler = self._train_order = EpochOrder(dataset)
            self._resume_order(sampler)
        return (TrainLoader if training else DataLoader)(
            dataset, sampler=sampler, collate_fn=self.collator(dropout), **self.loader_options
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train")

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")


def _rounded(values: Sequence[float] | None) -> list[float]:
    return [round(v, 4) for v in values or ()]
