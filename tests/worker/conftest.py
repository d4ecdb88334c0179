"""A private cluster for the worker tests: its own redis-server, a moto S3 bucket,
and real ``celery -A enact.worker worker`` processes that the fixtures always stop.

The cluster runs with the default settings (leases, recovery, visibility timeout):
what users get is what is tested."""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import free_port_in

REPO_ROOT = Path(__file__).resolve().parents[2]
PORTS = range(7100, 7200)  # this suite's redis-servers keep to these ports


def free_port() -> int:
    """A free loopback port in ``PORTS``."""
    return free_port_in(PORTS)


class Workers:
    """Starts, stops and kills named worker processes of one cluster."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, concurrency: int = 4, pool: str = "threads", wait: bool = True
    ) -> str:
        hostname = f"{name}@test"
        log = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "enact.worker", "worker",
                "--loglevel=INFO", f"--hostname={hostname}", "-c", str(concurrency),
                "-P", pool, "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
        if wait:
            self.wait_ready(name)
        return hostname

    def wait_ready(self, name: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        log = self.log_dir / f"{name}.log"
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n{log.read_text()[-3000:]}")
            if log.exists() and "ready." in log.read_text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} not ready in {timeout_s}s:\n{log.read_text()[-3000:]}")

    def stop(self, name: str, timeout_s: float = 20) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


@dataclass
class Cluster:
    """A private cluster: the environment its processes get, its Redis (and its
    broker's, when separate), and its bucket."""

    env: dict[str, str]
    redis: Any
    broker: Any = None


@contextmanager
def private_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint: str,
    s3_client: Any,
    *,
    separate_broker: bool = False,
    extra: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """Start a cluster's servers; the test process is configured to use it too."""
    pytest.importorskip("celery")
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for the worker tests")
    import uuid

    from tests.conftest import RedisServer, delete_bucket, subprocess_env

    redis_server = RedisServer(tmp_path_factory.mktemp("cluster-redis"), free_port()).start()
    broker = None
    if separate_broker:
        broker = RedisServer(tmp_path_factory.mktemp("cluster-broker"), free_port()).start()
    bucket = f"enact-worker-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    env = subprocess_env(
        {
            "ENACT_REDIS_URL": redis_server.url,
            "ENACT_STORE_URL": f"s3://{bucket}/flows",
            "ENACT_S3_ENDPOINT_URL": s3_endpoint,
            "ENACT_IMPORTS": "tests.worker.flows",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            **({"ENACT_BROKER_URL": broker.url} if broker is not None else {}),
            **(extra or {}),
        }
    )
    from enact.worker import runtime
    from enact.worker.app import reconfigure

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runtime.reset()
    reconfigure()
    try:
        yield Cluster(env, redis_server, broker)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        runtime.reset()
        reconfigure()
        # Celery result handles unsubscribe from Redis when collected: collect them
        # while this cluster's Redis still runs (a client's Redis does not vanish).
        gc.collect()
        redis_server.stop()
        if broker is not None:
            broker.stop()
        delete_bucket(s3_client, bucket)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, s3_client: Any
) -> Iterator[Cluster]:
    with private_cluster(tmp_path_factory, s3_endpoint, s3_client) as running:
        yield running


@pytest.fixture(scope="module")
def cluster_env(cluster: Cluster) -> dict[str, str]:
    """Environment of a private cluster; the test process is configured to use it too."""
    return cluster.env


@pytest.fixture
def workers(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(cluster_env, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


def outcome_of(call: Any) -> BaseException | None:
    """Run ``call`` in a thread; its exception (``None`` if it returned). A call still
    running after a minute is a hang: reported as ``TimeoutError``."""
    import threading

    caught: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            caught.append(None)
        except BaseException as exc:  # noqa: BLE001
            caught.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    return caught[0] if caught else TimeoutError("still running after 60 s: a hang")
