"""A private cluster for the web tests: its own redis-server (port 7600-7699), a file
store, a real Celery worker process, and ``enact serve`` processes; every process a
fixture starts is stopped by that fixture."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import RedisServer, subprocess_env

REPO_ROOT = Path(__file__).resolve().parents[2]
PORTS = range(7610, 7700)  # this suite's range; 7600 is `enact serve`'s default


def port_in_range(host: str = "127.0.0.1") -> int:
    """A free port of this suite's range."""
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def stop_group(process: subprocess.Popen[Any], timeout_s: float = 20) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Cluster:
    """Environment, worker and servers of one private cluster."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = env
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def start_worker(self) -> None:
        log = self.directory / "worker.log"
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "enact.worker", "worker",
                "--loglevel=INFO", "--hostname=web@test", "-c", "4", "-P", "threads",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            env=self.env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while "ready." not in (log.read_text() if log.exists() else ""):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)

    def serve(
        self, host: str = "127.0.0.1", token: str | None = None, *extra: str, wait: bool = True
    ) -> tuple[str, subprocess.Popen[bytes]]:
        """Start ``enact serve``; returns its base URL and process."""
        port = port_in_range()
        env = dict(self.env)
        env.pop("ENACT_API_TOKEN", None)
        if token:
            env["ENACT_API_TOKEN"] = token
        log = self.directory / f"serve-{port}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "enact.cli", "serve", "--host", host, "--port", str(port),
             "--log-level", "warning", *extra],
            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '127.0.0.1') else host}:{port}"
        if wait:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/api/openapi.json", timeout=1)
                    break
                except urllib.error.HTTPError:
                    break  # up, and asking for a token
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"no server:\n{log.read_text()[-3000:]}") from None
                    time.sleep(0.1)
        return url, process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            stop_group(process)
        self.processes.clear()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running cluster (Redis, file store, one worker); this process is its client."""
    pytest.importorskip("celery")
    pytest.importorskip("fastapi")
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for the web tests")
    directory = tmp_path_factory.mktemp("web-cluster")
    redis_server = RedisServer(directory / "redis", port_in_range()).start()
    env = subprocess_env(
        {
            "ENACT_REDIS_URL": redis_server.url,
            "ENACT_STORE_URL": f"file:{directory / 'store'}",
            "ENACT_IMPORTS": "tests.web.flows",
            "ENACT_REDIS_PREFIX": "webtest",
        }
    )
    env.pop("ENACT_API_TOKEN", None)
    from enact.worker.app import reconfigure

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reconfigure()
    import tests.web.flows  # noqa: F401  (registers the types answers are checked against)

    cluster = Cluster(env, directory)
    try:
        cluster.start_worker()
        yield cluster
    finally:
        cluster.stop_all()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reconfigure()
        import gc

        gc.collect()
        redis_server.stop()


@pytest.fixture(scope="session")
def server(cluster: Cluster) -> str:
    """The base URL of an ``enact serve`` on loopback, without a token."""
    url, _ = cluster.serve("127.0.0.1", None, "--expose", "tests.web.flows.add")
    return url


@pytest.fixture
def submit(cluster: Cluster) -> Callable[..., Any]:
    import enact.worker

    def go(target: Any, *args: Any) -> Any:
        flow = enact.worker.submit(target, *args)
        return flow

    return go
