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
