"""The address where the ranks of a multi-process run meet, checked before they try to.

Every rank of a DDP run connects to rank 0's store at ``MASTER_ADDR``; under Slurm, Lightning
takes it to be the first node of ``SLURM_NODELIST`` unless ``MASTER_ADDR`` is set. On a
cluster whose short node names do not resolve on the compute nodes (or that needs a domain
suffix), each rank then retries the name until the process group's timeout (30 minutes by
default), and the job fails with a wall of socket warnings. Resolving the name first turns that
half hour into an error that says what to set.
"""

from __future__ import annotations

import os
import socket

import lightning as L


class RendezvousAddressError(RuntimeError):
    """The ranks of a run would meet at a host name that does not resolve here."""


def check_rendezvous_address(trainer: L.Trainer) -> None:
    """Raise :class:`RendezvousAddressError` if this rank cannot resolve where the ranks meet.

    Runs before fitting, in every rank. A strategy without a cluster environment (one device) has
    no rendezvous; DDP has one even with a single process.
    """
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if environment is None:
        return
    chosen_by = _who_chose_the_address(type(environment).__name__)
    address = environment.main_address
    try:
        socket.getaddrinfo(address, None)
    except socket.gaierror as error:
        raise RendezvousAddressError(
            f"rank {trainer.global_rank} of {trainer.world_size}: the ranks meet at "
            f"{address!r} ({chosen_by}), which does not resolve on {socket.gethostname()} "
            f"({error.strerror}); every rank would wait for it until the process group's timeout "
            "(30 minutes by default). Export MASTER_ADDR, a name or IP of the job's first node "
            "that every node can reach, in "
            "hydra.launcher.setup (its lines run on the first node), e.g. "
            "'export MASTER_ADDR=$(hostname --fqdn)' (docs/cluster.md)"
        ) from None


def _who_chose_the_address(environment: str) -> str:
    """Where the address came from, read before the environment sets ``MASTER_ADDR`` itself."""
    if "MASTER_ADDR" in os.environ:
        return "MASTER_ADDR"
    nodes = os.environ.get("SLURM_NODELIST")
    if nodes is not None:
        return f"{environment}'s choice: the first node of SLURM_NODELIST={nodes}"
    return f"{environment}'s choice"
