"""Checkpoint files are written whole or not at all, and a file that is not whole is refused by
name wherever it is given (``rolefusion-eval``, ``rolefusion-predict``, ``ckpt_path=`` and the
resume of an interrupted run)."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class NotARolefusionCheckpoint(ValueError):
    """A file that is not a checkpoint written by ``rolefusion-train``."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, quota, permissions)."""


def check_checkpoint_file(path: str | Path) -> Path:
    """``path`` if it is a complete ``torch.save`` archive, else a named refusal.

    ``torch.save`` writes a zip archive whose directory sits at its end, so an empty or
    truncated file (a process killed mid-write by an older version, a copy cut short) fails here
    in microseconds, before anything is unpickled or any model is built.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such file")
    size = path.stat().st_size
    if size == 0 or not zipfile.is_zipfile(path):
        what = "an empty file" if size == 0 else f"{size:,} bytes but no complete zip archive"
        raise NotARolefusionCheckpoint(
            f"{path}: refused: not a rolefusion checkpoint ({what}: truncated, or not written by "
            "torch.save). It was not unpickled."
        )
    return path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but through a temporary file beside the final name,
    flushed to disk and renamed over it.

    A rename within one file system is atomic, so a killed process or a full disk leaves the
    previous ``last.ckpt`` (what a resumed run trusts) intact instead of a truncated file under
    its name. Lightning's own writer stages the bytes in the system's temporary folder, and the
    move from there onto the run's file system is a copy that can stop halfway.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if "://" in str(path):  # a remote store: fsspec's transaction is its atomic write
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options for a local path")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(name, target)
        except BaseException as error:
            Path(name).unlink(missing_ok=True)
            if isinstance(error, OSError):
                free = shutil.disk_usage(target.parent).free
                raise CheckpointWriteError(
                    error.errno,
                    f"{target}: checkpoint not written ({error.strerror or error}); "
                    f"{free / 1e6:,.1f} MB free on its file system. Any earlier file under that "
                    "name is intact.",
                ) from error
            raise
