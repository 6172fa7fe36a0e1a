"""A multi-node run whose rendezvous host does not resolve fails before fitting, saying what to
set, instead of waiting 30 minutes. Lightning's own Slurm environment chooses the address here,
from the variables srun gives a task; no cluster is needed."""

from __future__ import annotations

import os
from unittest import mock

import lightning as L
import pytest
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from lightning_utilities.core.rank_zero import rank_zero_only as utilities_rank_zero_only

from rolefusion.runs.rendezvous import RendezvousAddressError, check_rendezvous_address

SECOND_TASK_OF_TWO_NODES = {
    "SLURM_NTASKS": "2",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_JOB_NAME": "train",
    "SLURM_JOB_ID": "7",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "1",
}
UNRESOLVABLE = "node[1-2].invalid"
""".invalid never resolves (RFC 2606)."""


@pytest.fixture(autouse=True)
def process_rank_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DDP Trainer built from rank 1's variables makes this whole process rank 1 for
    Lightning (``rank_zero_only.rank``): the later tests of this worker would then log nothing.
    Restored after each test."""
    for function in (rank_zero_only, utilities_rank_zero_only):
        monkeypatch.setattr(function, "rank", function.rank)


def two_node_trainer() -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, num_nodes=2, strategy="ddp", logger=False,
                     enable_checkpointing=False, enable_progress_bar=False)  # fmt: skip


def without_master_addr() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MASTER_ADDR"}


def test_a_first_node_that_does_not_resolve_is_refused_naming_master_addr():
    environment = {**without_master_addr(), **SECOND_TASK_OF_TWO_NODES,
                   "SLURM_NODELIST": UNRESOLVABLE}  # fmt: skip
    with mock.patch.dict(os.environ, environment, clear=True):
        trainer = two_node_trainer()
        assert rank_zero_only.rank == 1  # what process_rank_kept undoes
        assert type(trainer.strategy.cluster_environment).__name__ == "SLURMEnvironment"
        with pytest.raises(RendezvousAddressError) as raised:
            check_rendezvous_address(trainer)
    message = str(raised.value)
    assert message.startswith("rank 1 of 2: the ranks meet at 'node1.invalid' (SLURMEnvironment")
    assert f"SLURM_NODELIST={UNRESOLVABLE}" in message
    assert "Export MASTER_ADDR" in message and "hydra.launcher.setup" in message


@pytest.mark.parametrize(
    "variables",
    [{"SLURM_NODELIST": UNRESOLVABLE, "MASTER_ADDR": "127.0.0.1"}, {"SLURM_NODELIST": "localhost"}],
    ids=["MASTER_ADDR set", "first node resolves"],
)
def test_a_rendezvous_host_that_resolves_passes(variables):
    environment = {**without_master_addr(), **SECOND_TASK_OF_TWO_NODES, **variables}
    with mock.patch.dict(os.environ, environment, clear=True):
        check_rendezvous_address(two_node_trainer())


def test_a_single_device_run_has_no_rendezvous_to_check():
    with mock.patch.dict(os.environ, {"MASTER_ADDR": "nowhere.invalid"}):
        check_rendezvous_address(L.Trainer(accelerator="cpu", devices=1, logger=False))
