"""What a run was made with, written beside its results so that a number can be traced."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from rolefusion.config.resolvers import checkout_root

PACKAGES = (
    "rolefusion", "torch", "torchvision", "lightning", "torchmetrics", "hydra-core", "omegaconf",
    "timm", "tokenizers", "transformers", "wandb", "numpy", "pillow",
)  # fmt: skip


def git_state(repository: Path | None = None) -> dict[str, Any] | None:
    """The checkout's commit and whether it had uncommitted changes (None for an installed
    wheel, or outside git)."""
    repository = repository or checkout_root()
    if repository is None:
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repository,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=repository, check=True, capture_output=True, text=True,
                                timeout=10).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(seed: int | None) -> dict[str, Any]:
    """Seed, command line, git commit, Python, platform and package versions."""
    return {
        "seed": seed,
        "command": sys.argv,
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    }
