"""``rolefusion-data`` reports a data config without training on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from real_layouts import hateful_memes
from test_bad_input import BAD_LINE, spoil


def test_rolefusion_data_reports_counts_drops_lengths_and_draws_samples(tmp_path: Path) -> None:
    root = hateful_memes(tmp_path / "hm")
    (root / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    spoil(
        root, "train", line=json.dumps({"id": 1, "img": "img/broken.png", "text": "x", "label": 1})
    )
    out = tmp_path / "report"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rolefusion.data_inspect",
            "data=hateful_memes",
            f"data.root={root}",
            f"inspect.out_dir={out}",
            "inspect.samples=6",
            f"paths.log_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ | {"COLUMNS": "200"},
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "binary"
    assert report["examples"] == {"train": 16, "val": 8, "test": 8}
    assert report["class_counts"]["train"] == {"0": 8, "1": 8}
    assert report["dropped"]["train"]["by_reason"] == {"unreadable image": 1}
    assert (
        f"train.jsonl:{BAD_LINE}:" in report["dropped"]["train"]["examples"]["unreadable image"][0]
    )
    assert report["image_sizes"]["train"]["most_common"] == [["48x36", 16]]
    assert report["text_lengths"]["train"]["tokens"]["max"] >= 5
    assert "dropped 1: unreadable image" in result.stdout
    with Image.open(out / "samples.png") as grid:
        assert grid.width > 300
    assert not list(tmp_path.glob("**/metrics.json"))  # nothing was trained
