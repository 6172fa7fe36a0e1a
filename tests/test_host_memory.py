"""Host memory reuse: freed tensor memory is reused rather than faulted in again."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from rolefusion.commands.train import train
from rolefusion.runs import host_memory
from rolefusion.runs.host_memory import HostMemoryReuse

glibc = pytest.mark.skipif(host_memory._glibc() is None, reason="glibc's malloc only")

FAULTS_PER_ALLOCATION = """
import resource, sys, torch
from rolefusion.runs.host_memory import reuse_freed_host_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_host_memory(1 << 30)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.empty(25_000_000).fill_(1)  # 100 MB, allocated and freed once before counting
before = faults()
for _ in range(10):
    torch.empty(25_000_000).fill_(1)
print((faults() - before) / 10)
"""


def _faults_per_allocation(mode: str) -> float:
    """Page faults per 100 MB tensor allocated, filled and freed, in a fresh process."""
    run = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_ALLOCATION, mode],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(run.stdout.split()[-1])


@glibc
def test_freed_tensor_memory_is_reused_instead_of_faulted_in_again() -> None:
    pages = 100e6 / 4096
    fresh = _faults_per_allocation("default")
    reused = _faults_per_allocation("reuse")
    assert fresh > 0.9 * pages  # glibc's default: every page of every allocation faults
    assert reused < 0.25 * pages


def test_the_default_run_applies_it_once_set_up(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[int] = []
    monkeypatch.setattr(host_memory, "reuse_freed_host_memory", applied.append)
    train(compose_train("debug=fast", "test=false", "logger=none"))
    assert applied == [1 << 30]


@pytest.mark.parametrize("max_bytes", [-1, 2**31])
def test_a_size_mallopt_cannot_take_is_refused_naming_the_key(max_bytes: int) -> None:
    with pytest.raises(ValueError, match=r"callbacks\.host_memory_reuse\.max_bytes: expected 0 "):
        HostMemoryReuse(max_bytes)
