"""Helpers for the gc tests: one harness per collectable backend (file, Redis, S3).

A harness opens backends over one stored namespace (each call a new instance, as
another process would), writes objects *as if written some time ago* the way
each backend records time (file: mtime; Redis: the server-side write time; S3:
the time in the pack's id, which the writer takes from its clock), damages a
stored copy behind the backend's back, and names the namespace by URL for
subprocesses and the CLI.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest

from enact.digests import digest_bytes
from enact.serialization import pack_encoded

HOUR = 3600.0


def dag_object(tag: Any, links: list[str] = ()) -> tuple[str, bytes]:  # type: ignore[assignment]
    """An enact object with these links (and a body that makes it unique)."""
    data = pack_encoded({"tag": tag}, list(links))
    return digest_bytes(data), data


@dataclass
class Harness:
    kind: str
    open: Callable[[], Any]  # a new backend instance over the namespace
    url: str
    env: dict[str, str]
    write: Callable[[Mapping[str, bytes], float], None]  # objects, age in seconds
    damage: Callable[[str, bytes], None]  # digest, bytes to store in its place

    def sub(self) -> Harness:
        """A fresh, empty namespace of the same kind (hypothesis examples)."""
        return self._sub()  # type: ignore[attr-defined, no-any-return]


def file_harness(root: Path, env: dict[str, str]) -> Harness:
    from enact.stores.file import FileBackend

    def write(objects: Mapping[str, bytes], age_s: float) -> None:
        backend = FileBackend(root)
        backend.put(objects)
        stamp = time.time() - age_s
        for digest in objects:
            os.utime(backend.path_for(digest), (stamp, stamp))

    def damage(digest: str, data: bytes) -> None:  # bit rot: the mtime stays
        path = FileBackend(root).path_for(digest)
        before = path.stat()
        path.write_bytes(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    harness = Harness("file", lambda: FileBackend(root), f"file://{root}", env, write, damage)
    harness._sub = lambda: file_harness(root.parent / uuid.uuid4().hex[:8], env)  # type: ignore[attr-defined]
    return harness


def redis_harness(redis_url: str, prefix: str, env: dict[str, str]) -> Harness:
    import redis

    from enact.stores.redis import RedisBackend

    url = f"{redis_url}?prefix={prefix}"

    def write(objects: Mapping[str, bytes], age_s: float) -> None:
        backend = RedisBackend.from_url(url)
        backend.put(objects)
        if age_s:
            stamp = backend.server_time() - age_s
            backend.client.zadd(backend.keys.object_times(), {d: stamp for d in objects}, xx=True)

    def damage(digest: str, data: bytes) -> None:
        backend = RedisBackend.from_url(url)
        redis.Redis.from_url(redis_url).set(backend.keys.object(digest), data)

    harness = Harness("redis", lambda: RedisBackend.from_url(url), url, env, write, damage)
    harness._sub = lambda: redis_harness(redis_url, f"{prefix}:{uuid.uuid4().hex[:8]}", env)  # type: ignore[attr-defined]
    return harness


@contextlib.contextmanager
def s3_clock(age_s: float) -> Iterator[None]:
    """Make S3 writers in this process take ids (their clock) ``age_s`` in the past."""
    from enact.stores import _packs

    real = _packs.new_id
    shift = int(age_s * 1e9)
    _packs.new_id = lambda now_ns=None: real(time.time_ns() - shift if now_ns is None else now_ns)
    try:
        yield
    finally:
        _packs.new_id = real


def s3_harness(
    bucket: str, prefix: str, endpoint: str, client: Any, env: dict[str, str]
) -> Harness:
    from enact.stores.s3 import S3Backend

    def open_backend() -> S3Backend:
        return S3Backend(bucket, prefix, endpoint_url=endpoint)

    def write(objects: Mapping[str, bytes], age_s: float) -> None:
        with s3_clock(age_s):
            open_backend().put(objects)

    def damage(digest: str, data: bytes) -> None:
        key, offset, length = open_backend().locate(digest)
        if offset is None:
            client.put_object(Bucket=bucket, Key=key, Body=data)
            return
        pack = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(data) == length, "a packed object is damaged in place"
        body = pack[:offset] + data + pack[offset + length :]
        client.put_object(Bucket=bucket, Key=key, Body=body)

    url = f"s3://{bucket}/{prefix}"
    harness = Harness("s3", open_backend, url, env, write, damage)
    harness._sub = lambda: s3_harness(bucket, uuid.uuid4().hex[:8], endpoint, client, env)  # type: ignore[attr-defined]
    return harness


def make_harness(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Harness:
    """The harness of ``kind``, built on the conftest fixtures (servers, buckets, prefixes)."""
    if kind == "file":
        return file_harness(tmp_path / "store", request.getfixturevalue("python_env"))
    if kind == "redis":
        return redis_harness(
            request.getfixturevalue("redis_url"),
            request.getfixturevalue("redis_prefix"),
            request.getfixturevalue("python_env"),
        )
    return s3_harness(
        request.getfixturevalue("s3_bucket"),
        "gc",
        request.getfixturevalue("s3_endpoint"),
        request.getfixturevalue("s3_client"),
        request.getfixturevalue("s3_env"),
    )


def stored(harness: Harness, digests: list[str]) -> list[bool]:
    """Whether each digest is stored, as a new process sees it."""
    return harness.open().has(digests)  # type: ignore[no-any-return]


def packed(value: Any) -> tuple[str, bytes]:
    """The digest and bytes of a value, packed as ``commit`` would store it."""
    from enact.serialization import pack_value

    data, _ = pack_value(value)
    return digest_bytes(data), data


_WRITER = """
import json, os, random, sys, time
import enact
url, active, stop, out, distinct = sys.argv[1:5] + [int(sys.argv[5])]
roots, n = [], 0
with enact.Store(url):
    while not os.path.exists(stop):
        if not os.path.exists(active):  # write only while a gc runs
            time.sleep(0.005)
            continue
        # Commit again values that exist only as old garbage, and link them.
        again = [enact.commit({"garbage": (n * 7 + k) % distinct}) for k in range(10)]
        fresh = [enact.commit({"writer": out, "n": n, "k": k}) for k in range(10)]
        roots.append(enact.commit({"again": again, "fresh": fresh}).digest)
        n += 1
        with open(out + ".tmp", "w") as handle:
            handle.write(str(n))
        os.replace(out + ".tmp", out + ".count")
        time.sleep(random.uniform(0, 0.02))  # spread the writes over the gc's phases
with open(out, "w") as handle:
    json.dump(roots, handle)
"""


def gc_during_writes(
    harness: Harness, recommitted: int, directory: Path, rounds: int = 3, records: int = 5
) -> tuple[list[str], list[Any]]:
    """Run 3 writer processes that commit while gc (default grace) runs, round after
    round, until there were at least ``rounds`` gcs and each writer committed at
    least ``records`` records (however loaded the machine). The writers commit
    again the first ``recommitted`` values ``{"garbage": i}``. Returns the records
    they committed, and the gc reports."""
    import json
    import subprocess
    import sys

    import enact.gc

    active, stop = directory / "active", directory / "stop"
    outputs = [directory / f"writer{i}.json" for i in range(3)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, harness.url, str(active), str(stop), str(out),
             str(recommitted)],
            env=harness.env, stderr=subprocess.PIPE,
        )  # fmt: skip
        for out in outputs
    ]

    def counts() -> list[int]:
        paths = [Path(f"{out}.count") for out in outputs]
        return [int(p.read_text()) if p.exists() else 0 for p in paths]

    reports: list[Any] = []
    deadline = time.monotonic() + 600
    try:
        while len(reports) < rounds or min(counts()) < records:
            assert all(w.poll() is None for w in writers), "a writer exited early"
            assert time.monotonic() < deadline, f"writers made {counts()} records in 600 s"
            active.touch()
            reports.append(enact.gc.collect(harness.open()))
            active.unlink()
        stop.touch()
        errors = [w.communicate(timeout=300)[1] for w in writers]
    finally:
        stop.touch()
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert [w.returncode for w in writers] == [0, 0, 0], errors
    return [d for out in outputs for d in json.loads(out.read_text())], reports
