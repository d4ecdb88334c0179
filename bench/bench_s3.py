"""S3Backend against moto's server: a 1,000-call invocation tree vs raw boto3 requests.

Starts its own moto server on a free loopback port, then measures in one run:

* raw boto3: 1,000 sequential PUTs, then 1,000 sequential GETs, one small object
  per request (the baseline);
* ``enact.invoke(roll_sum, (1000,))`` committed through ``Store(S3Backend)``, and
  the whole tree checked out again through a fresh backend (a new process's view);
* a synthetic worst case: 5,000 objects of ~150 bytes in one ``put()`` (an
  invocation tree with no shared values), read back by a fresh backend in
  breadth-first batches.

Prints a table with each workload's time as a fraction of 1,000 raw PUTs; the
target for committing the tree is at most 0.20. Run: ``python bench/bench_s3.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

import enact  # noqa: E402
from enact.digests import digest_bytes  # noqa: E402
from enact.stores.s3 import S3Backend  # noqa: E402

RAW_REQUESTS = 1000
SYNTHETIC_OBJECTS = 5000


@enact.register
def roll_die(sides: int) -> int:
    """Roll a die."""
    return random.randint(1, sides)


@enact.register
def roll_sum(num_rolls: int) -> int:
    """Roll dice."""
    return sum(roll_die(6) for _ in range(num_rolls))


class Counting:
    """Wraps a backend to count the objects it moves."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.put_objects = 0
        self.got_objects = 0

    def has(self, digests: Any) -> list[bool]:
        return self.backend.has(digests)  # type: ignore[no-any-return]

    def get(self, digests: Any) -> list[bytes | None]:
        self.got_objects += len(digests)
        return self.backend.get(digests)  # type: ignore[no-any-return]

    def put(self, objects: Any) -> None:
        self.put_objects += len(objects)
        self.backend.put(objects)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            return process, endpoint
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("moto server did not start") from None
            time.sleep(0.1)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_time(repeat: int, setup: Callable[[int], Callable[[], Any]]) -> float:
    return statistics.median(timed(setup(i)) for i in range(repeat))


def synthetic_tree(n: int) -> tuple[dict[str, bytes], list[list[str]]]:
    """~n objects of ~150 bytes linked as a tree; returns them and their BFS levels."""
    objects: dict[str, bytes] = {}
    levels: list[list[str]] = [[] for _ in range(5)]
    # root -> 1,000 calls -> request + response each -> input + output each (~5 per call)
    calls = n // 5
    for i in range(calls):
        leaves = [os.urandom(48).hex().encode() + b"-leaf-%d-%d" % (i, j) for j in range(2)]
        request = b"request:" + os.urandom(40).hex().encode() + digest_bytes(leaves[0]).encode()
        response = b"response:" + os.urandom(40).hex().encode() + digest_bytes(leaves[1]).encode()
        call = b"call:" + digest_bytes(request).encode() + digest_bytes(response).encode()
        for level, data in ((1, call), (2, request), (2, response), (3, leaves[0]), (3, leaves[1])):
            digest = digest_bytes(data)
            objects[digest] = data
            levels[level].append(digest)
    root = b"root:" + b"".join(d.encode() for d in levels[1][:50])
    objects[digest_bytes(root)] = root
    levels[0].append(digest_bytes(root))
    return objects, [level for level in levels if level]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server of our own, with fake AWS credentials; yields its endpoint."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    moto, endpoint = start_moto()
    try:
        yield endpoint
    finally:
        moto.terminate()
        moto.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload (median)")
    args = parser.parse_args(argv)
    with moto_server() as endpoint:
        rows = run(endpoint, args.repeat)
    print_table(rows)


def run(endpoint: str, repeat: int) -> list[tuple[str, int, float]]:
    raw = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    bucket = "enact-bench"
    raw.create_bucket(Bucket=bucket)
    payloads = [os.urandom(75).hex().encode() for _ in range(RAW_REQUESTS)]
    rows: list[tuple[str, int, float]] = []

    def raw_puts(i: int) -> Callable[[], None]:
        def go() -> None:
            for n, body in enumerate(payloads):
                raw.put_object(Bucket=bucket, Key=f"raw/{i}/{n}", Body=body)

        return go

    def raw_gets(i: int) -> Callable[[], None]:
        def go() -> None:
            for n in range(RAW_REQUESTS):
                raw.get_object(Bucket=bucket, Key=f"raw/{i}/{n}")["Body"].read()

        return go

    rows.append((f"raw boto3: {RAW_REQUESTS} sequential PUTs", RAW_REQUESTS,
                 median_time(repeat, raw_puts)))  # fmt: skip
    rows.append((f"raw boto3: {RAW_REQUESTS} sequential GETs", RAW_REQUESTS,
                 median_time(repeat, raw_gets)))  # fmt: skip

    # The real thing: a 1,000-call invocation tree through Store(S3Backend).
    counted: dict[str, Counting] = {}
    invocations: dict[int, Any] = {}

    def commit_tree(i: int) -> Callable[[], None]:
        backend = Counting(S3Backend(bucket, f"tree/{i}", endpoint_url=endpoint))
        counted[f"commit{i}"] = backend

        def go() -> None:
            with enact.Store(backend):
                invocations[i] = enact.invoke(roll_sum, (1000,))

        return go

    def checkout_tree(i: int) -> Callable[[], None]:
        backend = Counting(S3Backend(bucket, f"tree/{i}", endpoint_url=endpoint))
        counted[f"checkout{i}"] = backend

        def go() -> None:
            with enact.Store(backend):
                summary = enact.invocation_summary(invocations[i])
            assert summary.count("->roll_die(6)") == 1000

        return go

    def commit_tree_memory(i: int) -> Callable[[], None]:
        def go() -> None:
            with enact.InMemoryStore():
                enact.invoke(roll_sum, (1000,))

        return go

    rows.append(("enact.invoke(roll_sum, (1000,)), memory store", 0,
                 median_time(repeat, commit_tree_memory)))  # fmt: skip
    commit = median_time(repeat, commit_tree)
    rows.append(("enact.invoke(roll_sum, (1000,)) -> S3Backend", counted["commit0"].put_objects,
                 commit))  # fmt: skip
    checkout = median_time(repeat, checkout_tree)
    rows.append(("  check out the whole tree, fresh backend", counted["checkout0"].got_objects,
                 checkout))  # fmt: skip

    # The worst case: 5,000 distinct ~150-byte objects in one put().
    trees = [synthetic_tree(SYNTHETIC_OBJECTS) for _ in range(repeat)]

    def put_synthetic(i: int) -> Callable[[], None]:
        backend = S3Backend(bucket, f"synthetic/{i}", endpoint_url=endpoint)
        return lambda: backend.put(trees[i][0])

    def get_synthetic(i: int) -> Callable[[], None]:
        backend = S3Backend(bucket, f"synthetic/{i}", endpoint_url=endpoint)

        def go() -> None:
            for level in trees[i][1]:
                for start in range(0, len(level), 1000):
                    batch = level[start : start + 1000]
                    assert None not in backend.get(batch)

        return go

    size = len(trees[0][0])
    rows.append((f"synthetic: {size} objects in one put()", size,
                 median_time(repeat, put_synthetic)))  # fmt: skip
    rows.append(("  read back in BFS batches, fresh backend", size,
                 median_time(repeat, get_synthetic)))  # fmt: skip
    return rows


def print_table(rows: list[tuple[str, int, float]]) -> None:
    baseline = rows[0][2]
    print(f"{'workload':<48} {'objects':>8} {'seconds':>9} {'objects/s':>10} {'vs raw PUTs':>12}")
    print("-" * 91)
    for name, count, seconds in rows:
        rate = f"{count / seconds:,.0f}" if count else "-"
        print(f"{name:<48} {count:>8} {seconds:>9.3f} {rate:>10} {seconds / baseline:>12.3f}")
    commit = next(s for n, _, s in rows if n.endswith("-> S3Backend"))
    synthetic = next(s for n, _, s in rows if n.startswith("synthetic"))
    print()
    print(f"tree commit / {RAW_REQUESTS} raw PUTs: {commit / baseline:.3f} (target <= 0.20); "
          f"synthetic {SYNTHETIC_OBJECTS}-object put: {synthetic / baseline:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
