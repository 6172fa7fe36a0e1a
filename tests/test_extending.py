"""docs/extending.md, run as written: its files written out, its shell blocks run, in a fresh
folder with only rolefusion installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)```", re.DOTALL)
SHELL_BLOCK = re.compile(r"```bash\n(?P<body>.*?)```", re.DOTALL)

pytestmark = pytest.mark.slow


def guide_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(GUIDE.read_text())}


def guide_commands() -> list[str]:
    return [
        line
        for block in SHELL_BLOCK.finditer(GUIDE.read_text())
        for line in block["body"].splitlines()
        if line.strip()
    ]


def test_the_guide_has_what_the_test_runs() -> None:
    """The parsing below would pass vacuously on a guide it cannot read."""
    assert set(guide_files()) == {
        "my_fusions.py",
        "my_configs/model/fusion/max.yaml",
        "my_encoders.py",
        "my_configs/model/text_encoder/bag_of_words.yaml",
        "make_toy_data.py",
        "my_configs/data/toy_roles.yaml",
    }
    assert len(guide_commands()) == 5


def test_extending_guide_runs_as_written(tmp_path: Path) -> None:
    folder, home = tmp_path / "my_project", tmp_path / "home"
    folder.mkdir()
    for relative, body in guide_files().items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ROLEFUSION_HOME": str(home),
    }
    env.pop("ROLEFUSION_DATA_DIR", None)
    for command in guide_commands():
        done = subprocess.run(
            command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    runs = {
        OmegaConf.load(config).model.fusion._target_: config.parent
        for config in (home / "outputs" / "train" / "runs").glob("*/config.yaml")
    }
    assert "my_fusions.MaxFusion" in runs
    assert (runs["my_fusions.MaxFusion"] / "metrics.json").is_file()
    encoders = [
        OmegaConf.load(config)
        for config in (home / "outputs" / "train" / "runs").glob("*/config.yaml")
    ]
    assert [c.model.text_encoder._target_ for c in encoders].count("my_encoders.BagOfWords") == 1
    toy = [c for c in encoders if c.data.root == str(folder / "toy_data")]
    assert len(toy) == 1
    classes = (home / "outputs" / "data_inspect" / "toy_roles" / "report.json").read_text()
    assert '"knight"' in classes and '"pirate"' in classes
