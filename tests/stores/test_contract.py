"""The Backend contract, run against every backend: memory, file, S3 (moto over HTTP), Redis.

A ``Harness`` knows how to open a backend, open a second instance over the same
stored data (another process's view), name it by URL for subprocesses, and
damage a stored object behind the backend's back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from enact.backend import Backend
from enact.config import Settings
from enact.digests import digest_bytes, verify
from enact.errors import ObjectCorrupt


@dataclass
class Harness:
    kind: str
    make: Callable[[], Any]  # a new instance over the same stored data
    url: str | None  # for other processes; None when the data is process-local
    env: dict[str, str]
    corrupt: Callable[[Any, str, bytes], None]  # overwrite the stored bytes of a digest
    verifies_reads: bool  # the backend itself raises ObjectCorrupt


def _objects(*payloads: bytes) -> dict[str, bytes]:
    return {digest_bytes(p): p for p in payloads}


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    from enact.stores.memory import MemoryBackend

    backend = MemoryBackend()

    def corrupt(b: Any, digest: str, data: bytes) -> None:
        b._objects[digest] = data

    return Harness("memory", lambda: backend, None, {}, corrupt, False)


def _file(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    from enact.stores.file import FileBackend

    root = tmp_path / "store"

    def corrupt(b: Any, digest: str, data: bytes) -> None:
        b.path_for(digest).write_bytes(data)

    env = request.getfixturevalue("python_env")
    return Harness("file", lambda: FileBackend(root), f"file://{root}", env, corrupt, False)


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    from enact.stores.s3 import S3Backend

    bucket = request.getfixturevalue("s3_bucket")
    client = request.getfixturevalue("s3_client")
    env = request.getfixturevalue("s3_env")
    url = f"s3://{bucket}/contract"

    def corrupt(b: Any, digest: str, data: bytes) -> None:
        key, offset, length = b.locate(digest)
        if offset is None:
            client.put_object(Bucket=bucket, Key=key, Body=data)
            return
        pack = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(data) == length, "a packed object is corrupted in place"
        client.put_object(
            Bucket=bucket, Key=key, Body=pack[:offset] + data + pack[offset + length :]
        )

    settings = Settings.from_env(env)
    return Harness("s3", lambda: S3Backend.from_url(url, settings), url, env, corrupt, True)


def _redis(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    import redis

    from enact.stores.redis import RedisBackend

    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    url = f"{redis_url}?prefix={prefix}"

    def corrupt(b: Any, digest: str, data: bytes) -> None:
        redis.Redis.from_url(redis_url).set(b.keys.object(digest), data)

    env = request.getfixturevalue("python_env")
    return Harness("redis", lambda: RedisBackend.from_url(url), url, env, corrupt, False)


HARNESSES = {"memory": _memory, "file": _file, "s3": _s3, "redis": _redis}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return HARNESSES[request.param](request, tmp_path)


@pytest.fixture
def backend(harness: Harness) -> Any:
    return harness.make()


def test_is_a_backend(backend: Any) -> None:
    assert isinstance(backend, Backend)


def test_empty_batches(backend: Any) -> None:
    assert backend.has([]) == []
    assert backend.get([]) == []
    backend.put({})


def test_results_align_with_the_input(harness: Harness, backend: Any) -> None:
    objects = _objects(b"alpha", b"beta", b"\x00\xffbinary\n", b"")
    a, b, c, empty = objects
    missing = digest_bytes(b"never stored")
    backend.put(objects)
    order = [b, missing, a, c, missing, empty, a]
    for view in (backend, harness.make()):
        assert view.has(order) == [True, False, True, True, False, True, True]
        assert view.get(order) == [objects[b], None, objects[a], objects[c], None, b"", objects[a]]


def test_a_miss_is_none(backend: Any) -> None:
    missing = digest_bytes(b"nothing here")
    assert backend.has([missing]) == [False]
    assert backend.get([missing]) == [None]


def test_put_is_idempotent(harness: Harness, backend: Any) -> None:
    first = _objects(*(b"object %d" % i for i in range(10)))
    backend.put(first)
    backend.put(first)
    overlapping = _objects(*(b"object %d" % i for i in range(5, 15)))
    backend.put(overlapping)
    harness.make().put(overlapping)
    everything = {**first, **overlapping}
    view = harness.make()
    assert view.get(list(everything)) == list(everything.values())


def test_many_small_objects_in_one_put(harness: Harness, backend: Any) -> None:
    objects = _objects(*(os.urandom(20).hex().encode() * 4 for _ in range(3000)))
    backend.put(objects)
    digests = list(objects)
    view = harness.make()
    assert all(view.has(digests))
    assert view.get(digests) == list(objects.values())


def test_ten_megabyte_object(harness: Harness, backend: Any) -> None:
    big = os.urandom(10 << 20)
    digest = digest_bytes(big)
    backend.put({digest: big, digest_bytes(b"small"): b"small"})
    assert harness.make().get([digest])[0] == big
    assert harness.make().has([digest]) == [True]


_WRITER = """
import sys, time
from enact.config import open_backend
from enact.digests import digest_bytes
url, start = sys.argv[1], float(sys.argv[2])
payloads = [b"shared object %d" % i for i in range(300)] + [bytes(range(256)) * 8192]
objects = {digest_bytes(p): p for p in payloads}
backend = open_backend(url)
while time.time() < start:
    time.sleep(0.001)
backend.put(objects)
print(sum(backend.has(list(objects))))
"""


def test_two_processes_put_the_same_objects(harness: Harness) -> None:
    if harness.url is None:
        pytest.skip(f"{harness.kind} objects live in one process")
    start = time.time() + 2.0
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, harness.url, repr(start)],
            env=harness.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        results = [w.communicate(timeout=60) for w in writers]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for writer, (out, err) in zip(writers, results):
        assert writer.returncode == 0, err.decode()
        assert out.decode().strip() == "301"
    payloads = [b"shared object %d" % i for i in range(300)] + [bytes(range(256)) * 8192]
    objects = _objects(*payloads)
    assert harness.make().get(list(objects)) == list(objects.values())


def test_a_corrupted_object_is_caught(harness: Harness, backend: Any) -> None:
    good = b"the original bytes of this object"
    digest = digest_bytes(good)
    backend.put({digest: good})
    bad = b"THE original bytes of this object"
    harness.corrupt(backend, digest, bad)
    view = harness.make()
    if harness.verifies_reads:
        with pytest.raises(ObjectCorrupt) as caught:
            view.get([digest])
        assert digest in str(caught.value)
        assert "s3://" in str(caught.value)
    else:
        data = view.get([digest])[0]
        assert data == bad
        with pytest.raises(ObjectCorrupt):
            verify(digest, data)
