"""The package's layout as a specification: which part may import which, what the wheel ships,
and that runs written before the regroup still evaluate."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rolefusion.commands.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "rolefusion"
COMMANDS = {path.stem for path in (PACKAGE / "commands").glob("*.py")} - {"__init__"}
FIXTURE_RUN = Path(__file__).parent / "fixtures" / "run_before_regroup"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def test_the_walk_sees_lazy_imports() -> None:
    """The checks below would pass vacuously if the walk missed imports inside functions."""
    assert "rolefusion.commands.train" in imported_modules(PACKAGE / "cli.py")


@pytest.mark.parametrize("path", modules_under("data"), ids=lambda p: p.name)
def test_data_imports_no_model_code(path: Path) -> None:
    offending = {name for name in imported_modules(path) if name.startswith("rolefusion.models")}
    assert not offending, f"{path.relative_to(REPO)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", modules_under("commands"), ids=lambda p: p.name)
def test_commands_never_import_each_other(path: Path) -> None:
    others = {f"rolefusion.commands.{name}" for name in COMMANDS - {path.stem}}
    others |= {f"rolefusion.{name}" for name in COMMANDS}  # the `python -m` entry modules
    offending = imported_modules(path) & others
    assert not offending, f"{path.relative_to(REPO)} imports {sorted(offending)}"


@pytest.mark.parametrize("folder", ["runs", "robustness", "config", "models", "data"])
def test_shared_parts_import_no_command(folder: str) -> None:
    for path in modules_under(folder):
        commands = {n for n in imported_modules(path) if n.startswith("rolefusion.commands")}
        assert not commands, f"{path.relative_to(REPO)} imports {sorted(commands)}"


def test_configs_are_registered_in_one_place() -> None:
    callers = [
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*.py")
        if "register_configs()" in path.read_text() and path.parent.name != "config"
    ]
    assert callers == [Path("cli.py")]


def test_pyproject_lists_every_package() -> None:
    """``packages`` is listed by hand (conf/ is mapped in from outside src/): a package missing
    from it would be missing from the wheel."""
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {  # rolefusion's and its Hydra plugin's (src/hydra_plugins is a namespace package)
        ".".join(init.parent.relative_to(PACKAGE.parent).parts)
        for init in PACKAGE.parent.rglob("__init__.py")
    }
    assert listed == found | {"rolefusion.conf"}
    assert (REPO / "conf" / "__init__.py").is_file()
    assert (PACKAGE / "py.typed").is_file()


def test_a_run_written_before_the_regroup_still_evaluates(tmp_path: Path, data_dir: Path) -> None:
    """A run trained by the flat layout (callbacks at ``rolefusion.callbacks``, loss weights
    only in the model's hyperparameters) reproduces its own test metrics."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    config = OmegaConf.load(run / "config.yaml")
    assert config.callbacks.random_state._target_ == "rolefusion.callbacks.RandomStateCheckpoint"
    config.data.root = str(data_dir / "roleplay_scenes")  # the same tiny scenes, made here
    OmegaConf.save(config, run / "config.yaml")

    result = evaluate(str(run / "checkpoints" / "best.ckpt"), "test")

    expected = json.loads((run / "metrics.json").read_text())["metrics"]
    # Every metric the run recorded, reproduced; newer ones (calibration, attribution) besides.
    assert expected.keys() <= result["metrics"].keys()
    assert {"test/ece", "test/brier", "test/share_image"} <= result["metrics"].keys()
    for name, value in expected.items():
        assert result["metrics"][name] == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("train", "rolefusion-train"),
        ("evaluate", "rolefusion-eval"),
        ("predict", "rolefusion-predict"),
        ("info", "rolefusion-info"),
        ("data_inspect", "rolefusion-data"),
        ("report", "rolefusion-report"),
    ],
)
def test_the_python_m_forms_still_answer(module: str, command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"rolefusion.{module}", "--help"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith((f"usage: {command} ", f"{command} is powered by Hydra"))


def test_the_resolved_config_prints(tmp_path: Path) -> None:
    """``--cfg job --resolve`` shows every interpolation resolved, the rf.* resolvers included."""
    done = subprocess.run(
        [sys.executable, "-m", "rolefusion.train", "--cfg", "job", "--resolve",
         "model/audio_encoder=cnn1d", f"paths.log_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    resolved = OmegaConf.create(done.stdout)
    assert list(resolved.data.modalities) == ["image", "text", "audio"]
    assert resolved.data.source.audio is True
