"""Shared fixtures: compose the real configs from conf/ with small, fast data."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rolefusion.commands.evaluate import evaluate
from rolefusion.config import register_configs

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

TINY_DATA = [
    "data.source.num_train=64",
    "data.source.num_val=32",
    "data.source.num_test=32",
    "data.source.image_size=32",
    "data.batch_size=16",
]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test``), each worker process gets its share of the cores, and
    so do the commands its tests start (``OMP_NUM_THREADS``): workers that each used every core
    would wait on each other's threads and run slower than one process."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(share)
        torch.set_num_threads(share)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the whole session: each synthetic set is generated once."""
    return tmp_path_factory.mktemp("data")


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with ``count`` intra-op threads, then restore the previous count.

    Whether a model leaves an interaction family's plateau within its budget can turn on the
    order of floating-point sums: the same grounding run reached 0.930 with two threads and
    0.562 with one. Tests that train past such a plateau pin the count so that they reproduce
    on machines with more cores than this project's 2.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def compose_config(root: Path, data_dir: Path, *overrides: str, tiny: bool = True) -> DictConfig:
    """Compose ``train.yaml`` as the command line would, writing under ``root``; ``tiny``
    shrinks the synthetic data (turn it off for other data sets)."""
    register_configs()
    paths = [
        f"paths.root_dir={root}",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={root}/outputs",
        f"paths.output_dir={root}/run",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[*paths, *(TINY_DATA if tiny else []), *overrides])


def compose_command(name: str, *overrides: str) -> DictConfig:
    """``rolefusion-<name>``'s config (``eval``, ``predict``) as its command line composes it, for
    running a command in the test's process where its exit status is not what is tested."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def compose_manifest(root: Path, data: Path, *overrides: str) -> DictConfig:
    """:func:`compose_config` on ``data=manifest`` read from ``data`` (small images and batches),
    writing under ``root``."""
    return compose_config(
        root,
        root / "cache",
        "data=manifest",
        f"data.root={data}",
        "data.image_size=32",
        "data.batch_size=4",
        *overrides,
        tiny=False,
    )


@pytest.fixture
def compose_train(tmp_path: Path, data_dir: Path) -> Callable[..., DictConfig]:
    """:func:`compose_config` into this test's ``tmp_path``, with tiny data by default."""

    def _compose(*overrides: str, data: Path | None = None) -> DictConfig:
        return compose_config(tmp_path, data or data_dir, *overrides)

    return _compose


def assert_distributed_run_counts_each_test_example_once(run: Path, examples: int) -> None:
    """A multi-process run's ``metrics.json`` and ``predictions.csv`` (its ranks' shares
    gathered) count each of ``examples`` test examples once, in the split's order, and its
    metrics are those of one process evaluating the same checkpoint."""
    written = json.loads((run / "metrics.json").read_text())
    assert sum(map(sum, written["confusion_matrix"])) == examples
    ids = [line.split(",", 1)[0] for line in (run / "predictions.csv").read_text().splitlines()]
    assert ids[1:] == [f"test-{i:05d}" for i in range(examples)]
    single = evaluate(written["best_checkpoint"], "test")
    assert single["confusion_matrix"] == written["confusion_matrix"]
    for name in ("acc", "precision", "recall", "f1", "loss"):
        assert written["metrics"][f"test/{name}"] == pytest.approx(
            single["metrics"][f"test/{name}"], abs=1e-6
        ), name
