"""The launchers: ``hydra/launcher=local`` (parallel processes) and ``hydra/launcher=slurm``.

The Slurm sweeps run on a real Slurm: a two-node cluster on localhost (two slurmd), started for
the session by ``scripts/local_slurm.py`` (munged, MariaDB, slurmdbd, slurmctld, slurmd) and
stopped at its end. They are skipped, with the reason, only where that cluster cannot start (not
root, no Slurm and no apt to install it); with ``ROLEFUSION_REQUIRE_SLURM=1`` (set by
``.ci/run`` once the install succeeded) they fail instead."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf

from rolefusion.commands.report import report
from rolefusion.config import register_configs

from conftest import CONF_DIR, TINY_DATA, assert_distributed_run_counts_each_test_example_once

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "local_slurm.py"
TESTS_DIR = Path(__file__).resolve().parent
SWEEP_TIMEOUT_S = 600
"""Longer than any of these sweeps takes on two busy cores; reaching it means a hang."""


def local_slurm(*arguments: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running local cluster, ``SLURM_CONF`` pointing at it; its state directory."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the `slurm` extra")
    state_dir = tmp_path_factory.mktemp("slurm")
    started = local_slurm("start", "--state-dir", state_dir)
    print(started.stdout, started.stderr, sep="", end="")
    try:
        if started.returncode != 0:
            reason = f"cannot start a local Slurm cluster: {started.stderr.strip()[-1500:]}"
            if os.environ.get("ROLEFUSION_REQUIRE_SLURM") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", str(state_dir / "etc" / "slurm.conf"))
            yield state_dir
    finally:
        stopped = local_slurm("stop", "--state-dir", state_dir, timeout=120)
        print(stopped.stdout, stopped.stderr, sep="", end="")
        if stopped.returncode == 0:  # keep the logs, not the ~100 MB of the empty database
            shutil.rmtree(state_dir / "mysql", ignore_errors=True)


def train_command(root: Path, data_dir: Path, *overrides: str, multirun: bool = False) -> list[str]:
    """``rolefusion-train [-m] ...`` on tiny data, writing under ``root``."""
    return [sys.executable, "-m", "rolefusion.train", *(["-m"] if multirun else []),
            f"paths.log_dir={root}/outputs", f"paths.data_dir={data_dir}", *TINY_DATA,
            *overrides]  # fmt: skip


def train_env() -> dict[str, str]:
    """This environment plus tests/ for the tests' callbacks: the jobs run in the environment
    sbatch was called from."""
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def run_sweep(
    root: Path, data_dir: Path, *overrides: str, timeout: float = SWEEP_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """``rolefusion-train -m debug=fast ...`` on tiny data, writing under ``root``."""
    command = train_command(root, data_dir, "debug=fast", *overrides, multirun=True)
    env = train_env()
    try:
        return subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the sweep hung: no return in {timeout} s\n{error.stdout}")


def slurm_sweep(
    root: Path, data_dir: Path, *overrides: str, timeout: float = SWEEP_TIMEOUT_S
) -> subprocess.CompletedProcess:
    return run_sweep(root, data_dir, "hydra/launcher=slurm", "hydra.launcher.partition=debug",
                     *overrides, timeout=timeout)  # fmt: skip


def sweep_directory(root: Path, task_name: str = "debug") -> Path:
    (directory,) = (root / "outputs" / task_name / "multirun").iterdir()
    return directory


def array_states(sweep: Path) -> dict[int, str]:
    """Slurm's final word (``sacct``) on each task of the sweep's array job, by task index."""
    (array,) = {p.name for p in (sweep / ".submitit").iterdir() if p.name.isdigit()}
    lines = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", array, "-o", "JobID,State"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    # Until its tasks are in the accounting database, an array is one line without a task
    # index ("123|PENDING", or "123_[0-1]|PENDING"): no task's state yet.
    tasks = (re.fullmatch(r"\d+_(\d+)\|(\w+)", line) for line in lines)
    return {int(task[1]): task[2] for task in tasks if task}


def wait_until_ended(sweep: Path, tasks: int, timeout: float = SWEEP_TIMEOUT_S) -> dict[int, str]:
    """The array's states once every task has ended (jobs may outlive a failed sweep command)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = array_states(sweep)
        if len(states) == tasks and all(s not in ("PENDING", "RUNNING") for s in states.values()):
            return states
        time.sleep(2)
    pytest.fail(f"the jobs of {sweep} did not end in {timeout:.0f} s: {array_states(sweep)}")


@pytest.mark.parametrize("launcher", ["local", "slurm", "cluster_example"])
def test_launcher_configs_compose_with_every_documented_key(launcher):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the `slurm` extra")
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    keys = OmegaConf.to_container(cfg.hydra.launcher)
    expected = {"timeout_min", "gpus_per_node", "tasks_per_node", "submitit_folder"}
    if launcher != "local":
        expected |= {"partition", "account", "qos", "cpus_per_task", "mem_gb", "setup",
                     "array_parallelism", "additional_parameters", "signal_delay_s",
                     "max_num_timeout", "wait"}  # fmt: skip
    assert expected <= set(keys)
    if launcher == "local":
        target = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
    else:  # hydra-submitit-launcher's, with `wait`
        target = "hydra_plugins.rolefusion_slurm.SlurmLauncher"
        assert keys["wait"] is True
    assert keys["_target_"] == target
    if launcher == "cluster_example":
        assert keys["gpus_per_node"] == keys["tasks_per_node"] == 4


def launcher_for(*overrides: str) -> tuple[Launcher, DictConfig]:
    """The Slurm launcher as Hydra makes it for ``rolefusion-train -m <overrides>``, set up."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", *overrides],
                      return_hydra_config=True)  # fmt: skip
    launcher = Plugins.instance().instantiate_launcher(
        hydra_context=None, task_function=None, config=cfg
    )  # setup() only keeps these
    return launcher, cfg


def test_submitting_without_waiting_is_refused_with_a_sweeper_that_needs_results():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the `slurm` extra")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the `optuna` extra")
    launcher, _ = launcher_for("hydra.launcher.wait=false")  # the basic sweeper: accepted
    assert launcher.wait is False
    with pytest.raises(ValueError, match=r"hydra\.launcher\.wait=false: the sweeper .*Optuna"):
        launcher_for("hparams_search=optuna", "hydra.launcher.wait=false")
    with pytest.raises(ValueError, match=r"wait=false with hydra\.sweeper\.max_batch_size=2"):
        launcher_for("hydra.launcher.wait=false", "hydra.sweeper.max_batch_size=2")
    launcher_for("hparams_search=optuna")  # waiting, as before
    with pytest.raises(Exception, match=r"hydra\.launcher\.wait"):  # the schema's bool
        launcher_for("hydra.launcher.wait=later")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["hydra.launcher.nodes=2"],
         r"hydra\.launcher\.nodes=2 but trainer\.num_nodes=1 \(job: .*model/fusion=concat"),
        (["hydra.launcher.nodes=1", "trainer.num_nodes=2"],
         r"hydra\.launcher\.nodes=1 but trainer\.num_nodes=2"),
        (["hydra.launcher.tasks_per_node=2", "trainer.devices=4"],
         r"hydra\.launcher\.tasks_per_node=2 but trainer\.devices=4"),
    ],
)  # fmt: skip
def test_a_job_whose_processes_slurm_and_lightning_disagree_on_is_refused_before_submission(
    tmp_path, data_dir, overrides, message
):
    """Lightning would stop such a job only once it started, after its wait in the queue: the
    launcher refuses the sweep before anything reaches Slurm (no sbatch is even needed)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the `slurm` extra")
    result = run_sweep(tmp_path, data_dir, "hydra/launcher=slurm", "model/fusion=concat,late",
                       *overrides, timeout=120)  # fmt: skip
    assert result.returncode != 0
    assert re.search(message, result.stderr), result.stderr[-3000:]
    assert not list((tmp_path / "outputs").rglob(".submitit"))  # nothing was submitted


@pytest.mark.slow
def test_local_launcher_runs_each_job_in_its_own_process(tmp_path, data_dir):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the `slurm` extra")
    result = run_sweep(tmp_path, data_dir, "hydra/launcher=local", "model/fusion=concat,late")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sweep = sweep_directory(tmp_path)
    for job in ("0", "1"):
        assert (sweep / job / "metrics.json").is_file()
    # submitit's local executor names each job's folder after its process id
    jobs = [p for p in (sweep / ".submitit").iterdir() if p.name.isdigit()]
    assert len(jobs) == 2


@pytest.mark.slow
def test_local_cluster_reports_every_daemon_running(slurm):
    status = local_slurm("status", "--state-dir", slurm, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    for daemon in ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd-node1", "slurmd-node2"):
        assert re.search(rf"^{daemon} +running, pid \d+$", status.stdout, re.M), status.stdout
    for node in ("node1", "node2"):
        assert re.search(rf"^{node} +(idle|mixed|allocated)$", status.stdout, re.M), status.stdout


@pytest.mark.slow
def test_sweep_on_slurm_writes_every_jobs_metrics(slurm, tmp_path, data_dir):
    result = slurm_sweep(tmp_path, data_dir, "model/fusion=concat,late")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sweep = sweep_directory(tmp_path)
    for job in ("0", "1"):
        written = json.loads((sweep / job / "metrics.json").read_text())
        assert "test/f1" in written["metrics"]
    assert wait_until_ended(sweep, tasks=2) == {0: "COMPLETED", 1: "COMPLETED"}


@pytest.mark.slow
def test_job_killed_from_inside_is_reported_failed_and_the_others_finish(slurm, tmp_path, data_dir):
    # seed=2 is job 1: it SIGKILLs itself as training starts, as an out-of-memory kill would.
    result = slurm_sweep(
        tmp_path, data_dir, "seed=1,2,3",
        "+callbacks.kill._target_=interruptions.KillOnSeed", "+callbacks.kill.seed=2",
    )  # fmt: skip
    print(result.stderr[-3000:])  # what the user sees; pytest shows it if the test fails
    # submitit finds the killed job FAILED in sacct and raises; Hydra exits with an error.
    assert result.returncode != 0
    assert "state: FAILED" in result.stderr, result.stderr[-3000:]
    sweep = sweep_directory(tmp_path)
    assert wait_until_ended(sweep, tasks=3) == {0: "COMPLETED", 1: "FAILED", 2: "COMPLETED"}
    assert (sweep / "0" / "metrics.json").is_file()
    assert (sweep / "2" / "metrics.json").is_file()
    assert not (sweep / "1" / "metrics.json").exists()


MEET_ON_THIS_HOST = 'hydra.launcher.setup=["export MASTER_ADDR=127.0.0.1"]'
"""The local cluster's node names resolve nowhere (scripts/local_slurm.py): as on a cluster
whose short names do not resolve, a DDP job is told where its ranks meet."""
TWO_TASKS = [
    "hydra.launcher.tasks_per_node=2", MEET_ON_THIS_HOST,
    # trainer=ddp as on a GPU node, on the CPU: one process per device, ranks from Slurm.
    "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
    "trainer.deterministic=true",
]  # fmt: skip
TWO_NODES = [
    # One task on each of the local cluster's two nodes (two slurmd on this host).
    "hydra.launcher.partition=two_nodes", "hydra.launcher.nodes=2", "trainer.num_nodes=2",
    "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.precision=32-true",
    "trainer.deterministic=true",
]  # fmt: skip


def ddp_sweep(
    root: Path, data_dir: Path, *overrides: str, timeout: float = SWEEP_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """A one-epoch sweep of one multi-process job on the local cluster, each rank recording what
    it saw in ``root/ranks``; 33 test examples, which no number of ranks divides evenly."""
    command = train_command(
        root, data_dir, "hydra/launcher=slurm", *overrides, "trainer.max_epochs=1",
        "data.source.num_test=33", "data.source.num_val=31",
        "+callbacks.ranks._target_=interruptions.RecordProcesses",
        f"+callbacks.ranks.directory={root / 'ranks'}", multirun=True,
    )  # fmt: skip
    try:
        return subprocess.run(command, cwd=root, env=train_env(), capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the sweep did not return in {timeout:.0f} s\n{error.stdout}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "nodes"),
    [
        (["hydra.launcher.partition=debug", *TWO_TASKS], ["0", "0"]),
        ([*TWO_NODES, MEET_ON_THIS_HOST], ["0", "1"]),
    ],
    ids=["two tasks on one node", "one task on each of two nodes"],
)
def test_a_two_process_job_is_one_ddp_run_whose_ranks_come_from_slurm(
    slurm, tmp_path, data_dir, overrides, nodes
):
    """33 test examples over 2 ranks: each counted once, and the metrics those of one process
    evaluating the same checkpoint."""
    result = ddp_sweep(tmp_path, data_dir, *overrides)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seen = [json.loads(path.read_text()) for path in sorted((tmp_path / "ranks").iterdir())]
    assert [s["global_rank"] for s in seen] == [0, 1]
    assert {s["slurm_procid"] for s in seen} == {"0", "1"}  # srun's tasks, not spawned
    assert [s["slurm_nodeid"] for s in seen] == nodes
    assert [s["node_rank"] for s in seen] == [int(node) for node in nodes]
    assert all(s["world_size"] == 2 and s["cluster_environment"] == "SLURMEnvironment"
               for s in seen)  # fmt: skip
    assert len({s["slurm_job_id"] for s in seen}) == 1 and len({s["pid"] for s in seen}) == 2
    sweep = sweep_directory(tmp_path, "train")
    (run,) = [path for path in sweep.iterdir() if path.name.isdigit()]
    assert_distributed_run_counts_each_test_example_once(run, examples=33)
    log = (run / "train.log").read_text()  # rank 0's alone: rank 1 logs to its task's stderr
    assert "GLOBAL_RANK: 0" in log and "GLOBAL_RANK: 1" not in log and "[rank: 1]" not in log
    assert log.count("Job completed successfully") == 1
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints, checkpoints  # no rank's extra


@pytest.mark.slow
def test_a_multi_node_job_whose_first_node_does_not_resolve_fails_at_once_naming_master_addr(
    slurm, tmp_path, data_dir
):
    """Without MASTER_ADDR, each rank would retry the name ``node1`` for 30 minutes (here until
    Slurm's time limit, 3 minutes, stops the job)."""
    result = ddp_sweep(tmp_path, data_dir, *TWO_NODES, "hydra.launcher.timeout_min=3",
                       timeout=120)  # fmt: skip
    assert "failed        1" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    sweep = sweep_directory(tmp_path, "train")
    (run,) = [path for path in sweep.iterdir() if path.name.isdigit()]
    failure = json.loads((run / "failed.json").read_text())
    assert failure["error"] == "RendezvousAddressError", failure
    assert "rank 0 of 2: the ranks meet at 'node1'" in failure["message"]
    assert "SLURM_NODELIST=node[1-2]" in failure["message"]
    assert "Export MASTER_ADDR" in failure["message"]
    assert not (run / "checkpoints").exists() and not (tmp_path / "ranks").exists()


def job_attempts(job: str, timeout: float = 120) -> list[str]:
    """Slurm's final word on each run of job ``job``, requeued ones included (``sacct -D``),
    once the last one has ended (sacct may hear of it after the sweep command returned)."""
    deadline = time.monotonic() + timeout
    while True:
        states = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-D", "-j", job, "-o", "State"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if states and states[-1] not in ("PENDING", "RUNNING", "REQUEUED"):
            return states
        if time.monotonic() > deadline:
            pytest.fail(f"job {job} did not end in {timeout:.0f} s: {states}")
        time.sleep(1)


def uninterrupted_run(root: Path, data_dir: Path, config: list[str]) -> Path:
    """The run of ``config`` trained here in one go, without a launcher: what an interrupted
    and resumed job must end as. Its run directory."""
    straight = root / "straight"
    reference = subprocess.run(
        train_command(root, data_dir, *config, f"hydra.run.dir={straight}"),
        cwd=root, env=train_env(), capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-3000:]
    return straight


def tail(path: Path, characters: int = 3000) -> str:
    return path.read_text(errors="replace")[-characters:] if path.is_file() else ""


@pytest.mark.slow
@pytest.mark.parametrize("tasks", [1, 2])
def test_requeued_job_resumes_in_its_run_directory_to_the_uninterrupted_result(
    slurm, tmp_path, data_dir, tasks
):
    """With two tasks, both ranks are requeued and resume; the uninterrupted reference is the
    same two-process DDP run, started here by Lightning rather than by Slurm."""
    # Three epochs, and a pause once the first one's checkpoints are written: time to requeue
    # the job between epochs, as a preemption would.
    config = ["trainer.max_epochs=3", "logger=none",
              "+callbacks.pause._target_=interruptions.PauseAfterEpoch",
              "+callbacks.pause.seconds=5", "+callbacks.pause.epoch=0"]  # fmt: skip
    launcher = ["hydra/launcher=slurm", "hydra.launcher.partition=debug"]
    if tasks == 2:
        config += [o for o in TWO_TASKS if not o.startswith("hydra.")]
        launcher += [o for o in TWO_TASKS if o.startswith("hydra.")]
    command = train_command(tmp_path, data_dir, *launcher, *config, multirun=True)
    out, err = tmp_path / "sweep.out", tmp_path / "sweep.err"
    deadline, job = time.monotonic() + SWEEP_TIMEOUT_S, None
    with open(out, "w") as stdout, open(err, "w") as stderr:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=train_env(), stdout=stdout,
                                 stderr=stderr, text=True)  # fmt: skip
    try:
        multirun = tmp_path / "outputs" / "train" / "multirun"
        while not (found := list(multirun.glob("*/0/checkpoints/last.ckpt"))):
            if sweep.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no last.ckpt while the job ran ({sweep.poll()}):\n{tail(err)}")
            time.sleep(0.5)
        run = found[0].parents[1]
        assert not (run / "metrics.json").exists()  # training goes on: requeue it now
        # A sweep of one job is not an array job: its folder is named after its plain job id.
        (job,) = [p.name for p in (run.parent / ".submitit").iterdir() if p.name.isdigit()]
        requeue = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        assert requeue.returncode == 0, requeue.stdout + requeue.stderr

        # Meanwhile, the same configuration uninterrupted, here and without a launcher.
        straight = uninterrupted_run(tmp_path, data_dir, config)

        try:
            returncode = sweep.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the sweep hung: no return in {SWEEP_TIMEOUT_S} s\n{tail(err)}")
    finally:  # on a failure, nothing of this test runs on
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
            if job is not None:
                subprocess.run(["scancel", "--signal=KILL", job], check=False)
    assert returncode == 0, tail(out) + tail(err)

    # Slurm ran the job twice under its id, in the same run directory, the second time resuming.
    assert job_attempts(job) == ["REQUEUED", "COMPLETED"]
    job_log = (run.parent / ".submitit" / job / f"{job}_0_log.out").read_text()
    assert job_log.count(f"Starting with JobEnvironment(job_id={job},") == 2, job_log[-3000:]
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in (run / "train.log").read_text()
    assert sorted(p.name for p in run.parent.iterdir() if p.is_dir()) == [".submitit", "0"]

    # Identical configurations, but for the run directory; identical results.
    configs = [(d / "config.yaml").read_text().replace(str(d), "<run>") for d in (straight, run)]
    assert configs[0] == configs[1]
    expected, resumed = (json.loads((d / "metrics.json").read_text()) for d in (straight, run))
    assert resumed["metrics"] == expected["metrics"]
    assert resumed["confusion_matrix"] == expected["confusion_matrix"]
    weights = [
        torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        for d in (straight, run)
    ]
    assert weights[1]["global_step"] == weights[0]["global_step"]
    assert weights[1]["state_dict"].keys() == weights[0]["state_dict"].keys()
    for key, value in weights[0]["state_dict"].items():
        assert torch.equal(value, weights[1]["state_dict"][key]), key


@pytest.mark.slow
def test_job_warned_of_its_time_limit_saves_mid_epoch_is_requeued_and_resumes(
    slurm, tmp_path, data_dir
):
    """The real time limit: ``timeout_min=2`` and ``signal_delay_s=45``. slurmctld checks time
    limits every 30 s and warns early rather than late, so USR2 comes 45 to 75 s into the job,
    while its first attempt is slowed (15 s a batch, 8 batches an epoch: the warning falls
    within the epoch however fast the job starts; at 10 s a batch it once fell in the last
    batch) through its first epoch. The callback saves ``last.ckpt`` at the end of the batch
    under way, submitit requeues, and the requeued attempt (not slowed) resumes from it and ends
    before its own warning, 45 s at least into it (else it would be requeued again: after its
    training, it could not report the training's metrics, see docs/cluster.md), going on with
    the rest of the interrupted epoch's order: it ends as the run never interrupted."""
    config = ["trainer.max_epochs=2", "data.batch_size=8", "logger=none",
              "+callbacks.slow._target_=interruptions.SlowFirstAttempt",
              "+callbacks.slow.seconds=15"]  # fmt: skip
    limits = ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=45",
              "hydra.launcher.max_num_timeout=2"]  # fmt: skip
    command = train_command(tmp_path, data_dir, "hydra/launcher=slurm",
                            "hydra.launcher.partition=debug", *limits, *config,
                            multirun=True)  # fmt: skip
    out, err = tmp_path / "sweep.out", tmp_path / "sweep.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=train_env(), stdout=stdout,
                                 stderr=stderr, text=True)  # fmt: skip
    try:
        # Meanwhile, the same configuration uninterrupted, here and without a launcher.
        straight = uninterrupted_run(tmp_path, data_dir, config)
        returncode = sweep.wait(timeout=SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sweep hung: no return in {SWEEP_TIMEOUT_S} s\n{tail(err)}")
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert returncode == 0, tail(out) + tail(err)
    (run,) = (tmp_path / "outputs" / "train" / "multirun").glob("*/0")
    (job,) = [p.name for p in (run.parent / ".submitit").iterdir() if p.name.isdigit()]

    # Warned, saved mid-epoch at once, requeued by submitit, resumed in the same directory.
    attempts = job_attempts(job)
    assert len(attempts) >= 2 and set(attempts[:-1]) == {"REQUEUED"}, attempts
    assert attempts[-1] == "COMPLETED", attempts
    job_log = (run.parent / ".submitit" / job / f"{job}_0_log.err").read_text()
    assert "Caught signal SIGUSR2" in job_log and "this job is timed-out" in job_log, job_log
    train_log = (run / "train.log").read_text()
    saved = re.search(r"SIGUSR2: saved (\S+) at global step (\d+) \(epoch 0, batch (\d+) ",
                      train_log)  # fmt: skip
    assert saved, train_log[-3000:]
    assert saved[1] == str(run / "checkpoints" / "last.ckpt")
    assert int(saved[3]) < 7 and int(saved[2]) == int(saved[3]) + 1  # 8 batches: mid-epoch
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in train_log
    assert sorted(p.name for p in run.parent.iterdir() if p.is_dir()) == [".submitit", "0"]
    assert not list(run.rglob("hpc_ckpt_*.ckpt"))  # Lightning's own auto-requeue stayed out

    # Identical configurations, but for the run directory; identical steps, weights, results.
    configs = [(d / "config.yaml").read_text().replace(str(d), "<run>") for d in (straight, run)]
    assert configs[0] == configs[1]
    weights = [
        torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        for d in (straight, run)
    ]
    assert weights[0]["global_step"] == weights[1]["global_step"] == 2 * 8
    assert weights[0]["epoch"] == weights[1]["epoch"] == 1
    for key, value in weights[0]["state_dict"].items():
        assert torch.equal(value, weights[1]["state_dict"][key]), key
    expected, resumed = (json.loads((d / "metrics.json").read_text()) for d in (straight, run))
    assert resumed["metrics"] == expected["metrics"]
    assert resumed["confusion_matrix"] == expected["confusion_matrix"]


@pytest.mark.slow
def test_sweep_submitted_without_waiting_is_collected_later_by_the_report(
    slurm, tmp_path, data_dir, capsys
):
    # Held (sbatch --hold) until released below: still pending when the report first looks,
    # and a command that waited for them would never return.
    result = slurm_sweep(tmp_path, data_dir, "model/fusion=concat,late",
                         "hydra.launcher.wait=false",
                         "+hydra.launcher.additional_parameters.hold=true",
                         timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sweep = sweep_directory(tmp_path)
    (array,) = {p.name for p in (sweep / ".submitit").iterdir() if p.name.isdigit()}
    assert f"Submitted 2 Slurm jobs ({array}_0, {array}_1) without waiting" in result.stdout
    assert f"  rolefusion-report {sweep}\n" in result.stdout
    pending = subprocess.run(["squeue", "-h", "-r", "-j", array, "-o", "%i %T"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert pending.split() == [f"{array}_0", "PENDING", f"{array}_1", "PENDING"]  # not waited for

    # The same sweep again while its jobs are queued: refused, two jobs would share a run dir.
    again = slurm_sweep(tmp_path, data_dir, "model/fusion=concat,late",
                        "hydra.launcher.wait=false", timeout=120)  # fmt: skip
    assert again.returncode != 0
    assert f"Slurm still has jobs {array}_0, {array}_1 of an earlier submission" in again.stderr

    report(sweep, resamples=100)
    printed = capsys.readouterr().out
    assert "2 of 2 jobs still pending or running on Slurm" in " ".join(printed.split())
    table = pd.read_csv(sweep / "report.csv")
    assert table["running"].tolist() == [1, 1] and table["n"].tolist() == [0, 0]

    subprocess.run(["scontrol", "release", array], check=True)
    assert wait_until_ended(sweep, tasks=2) == {0: "COMPLETED", 1: "COMPLETED"}
    report(sweep, resamples=100)
    assert "still pending or running" not in capsys.readouterr().out
    table = pd.read_csv(sweep / "report.csv")
    assert table["n"].tolist() == [1, 1] and table["running"].tolist() == [0, 0]
