"""What the operating system refuses on one path is that row's rejection, not the run's crash."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rolefusion.data import files
from rolefusion.data.files import FileAccess
from rolefusion.data.rejections import Rejected


def test_a_permission_error_is_one_named_rejection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root here, which no file mode stops: the kernel's refusal is simulated.
    image = tmp_path / "locked.png"
    image.write_bytes(b"\x89PNG")

    def refuse(path: object, flags: int) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(files.os, "open", refuse)
    with pytest.raises(Rejected) as refused:
        FileAccess.under([tmp_path]).read(image, "image")
    assert refused.value.reason == "unreadable image file"
    assert f"{image}: Permission denied" in refused.value.detail


def test_a_read_returns_the_whole_file_and_allocates_only_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(bytes(range(256)) * 40)
    asked: list[int] = []
    real_fdopen = files.os.fdopen

    class Recording:
        """The raw file, recording what each read asks for (what CPython allocates)."""

        def __init__(self, raw) -> None:
            self.raw = raw

        def read(self, size: int) -> bytes:
            asked.append(size)
            return self.raw.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.raw.close()

    monkeypatch.setattr(files.os, "fdopen", lambda *a, **k: Recording(real_fdopen(*a, **k)))
    access = FileAccess.under([tmp_path], max_bytes=1 << 20)
    assert access.read(image, "image") == image.read_bytes()
    assert max(asked) == image.stat().st_size + 1  # not the 1 MiB bound


def test_a_file_that_grows_past_the_bound_after_its_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(b"x" * 100)
    access = FileAccess.under([tmp_path], max_bytes=150)
    checked = FileAccess.check

    def check_then_grow(self: FileAccess, path: Path, field: str) -> Path:
        resolved = checked(self, path, field)
        image.write_bytes(b"x" * 200)  # a writer replaces it between the check and the open
        return resolved

    monkeypatch.setattr(FileAccess, "check", check_then_grow)
    with pytest.raises(Rejected) as refused:
        access.read(image, "image")
    assert refused.value.reason == "image file too large"
    assert "grew after its check" in refused.value.detail
