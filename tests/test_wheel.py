"""An installed wheel, not the checkout: built, installed into a fresh virtual environment and
run from an unrelated folder with a user's own config folder and module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import TINY_DATA

REPO = Path(__file__).resolve().parents[1]
USER_FUSION = '''
from rolefusion.models.fusion.concat import ConcatFusion


class SumThenConcat(ConcatFusion):
    """A user's own fusion, living outside the package."""
'''

pytestmark = pytest.mark.slow


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel of this checkout. Its dependencies come from the test's own
    environment (a path entry, no network); rolefusion itself only from the wheel."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy, so the build leaves no build/ in the checkout
    for folder in ("src", "conf"):
        skipped = shutil.ignore_patterns("*.egg-info", "__pycache__")
        shutil.copytree(REPO / folder, source / folder, ignore=skipped)
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / file, source / file)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(work / "dist"), str(source)])  # fmt: skip
    [wheel] = (work / "dist").glob("rolefusion-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # Every site directory of this process, not only its own purelib: a venv layered on another
    # (a .pth naming the other's) has its dependencies there, which a .pth read from a .pth
    # would not reach.
    sites = [path for path in sys.path if Path(path).name == "site-packages"]
    (purelib / "dependencies.pth").write_text("\n".join(sites) + "\n")
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "--no-index", "-q", str(wheel)])  # fmt: skip
    return venv


def test_wheel_ships_the_configs_and_runs_from_anywhere(
    installed: Path, tmp_path: Path, data_dir: Path
) -> None:
    project = tmp_path / "elsewhere"
    (project / "user_conf" / "model" / "fusion").mkdir(parents=True)
    (project / "user_fusions.py").write_text(USER_FUSION)
    (project / "user_conf" / "model" / "fusion" / "sum_concat.yaml").write_text(
        "_target_: user_fusions.SumThenConcat\n_partial_: true\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLEFUSION_", "PYTHON"))}
    env["PYTHONPATH"] = str(project)
    python = installed / "bin" / "python"

    show = "import rolefusion, rolefusion.conf as c; print(rolefusion.__file__, c.__file__)"
    where = run([python, "-c", show], cwd=project, env=env)
    package, conf = where.stdout.split()
    assert package.startswith(str(installed)) and conf.startswith(str(installed))

    run([installed / "bin" / "rolefusion-train", "--config-dir", "user_conf",
         "model/fusion=sum_concat", "++trainer.fast_dev_run=true", "logger=none",
         f"paths.data_dir={data_dir}", *TINY_DATA], cwd=project, env=env)  # fmt: skip

    [config] = (project / "outputs" / "train" / "runs").glob("*/config.yaml")
    assert OmegaConf.load(config).model.fusion._target_ == "user_fusions.SumThenConcat"
    assert (config.parent / "metrics.json").is_file()
    assert not (REPO / "outputs" / "train" / "runs" / config.parent.name).exists()
