"""A manifest that names a FIFO or ``/dev/zero`` gets those rows refused without a byte read: a
FIFO would block the run forever and ``/dev/zero`` would fill memory. The command runs in a
subprocess under a time and a memory limit, so that a regression fails instead of hanging the
suite or swapping the machine."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from test_bad_input import BAD_LINE, GOOD, spoil, write_data

MEMORY_LIMIT = 6 * 1024**3
"""Address space for the command: room for torch, far less than an unbounded read takes."""


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def test_a_fifo_and_dev_zero_are_refused_without_being_read(tmp_path: Path) -> None:
    root = write_data(tmp_path / "data")
    os.mkfifo(root / "images" / "fifo.png")
    (root / "images" / "zero.png").symlink_to("/dev/zero")
    spoil(root, "train", image="images/fifo.png")
    spoil(root, "test", image="images/zero.png")
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "rolefusion.data_inspect", "data=manifest", f"data.root={root}",
         "data.image_size=32", "data.on_error=skip", "data.allowed_roots=[/dev]",
         f"inspect.out_dir={out}", f"paths.log_dir={tmp_path}", f"paths.data_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=limit_memory,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["examples"] == GOOD  # every valid row kept
    for split, name, kind in (
        ("train", "fifo.png", "a FIFO"),
        ("test", "zero.png", "a character device"),
    ):
        assert report["dropped"][split]["by_reason"] == {"image is not a regular file": 1}
        [where] = report["dropped"][split]["examples"]["image is not a regular file"]
        assert where.startswith(f"{root / split}.jsonl:{BAD_LINE}:"), where
        assert f"{name} is {kind}" in where, where
