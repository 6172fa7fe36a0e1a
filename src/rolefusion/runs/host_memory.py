"""Freed host memory kept for the next step's tensors rather than handed back to the system.

glibc's malloc serves every allocation above a threshold (128 KiB to start, raised as large
blocks come and go, but never above 32 MiB) with its own ``mmap`` and unmaps it when freed; the
next allocation of the same size then touches fresh pages, each a page fault and a zeroed page.
The default experiment's activations (a batch of 64 through 32 channels at 64 px: 33.5 MB) are
above what glibc adapts to. A CPU training step
allocates and frees tens of megabytes of activations and gradients, so by default it spends a
good part of its time faulting in memory it just gave back: 100 MB costs 24,000 faults and
25 ms each time here, against 7 ms reused. PyTorch's CPU tuning guides swap in jemalloc or
tcmalloc for this; :func:`reuse_freed_host_memory` gets the same from glibc with ``mallopt``,
in the process itself. The cost is that the process keeps its peak memory until it exits.
"""

from __future__ import annotations

import ctypes
import logging
from functools import cache

import lightning as L

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
"""mallopt: free memory at the top of the heap above this many bytes goes back to the system."""
M_MMAP_THRESHOLD = -3
"""mallopt: allocations of at least this many bytes get an mmap of their own."""
MAX_BYTES = 2**31 - 1
"""mallopt takes a C int."""


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: macOS, Windows, musl
        return None
    return libc if hasattr(libc, "mallopt") else None


def _checked(max_bytes: int) -> int:
    if not 0 <= max_bytes <= MAX_BYTES:
        raise ValueError(
            f"callbacks.host_memory_reuse.max_bytes: expected 0 to {MAX_BYTES:,} (mallopt takes "
            f"a C int), got {max_bytes:,}"
        )
    return max_bytes


def reuse_freed_host_memory(max_bytes: int) -> bool:
    """Serve allocations of up to ``max_bytes`` from malloc's heap and keep what is freed there
    for reuse, in this process (and the processes it forks afterwards). Returns whether it
    applied: off glibc this does nothing."""
    max_bytes = _checked(max_bytes)
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, max_bytes)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, max_bytes)
    )


class HostMemoryReuse(L.Callback):
    """Applies :func:`reuse_freed_host_memory` when a run is set up, in every process whose
    Trainer has it (each rank of a distributed run). The setting belongs to the process, so it
    stays for the rest of it."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = _checked(max_bytes)  # refused when the run is built, not when it fits

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not reuse_freed_host_memory(self.max_bytes):
            log.debug("host memory reuse: not glibc's malloc, left as it is")
