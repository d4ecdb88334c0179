"""Shared fixtures: real Redis and S3 (moto) servers, each test confined to its own keys.

Redis
    ``redis_url``     (session) the server on 127.0.0.1:6379 if it answers, else a
                      ``redis-server`` of our own on a free port.
    ``redis_prefix``  a fresh key prefix per test; its keys are deleted afterwards
                      with SCAN (never FLUSHALL: the server may be shared).
    ``redis_client``  a redis-py client (``decode_responses=True``) on ``redis_url``.
    ``redis_server``  a private, restartable ``redis-server`` (append-only, fsync
                      always) on a free port, for tests that stop or reconfigure it.

S3
    ``s3_endpoint``   (session) a moto server in a subprocess on a free loopback
                      port, so other processes can share it; fake AWS credentials
                      are put in the environment for the whole session.
    ``s3_client``     (session) a boto3 client on it.
    ``s3_bucket``     a fresh bucket per test, emptied and deleted afterwards.
    ``s3_env``        an environment mapping (``os.environ`` plus the endpoint)
                      for ``from_url(..., env=...)`` and for subprocesses.

A missing server skips the test, except when ``CI`` is set: then it fails.
Every process a fixture starts is stopped by that fixture.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
_AWS_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "ENACT_S3_ENDPOINT_URL")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when ``CI`` is set (a CI run must have its servers)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_in(ports: range) -> int:
    """A port of ``ports`` (a suite's own range) that nothing on 127.0.0.1 listens on,
    tried from a random start, so that parallel runs rarely collide."""
    import random

    start = random.randrange(len(ports))
    for offset in range(len(ports)):
        port = ports[(start + offset) % len(ports)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` with the repository importable, for ``python -c`` subprocesses."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- Redis -----------------------------------------------------------------------


class RedisServer:
    """A ``redis-server`` of the tests' own, on a fixed port across restarts."""

    def __init__(self, directory: Path, port: int | None = None, *args: str) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--protected-mode", "no",
                "--logfile", str(self.directory / "redis.log"), *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return self
            except redis.exceptions.AuthenticationError:
                return self  # up, and asking for credentials
            except redis.exceptions.ResponseError:
                return self  # up (for instance, NOAUTH)
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        """Stop the server: SIGTERM (a clean shutdown) or, with ``kill``, SIGKILL."""
        if self.process is None:
            return
        if kill and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        _stop(self.process)
        self.process = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()


def _redis_answers(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("redis")
    shared = "redis://127.0.0.1:6379/0"
    if _redis_answers(shared):
        yield shared
        return
    if shutil.which("redis-server") is None:
        unavailable("no Redis on 127.0.0.1:6379 and no redis-server binary to start one")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    import redis

    prefix = f"enact-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    pytest.importorskip("redis")
    if shutil.which("redis-server") is None:
        unavailable("no redis-server binary")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


# -- S3 (moto) --------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("boto3")
    try:
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("moto[server] is not installed")
    patch = pytest.MonkeyPatch()
    for name, value in FAKE_AWS.items():
        patch.setenv(name, value)
    for name in _AWS_UNSET:
        patch.delenv(name, raising=False)
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(),
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    unavailable(f"moto server did not start on port {port}")
                time.sleep(0.1)
        yield endpoint
    finally:
        _stop(process)
        log.close()
        patch.undo()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    bucket = f"enact-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    yield bucket
    delete_bucket(s3_client, bucket)


def delete_bucket(client: Any, bucket: str) -> None:
    """Empty a bucket (objects and unfinished multipart uploads) and delete it."""
    from botocore.exceptions import ClientError

    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", ()):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


@pytest.fixture
def s3_env(s3_endpoint: str) -> dict[str, str]:
    return subprocess_env({"ENACT_S3_ENDPOINT_URL": s3_endpoint, **FAKE_AWS})


# -- helpers as fixtures (test modules never import conftest) ----------------------


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on (for "server down" tests)."""
    return free_port()


@pytest.fixture
def python_env() -> dict[str, str]:
    """An environment for ``python -c`` subprocesses that can import enact and tests."""
    return subprocess_env()
