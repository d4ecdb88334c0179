"""gc on the Redis object store: object times on the server's clock, atomic sweeps."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import enact
import enact.gc
from tests.gcsupport import HOUR, dag_object

pytest.importorskip("redis")

from enact.stores.redis import RedisBackend  # noqa: E402


@pytest.fixture
def open_redis(redis_url: str, redis_prefix: str) -> Any:
    return lambda: RedisBackend.from_url(f"{redis_url}?prefix={redis_prefix}")


def test_objects_without_a_time_are_kept_one_grace_period(open_redis: Any) -> None:
    backend = open_redis()
    digest, data = dag_object("written by enact 0.4")
    backend.client.set(backend.keys.object(digest), data)  # no time recorded
    dry = enact.gc.collect(open_redis(), dry_run=True)
    assert dry.young == 1 and dry.deleted == 0
    assert backend.client.zscore(backend.keys.object_times(), digest) is None  # untouched
    report = enact.gc.collect(open_redis())
    assert report.deleted == 0
    stamp = backend.client.zscore(backend.keys.object_times(), digest)
    assert abs(stamp - backend.server_time()) < 60
    backend.client.zadd(backend.keys.object_times(), {digest: stamp - 2 * HOUR})
    assert enact.gc.collect(open_redis()).deleted == 1
    assert backend.has([digest]) == [False]


def test_a_time_left_without_its_object_is_removed(open_redis: Any) -> None:
    backend = open_redis()
    digest, data = dag_object("evicted")
    backend.put({digest: data})
    backend.client.delete(backend.keys.object(digest))
    backend.client.zadd(backend.keys.object_times(), {digest: 1.0})
    enact.gc.collect(open_redis())
    assert backend.client.zscore(backend.keys.object_times(), digest) is None


def test_a_damaged_object_is_quarantined_for_a_week(open_redis: Any) -> None:
    with enact.Store(open_redis()):
        ref = enact.commit("value")
    backend = open_redis()
    backend.client.set(backend.keys.object(ref.digest), b"garbled")
    with pytest.raises(enact.RefError, match="moved aside"), enact.Store(open_redis()) as store:
        store.checkout(ref)
    quarantined = backend.keys.quarantine(ref.digest)
    assert backend.client.get(quarantined) == b"garbled"
    assert 6 * 86400 < backend.client.ttl(quarantined) <= 7 * 86400
    assert backend.has([ref.digest]) == [False]
    assert enact.gc.fsck(open_redis()).ok


def test_writer_threads_during_gc_lose_nothing(open_redis: Any) -> None:
    backend = open_redis()
    old = dict(dag_object(f"old {i}") for i in range(2000))
    backend.put(old)
    stamp = backend.server_time() - 2 * HOUR
    backend.client.zadd(backend.keys.object_times(), {d: stamp for d in old})
    olds = list(old.items())
    written: list[dict[str, bytes]] = []
    stop = threading.Event()

    def write(offset: int) -> None:
        writer = open_redis()
        n = offset
        while not stop.is_set():
            batch = dict(olds[n % 1000 : n % 1000 + 20])  # old objects committed again
            record = dag_object(f"record {offset} {n}", list(batch))
            batch[record[0]] = record[1]
            writer.put(batch)
            written.append(batch)
            n += 20

    threads = [threading.Thread(target=write, args=(i * 100,)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        reports = [enact.gc.collect(open_redis()) for _ in range(5)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert sum(r.deleted for r in reports) > 0 and written
    everything = {d: b for batch in written for d, b in batch.items()}
    assert open_redis().get(list(everything)) == list(everything.values())
    never_written_again = [d for d, _ in olds[1100:]]
    assert open_redis().has(never_written_again) == [False] * len(never_written_again)
