"""Opening a file that a manifest names, as if the manifest were hostile.

A path must lead (symlinks followed) inside the data set's allowed roots, to a regular file no
larger than a bound; its size is read from ``stat`` before a byte of it is, so ``/dev/zero``, a
FIFO or a 50 GB file is refused without being read. Every failure of the operating system on one
path (a name too long, a NUL byte, a symlink loop, a permission) is that row's
:class:`Rejected`, counted under ``data.on_error=skip``, never the run's crash.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rolefusion.data.rejections import Rejected

DEFAULT_MAX_BYTES = 256 * 1024**2
"""``data.max_file_bytes``: larger than any image or clip of the data sets rolefusion reads,
small enough that one bad row cannot exhaust memory."""

_NOT_FOUND = (FileNotFoundError, NotADirectoryError)

_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device",
          stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}  # fmt: skip


@dataclass(frozen=True)
class FileAccess:
    """Where a data set's files may be, and how large they may be."""

    roots: tuple[Path, ...] = field(default=())
    """Resolved folders the files must lie in; empty allows any path (a file named on the
    command line, as ``rolefusion-predict image=...`` takes)."""
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def under(cls, roots: Sequence[str | Path], max_bytes: int = DEFAULT_MAX_BYTES) -> FileAccess:
        """Confined to ``roots`` (``data.root`` and ``data.allowed_roots``), resolved now."""
        return cls(tuple(Path(root).resolve() for root in roots), max_bytes)

    def check(self, path: Path, field: str) -> Path:
        """The resolved path of a readable regular file within bounds, or :class:`Rejected`."""
        try:
            resolved = Path(path).resolve(strict=True)
            info = resolved.stat()
        except _NOT_FOUND:
            raise Rejected(f"{field} file not found", field, str(path)) from None
        except (OSError, RuntimeError, ValueError) as error:  # loops, long names, NUL bytes
            raise Rejected(f"unreadable {field} path", field, f"{path}: {_why(error)}") from None
        if self.roots and not any(resolved.is_relative_to(root) for root in self.roots):
            allowed = ", ".join(str(root) for root in self.roots)
            raise Rejected(
                "outside the data root", field,
                f"{path} resolves to {resolved}, not under {allowed}; add its folder to "
                "data.allowed_roots if it belongs to the data set",
            )  # fmt: skip
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS.items() if test(info.st_mode)), "special")
            raise Rejected(f"{field} is not a regular file", field, f"{path} is {kind}")
        if info.st_size > self.max_bytes:
            raise Rejected(
                f"{field} file too large", field,
                f"{path}: {info.st_size:,} bytes, data.max_file_bytes={self.max_bytes:,}",
            )  # fmt: skip
        return resolved

    def read(self, path: Path, field: str) -> bytes:
        """The bytes of a file that passes :meth:`check`. Opened without blocking and checked
        again once open, so a file swapped for a FIFO in between cannot hang the run, and
        read no further than the bound."""
        resolved = self.check(path, field)
        try:
            handle = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as error:
            raise Rejected(f"unreadable {field} file", field, f"{path}: {_why(error)}") from None
        with os.fdopen(handle, "rb", buffering=0) as file:
            info = os.fstat(handle)
            if not stat.S_ISREG(info.st_mode):
                raise Rejected(f"{field} is not a regular file", field, str(path))
            if info.st_size > self.max_bytes:
                raise Rejected(f"{field} file too large", field, f"{path}: grew after its check")
            # The size the open file has, and a byte to see it grow: asking for the bound itself
            # would allocate max_bytes for every read, however small the file.
            data = _read_up_to(file, info.st_size + 1)
            if len(data) > info.st_size:  # being written to: read on, up to the bound
                data += _read_up_to(file, self.max_bytes + 1 - len(data))
        if len(data) > self.max_bytes:
            raise Rejected(f"{field} file too large", field, f"{path}: grew while read")
        return data


def _read_up_to(file: io.RawIOBase, limit: int) -> bytes:
    """At most ``limit`` bytes, fewer only at the end of the file (a raw read may return less
    than asked: a network file system's short reads)."""
    chunks, remaining = [], limit
    while remaining > 0 and (chunk := file.read(remaining)):
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _why(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


ANYWHERE = FileAccess()
"""Any path, within the default size bound: for files named on the command line."""
