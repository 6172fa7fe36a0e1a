"""Frozen encoders' outputs, computed once per example and reused by later epochs and by every
job of a sweep (``model.feature_cache``).

An encoder that exposes a :class:`~rolefusion.models.frozen.FrozenPart` (today the pretrained
text encoder with ``freeze: true``) has each example's output of that part looked up here by
content: the key hashes exactly what the frozen part reads of the example (for text, its token
ids: another tokenizer or ``data.max_text_length`` gives other ids, so other keys; so does an
augmented input) inside a namespace that hashes the encoder's frozen weights, configuration and
code, the torch version, the device type and the autocast precision. Nothing is invalidated by
hand: what changed is simply looked up under a key that was never written.

Two layers: a memory store per process (later epochs of a job read nothing from disk) and an
optional disk store shared by every process given the same directory (the jobs of a sweep, the
ranks of a DDP run). Each disk entry is one small file written to a temporary name and renamed
over its key, so concurrent writers of one key leave one whole file and readers never see a
partial one; an entry that does not load is computed again and rewritten.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

import torch
from annotated_types import Ge
from torch import nn

from rolefusion.models.features import ModalityFeatures
from rolefusion.models.frozen import FrozenPart

CACHE_VERSION = 1
"""Part of every namespace: bump it when the file format or the keys change."""


def feature_cache(
    enabled: bool = True,
    directory: str | None = None,
    max_memory_bytes: Annotated[int, Ge(0)] = 2 * 1024**3,
) -> FeatureCache | None:
    """What ``model.feature_cache`` builds: a :class:`FeatureCache`, or None when switched off
    (the model then computes every output every time)."""
    if not enabled:
        return None
    return FeatureCache(Path(directory) if directory else None, max_memory_bytes)


class FeatureCache:
    """Each example's output of an encoder's frozen part, in memory and on disk.

    Args:
        directory: where the disk store lives, shared by every process given it; None keeps
            the outputs in this process's memory only.
        max_memory_bytes: bound of the memory store (least recently used outputs go first);
            0 keeps nothing in memory (the disk store alone).

    ``hits`` counts examples served from memory or disk, ``misses`` the ones computed.
    """

    def __init__(self, directory: Path | None = None, max_memory_bytes: int = 2 * 1024**3) -> None:
        self.directory, self.max_memory_bytes = directory, max_memory_bytes
        self.hits = self.misses = 0
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._memory_bytes = 0

    def encode(self, encoder: nn.Module, *inputs: torch.Tensor) -> ModalityFeatures:
        """``encoder(*inputs)``, its frozen part's outputs taken from the cache where it has
        them. An encoder with no frozen part is simply run.

        The examples missing from the cache are computed together, as rows of the batch (the
        batch's padding kept): when all are missing, exactly as without the cache.
        """
        device = inputs[0].device
        namespace = self.namespace(encoder, device) if isinstance(encoder, FrozenPart) else None
        if namespace is None:
            return encoder(*inputs)
        keys = [_example_key(namespace, read) for read in encoder.frozen_inputs(*inputs)]
        outputs = [self._get(namespace, key) for key in keys]
        missing = [row for row, output in enumerate(outputs) if output is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            rows = inputs if len(missing) == len(keys) else tuple(x[missing] for x in inputs)
            for row, output in zip(missing, encoder.frozen_outputs(*rows), strict=True):
                outputs[row] = self._put(namespace, keys[row], output)
        return encoder.from_frozen([output.to(device) for output in outputs], *inputs)

    def namespace(self, encoder: FrozenPart, device: torch.device) -> str | None:
        """The namespace of ``encoder``'s frozen outputs computed on ``device`` under the
        current autocast setting, or None when nothing of it is frozen now.

        The device type and the autocast precision are in it because they change the outputs:
        bf16 by far, a GPU against a CPU in the last bits.
        """
        fingerprint = encoder.frozen_fingerprint()
        if fingerprint is None:
            return None
        autocast = (
            torch.get_autocast_dtype(device.type)
            if torch.is_autocast_enabled(device.type)
            else None
        )
        described = (
            f"{CACHE_VERSION} torch {torch.__version__} {fingerprint} {device.type} {autocast}"
        )
        return hashlib.blake2b(described.encode(), digest_size=20).hexdigest()

    def _get(self, namespace: str, key: str) -> torch.Tensor | None:
        output = self._memory.get(key)
        if output is not None:
            self._memory.move_to_end(key)
            return output
        output = self._read_disk(namespace, key)
        if output is not None:
            self._remember(key, output)
        return output

    def _put(self, namespace: str, key: str, output: torch.Tensor) -> torch.Tensor:
        """Store an output computed now; returns the stored copy (on the CPU, owning its
        memory rather than viewing the batch's)."""
        output = output.detach().cpu().clone(memory_format=torch.contiguous_format)
        self._remember(key, output)
        self._write_disk(namespace, key, output)
        return output

    def _remember(self, key: str, output: torch.Tensor) -> None:
        size = output.nbytes
        if size > self.max_memory_bytes:
            return
        self._memory[key] = output
        self._memory_bytes += size
        while self._memory_bytes > self.max_memory_bytes:
            _, evicted = self._memory.popitem(last=False)
            self._memory_bytes -= evicted.nbytes

    def _disk_path(self, namespace: str, key: str) -> Path | None:
        """``<directory>/<namespace>/<2 characters>/<key>.pt``: an encoder's outputs apart, so
        that deleting a stale namespace is deleting a folder."""
        if self.directory is None:
            return None
        return Path(self.directory) / namespace[:16] / key[:2] / f"{key}.pt"

    def _read_disk(self, namespace: str, key: str) -> torch.Tensor | None:
        """The stored output, or None when there is none or it does not load (it is then
        computed again and overwritten)."""
        file = self._disk_path(namespace, key)
        if file is None or not file.is_file():
            return None
        try:
            # weights_only: tensors and plain values only, so a planted file cannot run code.
            output = torch.load(file, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
            return None
        return output if isinstance(output, torch.Tensor) else None

    def _write_disk(self, namespace: str, key: str, output: torch.Tensor) -> None:
        """Written to a temporary file beside the target and renamed over it, which is atomic:
        two jobs writing one key write the same output, and the last rename wins."""
        file = self._disk_path(namespace, key)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=key, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(output, stream)
            os.replace(temporary, file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _example_key(namespace: str, read: torch.Tensor) -> str:
    """The key of one example: what the frozen part reads of it (dtype, shape and values),
    within the encoder's namespace."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{namespace} {read.dtype} {tuple(read.shape)}\n".encode())
    digest.update(read.contiguous().numpy())
    return digest.hexdigest()
