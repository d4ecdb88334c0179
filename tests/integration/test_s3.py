"""S3Backend against a moto server over HTTP: packing, verification, failures, URLs."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from enact.config import Settings, open_backend
from enact.digests import digest_bytes
from enact.errors import ConfigError, ObjectCorrupt, StoreError, StoreUnavailable

pytest.importorskip("boto3")

from botocore.exceptions import ClientError  # noqa: E402

from enact.stores import _packs  # noqa: E402
from enact.stores.s3 import S3Backend, shared_client  # noqa: E402


def _objects(n: int, size: int = 150, tag: bytes = b"") -> dict[str, bytes]:
    payloads = [tag + os.urandom(size // 2).hex().encode()[: size - len(tag)] for _ in range(n)]
    return {digest_bytes(p): p for p in payloads}


@pytest.fixture
def backend(s3_bucket: str, s3_endpoint: str) -> Any:
    with S3Backend(s3_bucket, "it", endpoint_url=s3_endpoint) as b:
        yield b


def _fresh(backend: S3Backend, **options: Any) -> S3Backend:
    return S3Backend(backend.bucket, backend.prefix, endpoint_url=backend.endpoint, **options)


class RequestCounter:
    """Counts HTTP requests (retries included) sent by one dedicated client."""

    def __init__(self, endpoint: str) -> None:
        import boto3
        from botocore.config import Config

        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.requests: list[str] = []
        self.client.meta.events.register("before-send.s3", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        self.requests.append(f"{request.method} {request.url}")


def _keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", ())]


# -- layout and request counts ---------------------------------------------------


def test_layout_is_versioned_and_packed(backend: S3Backend, s3_client: Any) -> None:
    small = _objects(50)
    big = os.urandom(2 << 20)
    backend.put({**small, digest_bytes(big): big})
    keys = _keys(s3_client, backend.bucket)
    # The small objects share a pack; the large one has a pack of its own (a key
    # never reused, so gc can delete an old copy without racing a writer).
    assert len([k for k in keys if k.startswith("it/v1/packs/")]) == 2
    assert len([k for k in keys if k.startswith("it/v1/index/")]) == 1
    assert len(keys) == 3
    key, offset, length = backend.locate(digest_bytes(big))
    assert key.startswith("it/v1/packs/") and (offset, length) == (8, len(big))


def test_a_tree_commit_costs_a_bounded_number_of_requests(backend: S3Backend) -> None:
    counter = RequestCounter(backend.endpoint)
    writer = S3Backend(backend.bucket, backend.prefix, client=counter.client)
    objects = _objects(5000)
    writer.put(objects)
    assert len(counter.requests) <= 3, counter.requests  # the pack and the index

    counter.requests.clear()
    reader = S3Backend(backend.bucket, backend.prefix, client=counter.client)
    digests = list(objects)
    assert all(reader.has(digests))
    assert reader.get(digests[:10]) == [objects[d] for d in digests[:10]]
    assert reader.get(digests) == list(objects.values())
    # LIST indexes, GET the index, GET the pack once (then served from memory).
    assert len(counter.requests) <= 3, counter.requests


def test_large_packs_are_read_with_grouped_range_requests(backend: S3Backend) -> None:
    objects = _objects(400, size=1000)
    backend.put(objects)
    counter = RequestCounter(backend.endpoint)
    reader = S3Backend(
        backend.bucket, backend.prefix, client=counter.client, whole_pack_read_max_bytes=0
    )
    digests = list(objects)
    wanted = digests[100:110] + digests[300:305]
    assert reader.get(wanted) == [objects[d] for d in wanted]
    ranged = [r for r in counter.requests if r.startswith("GET") and "/packs/" in r]
    assert len(ranged) == 1  # 15 objects within a few KB of each other: one range GET


def test_puts_of_known_objects_send_nothing(backend: S3Backend) -> None:
    objects = _objects(20)
    counter = RequestCounter(backend.endpoint)
    writer = S3Backend(backend.bucket, backend.prefix, client=counter.client)
    writer.put(objects)
    sent = len(counter.requests)
    writer.put(objects)
    assert len(counter.requests) == sent


def test_one_instance_serves_concurrent_threads(backend: S3Backend) -> None:
    import threading

    batches = [_objects(200, tag=b"%d" % t) for t in range(4)]
    reader = _fresh(backend)
    results: dict[int, bool] = {}
    barrier = threading.Barrier(4)

    def work(t: int) -> None:
        barrier.wait(timeout=30)
        backend.put(batches[t])
        results[t] = reader.get(list(batches[t])) == list(batches[t].values())

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {0: True, 1: True, 2: True, 3: True}


# -- readers in other processes and instances --------------------------------------

_WRITE = """
import sys, json
from enact.stores.s3 import S3Backend
from enact.digests import digest_bytes
bucket, prefix, endpoint, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
payloads = [b"written elsewhere %d" % i for i in range(n)]
S3Backend(bucket, prefix, endpoint_url=endpoint).put({digest_bytes(p): p for p in payloads})
"""

_READ = """
import sys
from enact.stores.s3 import S3Backend
bucket, prefix, endpoint = sys.argv[1], sys.argv[2], sys.argv[3]
digests = sys.stdin.read().split()
data = S3Backend(bucket, prefix, endpoint_url=endpoint).get(digests)
print(sum(d is not None for d in data))
"""


def test_packs_written_by_another_process_are_read_here(
    backend: S3Backend, s3_env: dict[str, str]
) -> None:
    args = [backend.bucket, backend.prefix, backend.endpoint]
    subprocess.run([sys.executable, "-c", _WRITE, *args, "500"], env=s3_env, check=True)
    payloads = [b"written elsewhere %d" % i for i in range(500)]
    digests = [digest_bytes(p) for p in payloads]
    assert backend.get(digests) == payloads  # this instance lists the new index on the miss

    mine = _objects(300)
    backend.put(mine)
    out = subprocess.run(
        [sys.executable, "-c", _READ, *args],
        input=" ".join(mine).encode(),
        env=s3_env,
        check=True,
        capture_output=True,
    )
    assert out.stdout.decode().strip() == "300"


def test_new_indexes_are_found_on_a_miss(backend: S3Backend) -> None:
    reader = _fresh(backend)
    first = _objects(10)
    backend.put(first)
    assert all(reader.has(list(first)))
    later = _objects(10)
    backend.put(later)
    assert all(reader.has(list(later)))  # listed only the indexes after the first


def test_an_index_written_late_within_the_window_is_found(
    backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = _fresh(backend)
    backend.put(_objects(5))
    reader.has([digest_bytes(b"miss")])  # the reader now holds the newest index
    real = _packs.new_id
    monkeypatch.setattr(_packs, "new_id", lambda: real(time.time_ns() - 20 * 10**9))
    skewed = _objects(5)
    _fresh(backend).put(skewed)  # a writer whose clock is 20 s behind
    assert all(reader.has(list(skewed)))


def test_two_processes_write_identical_objects_at_once(
    backend: S3Backend, s3_env: dict[str, str], s3_client: Any
) -> None:
    code = """
import sys, time
from enact.stores.s3 import S3Backend
from enact.digests import digest_bytes
bucket, prefix, endpoint, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
payloads = [b"identical %d" % i for i in range(200)] + [b"L" * (9 << 20), b"M" * (2 << 20)]
objects = {digest_bytes(p): p for p in payloads}
backend = S3Backend(bucket, prefix, endpoint_url=endpoint)
while time.time() < start:
    time.sleep(0.001)
backend.put(objects)
"""
    start = repr(time.time() + 2)
    args = [backend.bucket, backend.prefix, backend.endpoint, start]
    procs = [
        subprocess.Popen([sys.executable, "-c", code, *args], env=s3_env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], errors
    payloads = [b"identical %d" % i for i in range(200)] + [b"L" * (9 << 20), b"M" * (2 << 20)]
    assert _fresh(backend).get([digest_bytes(p) for p in payloads]) == payloads
    assert _keys(s3_client, backend.bucket, "it/v1/sha256/") == []


# -- verification and missing objects -----------------------------------------------


def test_a_corrupted_loose_object_names_bucket_and_key(backend: S3Backend, s3_client: Any) -> None:
    data = os.urandom(2 << 20)
    digest = digest_bytes(data)
    # A loose object, as another tool (or enact before 0.5) wrote it.
    key = f"it/v1/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    s3_client.put_object(Bucket=backend.bucket, Key=key, Body=data)
    assert backend.locate(digest) == (key, None, None)
    s3_client.put_object(Bucket=backend.bucket, Key=key, Body=data[:-1] + b"!")
    with pytest.raises(ObjectCorrupt) as caught:
        _fresh(backend).get([digest])
    assert f"s3://{backend.bucket}/{key}" in str(caught.value)


def test_a_corrupted_large_object_names_its_pack(backend: S3Backend, s3_client: Any) -> None:
    data = os.urandom(2 << 20)
    digest = digest_bytes(data)
    backend.put({digest: data})
    key, offset, length = backend.locate(digest)
    pack = s3_client.get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    s3_client.put_object(Bucket=backend.bucket, Key=key, Body=pack[:-1] + b"!")
    with pytest.raises(ObjectCorrupt) as caught:
        _fresh(backend).get([digest])
    assert f"s3://{backend.bucket}/{key} bytes {offset}-{offset + length - 1}" in str(caught.value)


def test_a_corrupted_packed_object_is_caught_and_its_neighbours_still_read(
    backend: S3Backend, s3_client: Any
) -> None:
    objects = _objects(20)
    backend.put(objects)
    digests = list(objects)
    key, offset, length = backend.locate(digests[3])
    pack = s3_client.get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    damaged = pack[:offset] + b"X" + pack[offset + 1 :]
    s3_client.put_object(Bucket=backend.bucket, Key=key, Body=damaged)
    reader = _fresh(backend)
    with pytest.raises(ObjectCorrupt) as caught:
        reader.get([digests[3]])
    assert key in str(caught.value) and f"bytes {offset}-{offset + length - 1}" in str(caught.value)
    assert reader.get(digests[4:8]) == [objects[d] for d in digests[4:8]]


def test_a_corrupted_index_costs_only_its_objects(
    backend: S3Backend, s3_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    lost = _objects(3)
    backend.put(lost)
    (index_key,) = _keys(s3_client, backend.bucket, "it/v1/index/")
    kept = _objects(3)
    backend.put(kept)
    s3_client.put_object(Bucket=backend.bucket, Key=index_key, Body=b"ENACTIX1 garbage")
    reader = _fresh(backend)
    with caplog.at_level("WARNING"):
        assert reader.get(list(kept)) == list(kept.values())
    assert index_key in caplog.text and "enact fsck" in caplog.text
    assert reader.corrupt_indexes.keys() == {index_key}
    assert reader.has(list(lost)) == [False, False, False]
    assert reader.get(list(lost)) == [None, None, None]
    reader.put(lost)  # committing them again repairs them, for every reader
    assert _fresh(backend).get(list(lost)) == list(lost.values())


def test_a_missing_object(backend: S3Backend, s3_client: Any) -> None:
    backend.put(_objects(3))
    missing = digest_bytes(b"missing")
    for view in (backend, _fresh(backend)):
        assert view.has([missing]) == [False]
        assert view.get([missing]) == [None]
        assert view.locate(missing) is None
    # An object another tool put at its loose key is still found by get.
    data = b"put by hand"
    digest = digest_bytes(data)
    key = f"it/v1/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    s3_client.put_object(Bucket=backend.bucket, Key=key, Body=data)
    assert _fresh(backend).get([digest]) == [data]


def test_invalid_digests_are_refused(backend: S3Backend) -> None:
    with pytest.raises(StoreError, match="invalid digest"):
        backend.get(["../../etc/passwd"])
    with pytest.raises(StoreError, match="invalid digest"):
        backend.put({"ABC": b"x"})


def test_a_hundred_megabyte_object_goes_up_in_parts(backend: S3Backend, s3_client: Any) -> None:
    data = os.urandom(1 << 20) * 100
    digest = digest_bytes(data)
    backend.put({digest: data})
    key, offset, _ = backend.locate(digest)
    head = s3_client.head_object(Bucket=backend.bucket, Key=key)
    assert head["ContentLength"] == offset + len(data)  # the pack header, then the object
    assert "-" in head["ETag"]  # a multipart ETag: "<md5 of part md5s>-<parts>"
    assert _fresh(backend).get([digest])[0] == data
    backend.put({digest: data})  # already indexed: nothing is sent
    _fresh(backend).put({digest: data})  # found in the indexes it loads: nothing is sent
    assert len(_keys(s3_client, backend.bucket, "it/v1/packs/")) == 1
    assert s3_client.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", []) == []


# -- create-only writes --------------------------------------------------------------


def test_an_existing_key_is_success(backend: S3Backend, s3_client: Any) -> None:
    key = "it/v1/sha256/00/00/test"
    backend._put_object(key, b"same")
    with pytest.raises(ClientError) as caught:  # the server does refuse the second write...
        s3_client.put_object(Bucket=backend.bucket, Key=key, Body=b"same", IfNoneMatch="*")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    backend._put_object(key, b"same")  # ...and the backend takes that as success


class _NoConditionalWrites:
    """A client for a server that rejects If-None-Match (as some S3-compatibles do)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **kwargs: Any) -> Any:
        if "IfNoneMatch" in kwargs:
            self.refused += 1
            error = {"Code": "NotImplemented", "Message": "If-None-Match is not implemented"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 501}}, "Put")
        return self._client.put_object(**kwargs)


def test_servers_without_conditional_writes_are_written_to_plainly(backend: S3Backend) -> None:
    client = _NoConditionalWrites(shared_client(endpoint_url=backend.endpoint))
    writer = S3Backend(backend.bucket, backend.prefix, client=client)
    objects = _objects(10)
    writer.put(objects)
    writer.put(_objects(10))
    assert client.refused == 1  # learned once, then writes without the header
    assert _fresh(backend).get(list(objects)) == list(objects.values())


# -- failures ------------------------------------------------------------------------


def test_a_missing_bucket_is_named(s3_endpoint: str) -> None:
    backend = S3Backend("enact-no-such-bucket", endpoint_url=s3_endpoint)
    digest = digest_bytes(b"x")
    for call in (lambda: backend.has([digest]), lambda: backend.get([digest]),
                 lambda: backend.put({digest: b"x"})):  # fmt: skip
        with pytest.raises(StoreError, match="enact-no-such-bucket.*does not exist") as caught:
            call()
        assert not isinstance(caught.value, StoreUnavailable)


def test_an_endpoint_that_is_down_fails_within_seconds(unused_port: int) -> None:
    endpoint = f"http://127.0.0.1:{unused_port}"
    backend = S3Backend("enact-down", endpoint_url=endpoint, max_attempts=3)
    digest = digest_bytes(b"x")
    for call in (lambda: backend.has([digest]), lambda: backend.put({digest: b"x"})):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            call()
        elapsed = time.monotonic() - started
        assert endpoint in str(caught.value) and "3 attempts" in str(caught.value)
        assert elapsed < 10, f"took {elapsed:.1f} s"


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3:///prefix",
        "s3://Bad Bucket/x",
        "s3://ab/x",
        "s3://key:secret@bucket/x",
        "s3://bucket:9000/x",
        "s3://bucket/x?colour=blue",
        "s3://bucket/x?max_attempts=many",
        "s3://bucket/x?endpoint_url=localhost:9000",
        "s4://bucket/x",
    ],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        S3Backend.from_url(url, Settings.from_env({}))


def test_from_url_reads_the_environment(s3_bucket: str, s3_endpoint: str) -> None:
    env = {
        "ENACT_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    settings = Settings.from_env(env)
    backend = S3Backend.from_url(f"s3://{s3_bucket}/a/b/?max_attempts=2&workers=2", settings)
    assert (backend.bucket, backend.prefix, backend.max_attempts) == (s3_bucket, "a/b", 2)
    assert backend.endpoint == s3_endpoint
    assert backend.url == f"s3://{s3_bucket}/a/b"
    objects = _objects(5)
    backend.put(objects)
    view = open_backend(f"s3://{s3_bucket}/a/b", settings)
    assert view.get(list(objects)) == list(objects.values())


def test_one_client_per_process_and_settings(s3_endpoint: str) -> None:
    a = shared_client(endpoint_url=s3_endpoint)
    assert shared_client(endpoint_url=s3_endpoint) is a
    assert shared_client(endpoint_url=s3_endpoint, max_attempts=5) is not a


def _use_after_fork(backend: S3Backend, digests: list[str], queue: Any) -> None:
    queue.put(sum(d is not None for d in backend.get(digests)))


def test_a_backend_works_in_a_forked_child(backend: S3Backend) -> None:
    objects = _objects(10)
    backend.put(objects)
    backend.get(list(objects))  # the parent's pool and connections are in use
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_use_after_fork, args=(_fresh(backend), list(objects), queue))
    child.start()
    try:
        assert queue.get(timeout=30) == 10
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join()
    assert child.exitcode == 0
