#!/usr/bin/env python3
"""A small Slurm cluster on localhost: for the tests, and to try a sweep without a cluster.

    python3 scripts/local_slurm.py install                  # Debian packages, where missing (root)
    python3 scripts/local_slurm.py start --state-dir DIR    # prints: export SLURM_CONF=DIR/etc/...
    python3 scripts/local_slurm.py status --state-dir DIR
    python3 scripts/local_slurm.py stop --state-dir DIR

``start`` runs six daemons, every file of theirs under ``DIR`` and nothing in ``/etc``: munged
(its own key and socket), MariaDB (its own data directory, on a free port of 127.0.0.1), slurmdbd
(accounting), slurmctld and two slurmd, one per node. Slurm's commands find this cluster through
``SLURM_CONF``. Accounting is not optional: without it ``sacct`` knows no job, and submitit, which
asks ``sacct`` how a job ended, waits forever for a job that was killed from inside (SIGKILL, as
out-of-memory kills do).

The two nodes, ``node1`` and ``node2``, are two slurmd on this host, each on its own port and
each claiming all of its CPUs. Partition ``debug`` (the default) is ``node1`` alone: a one-node
cluster whose jobs hold the machine. Partition ``two_nodes`` is both: a job of
``--nodes=2`` gets a task on each, with the environment Slurm gives tasks on two machines
(``SLURM_NODEID``, ``SLURM_NODELIST=node[1-2]``). The node names resolve nowhere (with a node
named ``localhost`` beside a second one, Slurm 22.05 stops at "Duplicated NodeHostName"), so a
DDP job on this cluster must be told where its ranks meet: ``MASTER_ADDR=127.0.0.1``.

The daemons run as root (slurmd must; the others then need no access to a root-only ``DIR``).
Their pids go to ``DIR/daemons.json``; ``stop`` ends those and only those, after cancelling the
cluster's jobs. ``start`` on a running cluster reuses it; on a half-running one it restarts it.
Standard library only: it runs before the project's environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server"]
"""Debian's packages (slurm-wlm split by daemon), one command each in :data:`COMMANDS`."""
COMMANDS = ["slurmctld", "slurmd", "sbatch", "slurmdbd", "munged", "mariadbd"]
NODES = ("node1", "node2")
DAEMONS = ["munged", "mariadbd", "slurmdbd", "slurmctld", *(f"slurmd-{node}" for node in NODES)]
"""In start order; stopped in reverse. ``slurmd-NODE`` is the slurmd of NODE."""
CLUSTER = "rolefusion"
PARTITION = "debug"
"""The default partition: ``node1`` alone."""
TWO_NODES_PARTITION = "two_nodes"
DATABASE = "slurm_acct_db"
MEMORY_MARGIN_MB = 1024
"""RealMemory is this machine's memory less this much, so the node is never short of its word."""
SOCKET_PATH_MAX = 107
"""A Unix socket's path is at most 107 bytes (sun_path is 108, with its NUL)."""


class ClusterError(RuntimeError):
    """Why the cluster cannot be installed or started; printed as it is."""


def say(message: str) -> None:
    print(f"local_slurm: {message}", flush=True)


def run(command: list[str], timeout: float = 60, check: bool = True, **kwargs) -> str:
    """Run a command to completion (never sharing our stdout: a daemon that kept it open would
    hold a caller that reads it); its output, or a :class:`ClusterError` naming it."""
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{' '.join(command)}: no answer in {timeout:.0f} s") from None
    except OSError as error:
        raise ClusterError(f"{' '.join(command)}: {error}") from None
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise ClusterError(f"{' '.join(command)} failed ({result.returncode}): {output}")
    return result.stdout


def wait_for(what: str, test, timeout: float, log: Path | None = None) -> None:
    """Poll ``test()`` until it is true; on timeout, fail with the end of ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.5)
    tail = ""
    if log is not None and log.is_file():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise ClusterError(f"{what}: not ready after {timeout:.0f} s{tail}")


# --- install --------------------------------------------------------------------------------


def _installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return result.returncode == 0 and "install ok installed" in result.stdout


def install() -> None:
    """apt-get install what is missing, without letting the packages start system daemons."""
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        missing = [c for c in COMMANDS if shutil.which(c, path=_sbin_path()) is None]
        if not missing:
            say("Slurm, munge and MariaDB are installed (not by apt)")
            return
        raise ClusterError(f"no apt-get on this machine to install {', '.join(missing)}")
    missing = [p for p in PACKAGES if not _installed(p)]
    if not missing:
        say(f"installed already: {' '.join(PACKAGES)}")
        return
    if os.geteuid() != 0:
        raise ClusterError(f"not root: cannot apt-get install {' '.join(missing)}")
    say(f"apt-get install {' '.join(missing)}")
    # Debian starts a service when its package is installed; ours are started by `start`.
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    try:
        try:
            run(command, timeout=900, env=env)
        except ClusterError:  # a stale or empty package index
            say("apt-get update")
            run(["apt-get", "update", "-qq"], timeout=900, env=env)
            run(command, timeout=900, env=env)
    finally:
        if ours:
            policy.unlink(missing_ok=True)
    say("installed")


# --- start, stop, status --------------------------------------------------------------------


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def command(name: str, *alternatives: str) -> str:
    for candidate in (name, *alternatives):
        found = shutil.which(candidate, path=_sbin_path())
        if found:
            return found
    raise ClusterError(f"{name} is not installed: run `python3 scripts/local_slurm.py install`")


class Layout:
    """Every path of the cluster, under the state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir.resolve()
        self.etc = self.root / "etc"
        self.slurm_conf = self.etc / "slurm.conf"
        self.slurmdbd_conf = self.etc / "slurmdbd.conf"
        self.munge = self.root / "munge"
        self.munge_key = self.munge / "munge.key"
        self.munge_socket = self.munge / "munge.socket"
        self.mysql = self.root / "mysql"
        self.mysql_data = self.mysql / "data"
        self.mysql_socket = self.mysql / "mysqld.sock"
        self.slurm = self.root / "slurm"
        self.daemons = self.root / "daemons.json"

    def pid_file(self, daemon: str) -> Path:
        """``run/DAEMON.pid``; slurm.conf names the slurmd's ``run/slurmd-%n.pid`` (%n: node)."""
        return self.root / "run" / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.root / "log" / f"{daemon}.log"

    def make_directories(self) -> None:
        for directory in (
            self.etc,
            self.munge,
            self.mysql,
            self.slurm / "ctld",
            *(self.slurm / "spool" / node for node in NODES),
            self.root / "run",
            self.root / "log",
        ):
            directory.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.slurm_conf)}


def program(daemon: str) -> str:
    """The executable of a daemon of :data:`DAEMONS` (``slurmd-node1``: ``slurmd``)."""
    return daemon.split("-")[0]


def alive(pid: int, daemon: str) -> bool:
    """Is ``pid`` still this daemon (and not a zombie, nor a recycled pid)?"""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return comm == program(daemon)[:15] and state != "Z"


def recorded(layout: Layout) -> dict[str, int]:
    try:
        return json.loads(layout.daemons.read_text())["pids"]
    except (OSError, ValueError, KeyError):
        return {}


def record(layout: Layout, pids: dict[str, int]) -> None:
    layout.daemons.write_text(json.dumps({"pids": pids}, indent=1) + "\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterError("no MemTotal in /proc/meminfo")


def read_pid(layout: Layout, daemon: str, timeout: float = 20) -> int:
    pid_file = layout.pid_file(daemon)

    def started() -> bool:
        try:
            return alive(int(pid_file.read_text().split()[0]), daemon)
        except (OSError, ValueError, IndexError):
            return False

    wait_for(f"{daemon} (pid file {pid_file})", started, timeout, layout.log_file(daemon))
    return int(pid_file.read_text().split()[0])


def start_munge(layout: Layout, pids: dict[str, int]) -> None:
    if not layout.munge_key.exists():
        layout.munge_key.write_bytes(secrets.token_bytes(1024))
        layout.munge_key.chmod(0o400)
    # --force: munged wants its socket reachable by every user; only root uses this one.
    start_daemon(
        layout,
        pids,
        "munged",
        "--force",
        f"--socket={layout.munge_socket}",
        f"--key-file={layout.munge_key}",
        f"--pid-file={layout.pid_file('munged')}",
        f"--log-file={layout.log_file('munged')}",
        f"--seed-file={layout.munge / 'munged.seed'}",
    )


def mysql(layout: Layout, sql: str) -> str:
    client = command("mariadb", "mysql")
    return run(
        [
            client,
            "--no-defaults",
            f"--socket={layout.mysql_socket}",
            "-u",
            "root",
            "-N",
            "-B",
            "-e",
            sql,
        ],
        timeout=30,
    )


def start_mariadb(layout: Layout, pids: dict[str, int], port: int, password: str) -> None:
    server = command("mariadbd", "mysqld")
    options = [
        "--no-defaults",
        f"--datadir={layout.mysql_data}",
        "--user=root",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=8M",
    ]
    if not (layout.mysql_data / "mysql").is_dir():
        say("creating MariaDB's data directory")
        run(
            [
                command("mariadb-install-db", "mysql_install_db"),
                *options,
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            timeout=120,
        )
    layout.pid_file("mariadbd").unlink(missing_ok=True)
    with open(layout.log_file("mariadbd"), "ab") as log:
        subprocess.Popen(
            [
                server,
                *options,
                f"--socket={layout.mysql_socket}",
                "--bind-address=127.0.0.1",
                f"--port={port}",
                f"--pid-file={layout.pid_file('mariadbd')}",
                "--skip-name-resolve",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    pids["mariadbd"] = read_pid(layout, "mariadbd", timeout=60)
    record(layout, pids)

    def answers() -> bool:
        try:
            return mysql(layout, "SELECT 1").strip() == "1"
        except ClusterError:
            return False

    wait_for("MariaDB", answers, 60, layout.log_file("mariadbd"))
    # Idempotent: the same database on every start, the user's password set to this start's.
    mysql(
        layout,
        f"CREATE DATABASE IF NOT EXISTS {DATABASE}; "
        f"CREATE OR REPLACE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
        f"GRANT ALL ON {DATABASE}.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;",
    )


def write_configs(layout: Layout, ports: dict[str, int], password: str) -> None:
    slurm = layout.slurm
    auth = f"AuthType=auth/munge\nAuthInfo=socket={layout.munge_socket}\n"
    dbd = (
        f"# Written by scripts/local_slurm.py: accounting for the local test cluster.\n{auth}"
        f"DbdHost=localhost\nDbdAddr=127.0.0.1\nDbdPort={ports['slurmdbd']}\nSlurmUser=root\n"
        f"PidFile={layout.pid_file('slurmdbd')}\nLogFile={layout.log_file('slurmdbd')}\n"
        "DebugLevel=info\nStorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
        f"StoragePort={ports['mariadbd']}\nStorageUser=slurm\nStoragePass={password}\n"
        f"StorageLoc={DATABASE}\n"
    )
    # slurmdbd refuses a config that others could read: it holds the database password.
    layout.slurmdbd_conf.unlink(missing_ok=True)
    descriptor = os.open(layout.slurmdbd_conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(dbd)
    os.chown(layout.slurmdbd_conf, 0, 0)  # owned by SlurmUser, root here

    cpus = os.cpu_count() or 1
    memory = max(memory_mb() - MEMORY_MARGIN_MB, 512)
    nodes = "\n".join(
        f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 Port={ports[f'slurmd-{node}']}"
        f" CPUs={cpus} RealMemory={memory} State=UNKNOWN"
        for node in NODES
    )
    conf = f"""# Written by scripts/local_slurm.py: a two-node cluster on this host, for the tests.
ClusterName={CLUSTER}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports["slurmctld"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: a requeued job may start again this long (+1 s) after it ended (default 120 s).
AuthInfo=socket={layout.munge_socket},cred_expire=5
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Try to start pending jobs every 2 s, not 60 s: a requeued job starts soon after it may.
SchedulerParameters=sched_interval=2
# The node's hardware is what this file says (CPUs, memory), whatever slurmd detects.
SlurmdParameters=config_overrides
ReturnToService=2
# A cancelled or requeued job gets SIGKILL 5 s after SIGTERM (submitit ignores SIGTERM).
KillWait=5
InactiveLimit=0
StateSaveLocation={slurm / "ctld"}
# Two slurmd on this host: each its own spool, pid and log file (%n: the node's name).
SlurmdSpoolDir={slurm / "spool" / "%n"}
SlurmctldPidFile={layout.pid_file("slurmctld")}
SlurmdPidFile={layout.pid_file("slurmd-%n")}
SlurmctldLogFile={layout.log_file("slurmctld")}
SlurmdLogFile={layout.log_file("slurmd-%n")}
SlurmctldDebug=info
SlurmdDebug=info
# Accounting through slurmdbd: sacct then knows how every job ended (submitit asks it).
# AccountingStoragePass: the munge socket for talking to slurmdbd (AuthInfo's is not used there).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStoragePass={layout.munge_socket}
AccountingStorageHost=localhost
AccountingStoragePort={ports["slurmdbd"]}
JobCompType=jobcomp/none
{nodes}
# debug: one node holding the machine. two_nodes: for jobs of --nodes=2 (the CPUs are shared).
PartitionName={PARTITION} Nodes={NODES[0]} Default=YES MaxTime=INFINITE State=UP
PartitionName={TWO_NODES_PARTITION} Nodes={",".join(NODES)} MaxTime=INFINITE State=UP
"""
    layout.slurm_conf.write_text(conf)


def start_daemon(layout: Layout, pids: dict[str, int], daemon: str, *arguments: str) -> None:
    """Start a daemon that forks into the background; record its pid as soon as it has one."""
    layout.pid_file(daemon).unlink(missing_ok=True)
    run([command(program(daemon)), *arguments], env=layout.env())
    pids[daemon] = read_pid(layout, daemon)
    record(layout, pids)


def start_slurmdbd(layout: Layout, pids: dict[str, int]) -> None:
    start_daemon(layout, pids, "slurmdbd")
    sacctmgr = command("sacctmgr")

    def clusters() -> str | None:
        try:
            return run(
                [sacctmgr, "-n", "-P", "show", "cluster", "format=cluster"],
                env=layout.env(),
                timeout=20,
            )
        except ClusterError:
            return None

    # The first start creates the tables, which takes a while on a busy machine.
    wait_for("slurmdbd", lambda: clusters() is not None, 120, layout.log_file("slurmdbd"))
    if CLUSTER not in (clusters() or "").split():
        run([sacctmgr, "-i", "add", "cluster", CLUSTER], env=layout.env())
        say(f"added cluster {CLUSTER!r} to the accounting database")


def node_states(layout: Layout) -> dict[str, str]:
    """Each node's state (``idle``, ``mixed``, ...) as slurmctld sees it; empty without one."""
    try:
        output = run([command("sinfo"), "-h", "-N", "-o", "%N %T"], env=layout.env(), timeout=10)
    except ClusterError:
        return {}
    return dict(line.split() for line in output.splitlines() if line.strip())


def start_slurm(layout: Layout, pids: dict[str, int]) -> None:
    start_daemon(layout, pids, "slurmctld", "-i")  # -i: carry on past unreadable saved state
    for node in NODES:
        start_daemon(layout, pids, f"slurmd-{node}", "-N", node)
    wait_for(
        "the nodes to be idle",
        lambda: node_states(layout) == dict.fromkeys(NODES, "idle"),
        60,
        layout.log_file(f"slurmd-{NODES[-1]}"),
    )


def smoke_test(layout: Layout) -> None:
    """A job through the whole chain: submit, schedule, run a step on both nodes, and ``sacct``
    knows it ended."""
    job = (
        run(
            [
                command("sbatch"),
                "--wait",
                "--parsable",
                f"--partition={TWO_NODES_PARTITION}",
                f"--nodes={len(NODES)}",
                "--output=/dev/null",
                "--job-name=local_slurm_check",
                "--wrap=srun true",
            ],
            env=layout.env(),
            timeout=120,
            cwd=layout.root,
        )
        .strip()
        .split(";")[0]
    )
    sacct = [command("sacct"), "-n", "-X", "-P", "-j", job, "-o", "State"]
    wait_for(
        f"sacct to report job {job} COMPLETED",
        lambda: run(sacct, env=layout.env(), check=False).strip() == "COMPLETED",
        60,
        layout.log_file("slurmdbd"),
    )


def healthy(layout: Layout) -> bool:
    pids = recorded(layout)
    return (
        set(pids) == set(DAEMONS)
        and all(alive(pid, daemon) for daemon, pid in pids.items())
        and set(states := node_states(layout)) == set(NODES)
        and all(state in ("idle", "mixed", "allocated") for state in states.values())
    )


def start(state_dir: Path) -> None:
    layout = Layout(state_dir)
    if os.geteuid() != 0:
        raise ClusterError("not root: slurmd and the other daemons must be started by root")
    for name in COMMANDS:
        command(name)
    longest = max(str(layout.munge_socket), str(layout.mysql_socket), key=len)
    if len(longest.encode()) > SOCKET_PATH_MAX:
        raise ClusterError(f"--state-dir is too long for a Unix socket path: {longest}")
    export = f"export SLURM_CONF={layout.slurm_conf}"
    if layout.daemons.exists() and healthy(layout):
        say(f"already running in {layout.root}: reusing it")
        print(export, flush=True)
        return
    if any(alive(pid, daemon) for daemon, pid in recorded(layout).items()):
        say("a previous start is half running: stopping it first")
        stop(state_dir)
    layout.make_directories()
    ports = {daemon: free_port() for daemon in DAEMONS if daemon != "munged"}
    password = secrets.token_hex(12)
    pids: dict[str, int] = {}
    started = time.monotonic()
    record(layout, pids)  # from here on, whatever started is recorded for `stop`
    start_munge(layout, pids)
    say(f"munged: pid {pids['munged']}, socket {layout.munge_socket}")
    start_mariadb(layout, pids, ports["mariadbd"], password)
    say(f"MariaDB: pid {pids['mariadbd']}, 127.0.0.1:{ports['mariadbd']}")
    write_configs(layout, ports, password)
    say(f"wrote {layout.slurm_conf} and {layout.slurmdbd_conf.name}")
    start_slurmdbd(layout, pids)
    say(f"slurmdbd: pid {pids['slurmdbd']}, port {ports['slurmdbd']}")
    start_slurm(layout, pids)
    slurmds = ", ".join(f"{node} pid {pids[f'slurmd-{node}']}" for node in NODES)
    say(f"slurmctld: pid {pids['slurmctld']}; slurmd: {slurmds}; nodes idle")
    smoke_test(layout)
    say(
        f"cluster {CLUSTER!r} up in {time.monotonic() - started:.0f} s: partition {PARTITION!r} "
        f"({NODES[0]}, {os.cpu_count()} CPUs), partition {TWO_NODES_PARTITION!r} "
        f"({', '.join(NODES)}); a two-node test job ran and was accounted"
    )
    print(export, flush=True)


def cancel_jobs(layout: Layout) -> None:
    """Cancel every job of this cluster, and wait (briefly) until they are gone."""
    try:
        squeue = command("squeue")
        jobs = run([squeue, "-h", "-o", "%A"], env=layout.env(), timeout=10).split()
    except ClusterError:
        return
    if not jobs:
        return
    say(f"cancelling {len(jobs)} job(s)")
    run([command("scancel"), *jobs], env=layout.env(), timeout=10, check=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        remaining = run([squeue, "-h", "-t", "all", "-o", "%T"], env=layout.env(), check=False)
        if all(state in ("CANCELLED", "COMPLETED", "FAILED") for state in remaining.split()):
            return
        time.sleep(0.5)


def job_processes(layout: Layout) -> list[int]:
    """slurmstepd processes that this cluster's slurmd left behind (they carry its SLURM_CONF)."""
    marker = f"SLURM_CONF={layout.slurm_conf}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "slurmstepd":
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def terminate(pid: int, daemon: str, timeout: float = 15) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid, daemon):
        time.sleep(0.2)
    if alive(pid, daemon):
        os.kill(pid, signal.SIGKILL)


def stop(state_dir: Path) -> None:
    layout = Layout(state_dir)
    pids = recorded(layout)
    running = {d: p for d, p in pids.items() if alive(p, d)}
    if not running:
        say(f"nothing running from {layout.root}")
        return
    if "slurmctld" in running:
        cancel_jobs(layout)
    for daemon in reversed(DAEMONS):
        if daemon in running:
            terminate(running[daemon], daemon)
            say(f"stopped {daemon} (pid {running[daemon]})")
    for pid in job_processes(layout):
        terminate(pid, "slurmstepd", timeout=5)
        say(f"stopped a leftover slurmstepd (pid {pid})")
    record(layout, {})


def status(state_dir: Path) -> bool:
    layout = Layout(state_dir)
    pids = recorded(layout)
    ok = True
    for daemon in DAEMONS:
        pid = pids.get(daemon)
        running = pid is not None and alive(pid, daemon)
        ok &= running
        print(f"{daemon:13} {'running, pid ' + str(pid) if running else 'not running'}")
    states = node_states(layout) if ok else {}
    for node in NODES:
        print(f"{node:13} {states.get(node, 'unknown')}")
    if ok:
        print(f"export SLURM_CONF={layout.slurm_conf}")
    return ok and set(states) == set(NODES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="apt-get install Slurm, munge and MariaDB where missing")
    for name, text in (
        ("start", "start the cluster (or reuse the running one)"),
        ("stop", "stop what `start` started"),
        ("status", "say which daemons run; exit 1 unless all do"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--state-dir",
            type=Path,
            required=True,
            help="config, keys, database, state and logs of the cluster",
        )
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            start(args.state_dir)
        elif args.command == "stop":
            stop(args.state_dir)
        else:
            return 0 if status(args.state_dir) else 1
    except ClusterError as error:
        print(f"local_slurm: {args.command} failed: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
