"""A Docker engine of the compose tests' own, started and stopped by pid.

``dockerd`` runs with its own ``--data-root`` under the cache directory (images and build
cache survive between runs), its own socket and exec root in a fresh directory under
``/tmp``, and ``--iptables=false --bridge=none``, so it adds no bridge and no firewall rule
to the host. ``stop`` sends SIGTERM to its pid (dockerd stops its containerd and the
shims), kills whatever of it is left and unmounts what it left mounted. A file lock keeps
two runs from sharing one data root. ``Engine(docker_host)`` uses an engine that is already
running instead, and leaves it alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "enact-compose"


class EngineUnavailable(RuntimeError):
    """The Docker engine (or a tool the harness needs) cannot run here; the message says why."""


def run(args: list[str], timeout_s: float = 600, check: bool = True, **kwargs: Any):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def host_links() -> set[str]:
    """Names of the host's network interfaces (a bridge or veth the engine made shows here)."""
    return {path.name for path in Path("/sys/class/net").iterdir()}


def iptables_rules() -> str | None:
    """The host's iptables rules, or None where iptables is not installed."""
    binary = shutil.which("iptables-save")
    if binary is None:
        return None
    result = subprocess.run([binary], capture_output=True, text=True, timeout=30)
    return "\n".join(
        line for line in result.stdout.splitlines() if not line.startswith(("#", ":"))
    )


class Engine:
    """A ``dockerd`` of our own, or an engine already running (``docker_host``)."""

    def __init__(self, docker_host: str | None = None, cache: Path = CACHE) -> None:
        self.cache = cache
        self.own = docker_host is None
        self.run_dir = Path(tempfile.mkdtemp(prefix="enact-dockerd-", dir="/tmp"))
        self.docker_host = docker_host or f"unix://{self.run_dir}/docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.run_dir / "dockerd.log"
        self._lock: Any = None

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker and docker-compose: this engine, no stray DOCKER_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        env["DOCKER_HOST"] = self.docker_host
        return env

    def start(self, timeout_s: float = 60) -> None:
        """Start dockerd and wait until it answers; EngineUnavailable with its own error."""
        for tool in ("docker", "docker-compose") + (("dockerd",) if self.own else ()):
            if shutil.which(tool) is None:
                raise EngineUnavailable(
                    f"{tool} is not installed (apt-get install docker.io docker-compose)"
                )
        if not self.own:
            self.wait_ready(time.monotonic() + timeout_s)
            return
        self.cache.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.cache / "dockerd.lock", "w")  # held until stop
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # another run on this data root: wait for it
        args = [
            "dockerd",
            f"--data-root={self.cache / 'docker'}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--pidfile={self.run_dir / 'dockerd.pid'}",
            f"--host={self.docker_host}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--bridge=none",
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_ready(time.monotonic() + timeout_s)

    def wait_ready(self, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EngineUnavailable(
                    f"dockerd exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            result = self.docker("version", "--format", "{{.Server.Version}}", check=False)
            if result.returncode == 0:
                return
            last = result.stderr.strip()
            time.sleep(0.2)
        self.stop()
        raise EngineUnavailable(f"dockerd did not answer: {last}\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def docker(self, *args: str, timeout_s: float = 600, check: bool = True, **kwargs: Any):
        return run(["docker", *args], timeout_s=timeout_s, check=check, env=self.env, **kwargs)

    def processes(self) -> dict[int, str]:
        """Live processes of this engine: dockerd, its containerd and their shims."""
        if self.process is None:
            return {}
        found = {}
        marker = str(self.run_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                state, _ppid, pgid, sid = stat[stat.rindex(")") + 2 :].split()[:4]
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if state != "Z" and (int(sid) == self.process.pid or marker in command):
                    found[int(entry.name)] = command.strip()
        return found

    def mounts(self) -> list[str]:
        """Mount points under the run dir (dockerd leaves its netns/default mounted)."""
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
        points = [line.split()[4] for line in lines]
        return [p for p in points if p.startswith(str(self.run_dir) + "/")]

    def unmount(self) -> None:
        for point in sorted(self.mounts(), reverse=True):
            subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)

    def stop(self, timeout_s: float = 60) -> None:
        """SIGTERM to dockerd (it stops containerd and the shims), SIGKILL to what is left."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        deadline = time.monotonic() + 10
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.unmount()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        shutil.rmtree(self.run_dir, ignore_errors=True)
