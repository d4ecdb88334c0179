"""A throwaway cluster for the recovery tests and the recovery benchmark.

One ``redis-server`` of its own on a free port in 7300-7399 (AOF on, ``appendfsync
always``, its files in the cluster's directory), a file store in that directory, and
real ``celery -A enact.worker worker`` processes with **default settings**: nothing here
shortens the visibility timeout, the flow lease or any other enact or Celery timing, so
what the tests measure is what a user gets.

The cluster kills workers and Redis with ``SIGKILL`` and starts them again, and always
stops every process it started, by pid (each worker leads its own process group), when
``close`` runs: a ``with`` block or a fixture's finalizer. As a last resort ``close`` also
kills any process whose environment carries this cluster's ``ENACT_TEST_CLUSTER_DIR``.

Step executions are read back from the file that ``tests.recovery.flows`` appends to;
``unexplained_reruns`` checks them against the kills that happened.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tests.conftest import free_port_in

REPO_ROOT = Path(__file__).resolve().parents[2]
PORTS = range(7300, 7400)
FLOWS_MODULE = "tests.recovery.flows"
MARKER = "ENACT_TEST_CLUSTER_DIR"
STALL_S = 5.0  # a watchdog that wakes this late means the machine stalled (see _watch)


def free_port(ports: range = PORTS) -> int:
    """A port of ``ports`` nothing listens on."""
    return free_port_in(ports)


class RedisProcess:
    """A ``redis-server`` on a fixed port that can be killed and started again."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self, timeout_s: float = 20.0) -> None:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--protected-mode", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=1)
            try:
                if client.ping():
                    return
            except redis.exceptions.BusyLoadingError:
                pass  # replaying the AOF
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited on port {self.port}: see {self.directory}/redis.log"
                    ) from None
            finally:
                client.close()
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> float:
        """``kill -9`` the server; returns the time (epoch s) of the signal."""
        assert self.process is not None
        killed_at = time.time()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
        return killed_at

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


@dataclass(frozen=True)
class Execution:
    """One start of a step, as ``tests.recovery.flows`` recorded it."""

    tag: str
    index: int
    pid: int
    t: float


@dataclass(frozen=True)
class Kill:
    """Something that interrupted running steps: a worker (``pid``) killed at ``start``,
    or Redis (``pid=None``) killed at ``start`` and answering again at ``end``."""

    pid: int | None
    start: float
    end: float
    what: str


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid


class Cluster:
    """Redis, a file store and N workers under one directory; ``close`` stops them all."""

    def __init__(self, root: Path, imports: str = FLOWS_MODULE) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.executions_path = root / "executions.log"
        self.redis = RedisProcess(root / "redis", free_port())
        self.prefix = f"enact-recovery-{os.getpid()}-{random.randrange(16**6):06x}"
        self.env = {
            name: value for name, value in os.environ.items() if not name.startswith("ENACT_")
        }
        self.env.update(
            PYTHONPATH=os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            ENACT_REDIS_URL=self.redis.url,
            ENACT_REDIS_PREFIX=self.prefix,
            ENACT_STORE_URL=f"file://{root / 'store'}",
            ENACT_IMPORTS=imports,
            ENACT_TEST_EXECUTIONS=str(self.executions_path),
        )
        self.env[MARKER] = str(root)
        self.workers: dict[str, Worker] = {}
        self.kills: list[Kill] = []
        self.exited: list[tuple[str, int, int | None]] = []  # (name, pid, code): not by us
        self._started = 0
        self._connected = False
        self._previous: Any = None
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)

    # -- lifecycle -------------------------------------------------------------------

    def start(self, workers: int) -> Cluster:
        self._watchdog.start()
        self.redis.start()
        for _ in range(workers):
            self.start_worker(wait=False)
        for name in list(self.workers):
            self.wait_ready(name)
        return self

    def connect(self) -> None:
        """Point this process's ``enact.worker`` client at the cluster (``close`` points it
        back at what it used before)."""
        import enact.worker
        from enact.config import Settings

        self._previous = enact.worker.runtime.settings()
        enact.worker.reconfigure(Settings.from_env(self.env))
        self._connected = True

    def _watch(self) -> None:
        """Notice the whole machine stalling (a VM paused, the host starved): a thread that
        sleeps 0.1 s and wakes more than ``STALL_S`` later was not scheduled, and neither
        was anything else. Leases lapse during such a stall while their owners are frozen,
        so the steps in flight then may run again: it is remembered like a Redis outage."""
        last = time.time()
        while not self._stop.wait(0.1):
            now = time.time()
            if now - last > STALL_S:
                self._remember(Kill(None, last, now, f"machine stall of {now - last:.1f} s"))
            last = now

    def close(self) -> None:
        """Stop every worker and Redis, by pid; then kill anything left with our marker."""
        self._stop.set()
        try:
            if self._connected:
                import gc

                import enact.worker

                # Result handles unsubscribe when collected: collect them while Redis runs.
                gc.collect()
                enact.worker.runtime.reset()
                enact.worker.reconfigure(self._previous)
                self._connected = False
        finally:
            try:
                for name in list(self.workers):
                    self.stop_worker(name)
            finally:
                self.redis.stop()
                self._kill_marked()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _kill_marked(self) -> None:
        marker = f"{MARKER}={self.root}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in environ:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # -- workers ---------------------------------------------------------------------

    def start_worker(self, name: str | None = None, wait: bool = True) -> Worker:
        """A new worker process (a new name each time unless given)."""
        if name is None:
            self._started += 1
            name = f"w{self._started}"
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "enact.worker", "worker",
                    "--loglevel=INFO", f"--hostname={name}@recovery",
                ],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                start_new_session=True,
            )  # fmt: skip
        worker = self.workers[name] = Worker(name, process, log, time.time())
        if wait:
            self.wait_ready(name)
        return worker

    def wait_ready(self, name: str, timeout_s: float = 90) -> None:
        worker = self.workers[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = worker.log.read_text(errors="replace") if worker.log.exists() else ""
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n{text[-3000:]}")
            if " ready." in text:
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} not ready in {timeout_s} s:\n{text[-3000:]}")

    def kill_worker(self, name: str) -> Kill:
        """``kill -9`` a worker's whole process group; the kill is remembered."""
        worker = self.workers.pop(name)
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.process.wait()
        # Taken once the process is gone: a step it logged until then was in flight.
        killed_at = time.time()
        kill = Kill(worker.pid, killed_at, killed_at, f"kill -9 worker {name} (pid {worker.pid})")
        self._remember(kill)
        return kill

    def pause_worker(self, name: str) -> Kill:
        """``SIGSTOP`` a worker's process group: alive, silent (a frozen VM, a long GC).

        Remembered as a kill: the step it was running may run again elsewhere."""
        worker = self.workers[name]
        os.killpg(worker.pid, signal.SIGSTOP)
        # Taken once the process is stopped (the signal is delivered asynchronously): a
        # step it logged until then was in flight.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _group_stopped(worker.pid):
            time.sleep(0.005)
        paused_at = time.time()
        kill = Kill(worker.pid, paused_at, paused_at, f"SIGSTOP worker {name} (pid {worker.pid})")
        self._remember(kill)
        return kill

    def resume_worker(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGCONT)

    def stop_worker(self, name: str, timeout_s: float = 5) -> None:
        """SIGTERM (warm shutdown), then SIGKILL after ``timeout_s``."""
        worker = self.workers.pop(name)
        if worker.process.poll() is None:
            try:
                os.killpg(worker.pid, signal.SIGCONT)  # a paused worker cannot stop
                os.killpg(worker.pid, signal.SIGTERM)
                worker.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.process.wait()
            except ProcessLookupError:
                pass
        try:  # the group may outlive its leader
            os.killpg(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def reap_exited(self) -> list[tuple[str, int, int | None]]:
        """Workers that ended without being told to; they are forgotten and remembered."""
        found: list[tuple[str, int, int | None]] = []
        for name, worker in list(self.workers.items()):
            code = worker.process.poll()
            if code is not None:
                del self.workers[name]
                found.append((name, worker.pid, code))
        self.exited.extend(found)
        return found

    def worker_of(self, pid: int) -> str | None:
        for name, worker in self.workers.items():
            if worker.pid == pid:
                return name
        return None

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for log in sorted((self.root / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)

    # -- redis -----------------------------------------------------------------------

    def kill_redis(self, down_s: float = 0.5) -> Kill:
        """``kill -9`` Redis, wait ``down_s``, start it again on the same port and files."""
        killed_at = self.redis.kill()
        time.sleep(down_s)
        self.redis.start()
        kill = Kill(None, killed_at, time.time(), f"kill -9 redis, down {down_s} s")
        self._remember(kill)
        return kill

    def restart_redis(self, down_s: float = 0.1) -> Kill:
        """Stop Redis gracefully (SIGTERM: it flushes the AOF), wait ``down_s``, start it."""
        stopped_at = time.time()
        self.redis.stop()
        time.sleep(down_s)
        self.redis.start()
        kill = Kill(None, stopped_at, time.time(), f"graceful Redis restart, down {down_s} s")
        self._remember(kill)
        return kill

    def _remember(self, kill: Kill) -> None:
        self.kills.append(kill)
        with open(self.root / "kills.txt", "a") as out:  # to read the logs by
            out.write(f"{kill.start:.6f} {kill.end:.6f} {kill.what}\n")

    # -- what ran ----------------------------------------------------------------------

    def executions(self, tag: str | None = None) -> list[Execution]:
        """Every step start recorded so far (of one flow's tag, or all), in time order."""
        if not self.executions_path.exists():
            return []
        found = []
        for line in self.executions_path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue
            if tag is None or parts[0] == tag:
                found.append(Execution(parts[0], int(parts[1]), int(parts[2]), float(parts[3])))
        found.sort(key=lambda e: e.t)
        return found


def continued_after(executions: list[Execution], kill: Kill) -> Execution | None:
    """The first step a flow started after ``kill`` in a process other than the killed one."""
    for execution in executions:
        if execution.t > kill.end and execution.pid != kill.pid:
            return execution
    return None


def _group_stopped(pgid: int) -> bool:
    """Whether every process of the group is stopped (``T``) or gone: the worker's
    Celery process is a child of the group's leader, and each one stops on its own."""
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("T", "t", "Z", "X"):
            return False
    return True


def in_flight(executions: list[Execution], kill: Kill) -> set[Execution]:
    """The steps a kill interrupted: of each flow running in the killed process (any
    process, for Redis), the last step started before the kill, and for a Redis outage
    also every step started while it was down."""
    hit: set[Execution] = set()
    last: dict[str, Execution] = {}
    for execution in executions:
        if execution.t <= kill.start:
            last[execution.tag] = execution
        elif execution.t <= kill.end:
            hit.add(execution)
    hit.update(e for e in last.values() if kill.pid is None or e.pid == kill.pid)
    return hit


def unexplained_reruns(executions: list[Execution], kills: list[Kill]) -> list[str]:
    """Steps that ran more than once where the earlier run was not in flight at a kill."""
    excused: set[Execution] = set()
    for kill in kills:
        excused |= in_flight(executions, kill)
    runs: dict[tuple[str, int], list[Execution]] = {}
    for execution in executions:
        runs.setdefault((execution.tag, execution.index), []).append(execution)
    problems = []
    for (tag, index), starts in sorted(runs.items()):
        for earlier in starts[:-1]:
            if earlier not in excused:
                problems.append(
                    f"{tag} step {index} ran {len(starts)} times "
                    f"(pid@time: {', '.join(f'{e.pid}@{e.t:.3f}' for e in starts)}); "
                    f"the run at {earlier.t:.3f} was not in flight at any kill"
                )
                break
    return problems


def wait_for(condition: Callable[[], object], timeout_s: float, every_s: float = 0.1) -> bool:
    """Poll ``condition`` until it is true or ``timeout_s`` passed; return whether it was."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]
