"""gc, compaction, fsck and repair on S3 (a moto server over HTTP), and the Redis cache.

Old data is written with the writer's clock set back (``s3_clock``): on S3 a
copy's time is the time in its pack's id, taken by the writer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

import enact
import enact.gc
from enact.store import iter_links
from tests.gcsupport import HOUR, dag_object, gc_during_writes, packed, s3_clock, s3_harness

pytest.importorskip("boto3")

from enact.stores import _packs  # noqa: E402
from enact.stores.s3 import S3Backend  # noqa: E402


@pytest.fixture
def open_s3(s3_bucket: str, s3_endpoint: str) -> Any:
    def make(**options: Any) -> S3Backend:
        return S3Backend(s3_bucket, "gc", endpoint_url=s3_endpoint, **options)

    return make


def _keys(client: Any, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", ())]


def _objects(n: int, tag: str, size: int = 100) -> dict[str, bytes]:
    out = {}
    for i in range(n):
        digest, data = dag_object(f"{tag} {i} " + "x" * size)
        out[digest] = data
    return out


class Requests:
    """Counts the HTTP requests of one client."""

    def __init__(self, endpoint: str) -> None:
        import boto3
        from botocore.config import Config

        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )  # fmt: skip
        self.sent: list[str] = []
        self.client.meta.events.register("before-send.s3", lambda request, **_: self.sent.append(
            f"{request.method} {request.url}"))  # fmt: skip


# -- index compaction ------------------------------------------------------------------


def test_compaction_keeps_a_cold_readers_start_up_flat(
    open_s3: Any, s3_client: Any, s3_bucket: str, s3_endpoint: str
) -> None:
    batches = [_objects(5, f"commit {n}") for n in range(40)]
    for batch in batches:
        open_s3().put(batch)
    everything = {d: b for batch in batches for d, b in batch.items()}
    stale = open_s3()
    assert stale.get(list(everything)[:3]) == list(everything.values())[:3]
    assert len(_keys(s3_client, s3_bucket, "gc/v1/index/")) == 40

    counter = Requests(s3_endpoint)
    cold = S3Backend(s3_bucket, "gc", client=counter.client)
    assert all(cold.has(list(everything)))
    before = len(counter.sent)
    assert before == 41  # one LIST, then one GET per index

    report = enact.gc.compact(open_s3())
    assert (report.indexes_before, report.indexes_after) == (40, 1)
    assert len(_keys(s3_client, s3_bucket, "gc/v1/index/")) == 1

    counter.sent.clear()
    cold = S3Backend(s3_bucket, "gc", client=counter.client)
    assert all(cold.has(list(everything)))
    assert len(counter.sent) == 2  # one LIST, one GET, however many commits came before
    assert cold.get(list(everything)) == list(everything.values())
    # A reader that loaded the old indexes reads on, and sees new commits.
    assert stale.get(list(everything)) == list(everything.values())
    late = _objects(3, "late")
    open_s3().put(late)
    assert stale.get(list(late)) == list(late.values())


def test_gc_rewrites_mostly_garbage_packs_and_keeps_the_rest(
    open_s3: Any, s3_client: Any, s3_bucket: str
) -> None:
    all_garbage = _objects(20, "all garbage")
    mostly_garbage = _objects(20, "mostly garbage")
    mostly_live = _objects(20, "mostly live")
    with s3_clock(2 * HOUR):
        for batch in (all_garbage, mostly_garbage, mostly_live):
            open_s3().put(batch)
    live = list(mostly_garbage)[:2] + list(mostly_live)[:18]
    packs_before = set(_keys(s3_client, s3_bucket, "gc/v1/packs/"))
    stale = open_s3()
    assert all(stale.has(live))

    report = enact.gc.collect(open_s3(), live)
    assert report.packs_deleted == 1 and report.packs_rewritten == 1
    assert report.deleted == 40 and report.marked == 20
    assert report.indexes_before == 3 and report.indexes_after == 1
    assert report.bytes_reclaimed > 0
    packs_after = set(_keys(s3_client, s3_bucket, "gc/v1/packs/"))
    assert len(packs_before & packs_after) == 1  # the mostly-live pack stays
    assert len(packs_after - packs_before) == 1  # the two live objects moved

    everything = {**all_garbage, **mostly_garbage, **mostly_live}
    fresh = open_s3()
    assert fresh.has(list(everything)) == [d in live for d in everything]
    assert fresh.get(live) == [everything[d] for d in live]
    # A reader holding the old indexes finds the moved objects where they are now.
    assert stale.get(live) == [everything[d] for d in live]
    # The moved copies kept their age: once unreachable, the next gc takes them.
    assert enact.gc.collect(open_s3()).deleted == 20
    assert _keys(s3_client, s3_bucket, "gc/v1/packs/") == []


def test_many_small_old_packs_are_merged(open_s3: Any, s3_client: Any, s3_bucket: str) -> None:
    batches = [_objects(2, f"small {n}") for n in range(20)]
    with s3_clock(2 * HOUR):
        for batch in batches:
            open_s3().put(batch)
    live = [d for batch in batches for d in batch]
    report = enact.gc.collect(open_s3(), live)
    assert report.deleted == 0 and report.packs_rewritten == 20
    assert len(_keys(s3_client, s3_bucket, "gc/v1/packs/")) == 1
    assert open_s3().get(live) == [b for batch in batches for b in batch.values()]


def test_orphan_packs_go_unless_an_index_is_unreadable(
    open_s3: Any, s3_client: Any, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A writer that died between uploading its pack and its index, two hours ago,
    # and one that is uploading right now.
    old_orphan = f"gc/v1/packs/{_packs.new_id(time.time_ns() - 2 * 3600 * 10**9)}-0.pack"
    young_orphan = f"gc/v1/packs/{_packs.new_id()}-0.pack"
    one_object = _packs.PACK_MAGIC + b"\x93\x01\x90\xc0"  # [1, [], None]
    for key in (old_orphan, young_orphan):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=one_object)
    enact.gc.collect(open_s3())
    assert _keys(s3_client, s3_bucket, "gc/v1/packs/") == [young_orphan]

    # An index turns unreadable: its pack is now an orphan that holds real data.
    with s3_clock(2 * HOUR):
        precious = _objects(5, "precious")
        open_s3().put(precious)
    (index_key,) = _keys(s3_client, s3_bucket, "gc/v1/index/")
    s3_client.put_object(Bucket=s3_bucket, Key=index_key, Body=b"ENACTIX1 damaged")
    with caplog.at_level(logging.WARNING):
        assert open_s3().get(list(precious)) == [None] * 5
    assert index_key in caplog.text
    report = enact.gc.collect(open_s3())
    assert any(index_key in problem for problem in report.problems)
    assert len(_keys(s3_client, s3_bucket, "gc/v1/packs/")) == 2  # nothing deleted
    checked = enact.gc.fsck(open_s3())
    assert not checked.ok and any(index_key in p for p in checked.problems)

    repaired = enact.gc.fsck(open_s3(), repair=True)
    assert any("indexed 5 objects of orphan pack" in line for line in repaired.repaired)
    assert any(f"moved s3://{s3_bucket}/{index_key}" in line for line in repaired.repaired)
    assert open_s3().get(list(precious)) == list(precious.values())
    assert _keys(s3_client, s3_bucket, "gc/v1/quarantine/") == [
        f"gc/v1/quarantine/{index_key.rsplit('/', 1)[-1]}"
    ]
    assert enact.gc.fsck(open_s3()).ok


def test_a_missing_pack_is_contained_and_repaired_by_committing_again(
    open_s3: Any, s3_client: Any, s3_bucket: str
) -> None:
    lost, kept = _objects(5, "lost"), _objects(5, "kept")
    open_s3().put(lost)
    open_s3().put(kept)
    key, _, _ = open_s3().locate(next(iter(lost)))
    s3_client.delete_object(Bucket=s3_bucket, Key=key)
    reader = open_s3()
    assert reader.get(list(kept)) == list(kept.values())
    assert reader.get(list(lost)) == [None] * 5
    assert reader.has(list(lost)) == [False] * 5  # so its own put writes them again
    report = enact.gc.fsck(open_s3())
    assert any("named by an index but missing (5 objects)" in p for p in report.problems)
    enact.gc.fsck(open_s3(), repair=True)
    open_s3().put(lost)  # another process commits them again
    assert open_s3().get(list(lost)) == list(lost.values())
    assert enact.gc.fsck(open_s3()).ok


def test_legacy_loose_objects_are_collected_or_adopted(
    open_s3: Any, s3_client: Any, s3_bucket: str
) -> None:
    live, dead = dag_object("loose live"), dag_object("loose dead")
    for digest, data in (live, dead):
        key = f"gc/v1/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=data)
    assert open_s3().has([live[0]]) == [False]  # not indexed: only get finds it
    time.sleep(1.1)  # S3 times have a resolution of one second
    enact.gc.collect(open_s3(), [live[0]], grace_s=0, offline=True)
    assert _keys(s3_client, s3_bucket, "gc/v1/sha256/") == [
        f"gc/v1/sha256/{live[0][:2]}/{live[0][2:4]}/{live[0]}"
    ]
    assert open_s3().has([live[0], dead[0]]) == [True, False]  # now indexed
    assert open_s3().get([live[0]]) == [live[1]]


# -- writers running during gc ------------------------------------------------------------

def test_writers_running_during_gc_lose_nothing(
    s3_bucket: str, s3_endpoint: str, s3_client: Any, s3_env: dict[str, str], tmp_path: Path
) -> None:
    harness = s3_harness(s3_bucket, "gc", s3_endpoint, s3_client, s3_env)
    garbage = [packed({"garbage": i}) for i in range(300)]
    leaves = [packed({"leaf": i}) for i in range(200)]
    live = packed({"live": [enact.Ref(d) for d, _ in leaves]})
    for start in range(0, 500, 50):  # written two hours ago, in ten commits
        harness.write(dict((garbage + leaves)[start : start + 50]), 2 * HOUR)
    harness.write(dict([live]), 2 * HOUR)
    enact.gc.pin(harness.open(), live[0], "live")

    committed, reports = gc_during_writes(harness, 150, tmp_path, rounds=3, records=5)
    assert reports[0].deleted > 0 and len(committed) >= 15
    fresh = enact.Store(harness.open())
    reached = set(iter_links(fresh, committed + [live[0]]))  # reads and verifies all
    with fresh:
        for digest in committed[::7]:
            record = fresh.checkout(digest)
            assert all(set(ref()) == {"garbage"} for ref in record["again"])
    recommitted = {d for d, _ in garbage} & reached
    untouched = [d for d, _ in garbage if d not in reached]
    assert recommitted and untouched
    final = enact.gc.collect(harness.open())
    assert final.damaged == {}
    assert harness.open().has(untouched) == [False] * len(untouched)


# -- the shared Redis cache in front of S3 --------------------------------------------------


@pytest.fixture
def cached(open_s3: Any, redis_url: str, redis_prefix: str) -> Any:
    from enact.stores._keys import RedisKeys
    from enact.stores.cached import CachedBackend
    from enact.stores.redis import make_client

    client = make_client(redis_url, decode_responses=False)

    def make() -> CachedBackend:
        return CachedBackend(open_s3(), client, RedisKeys(redis_prefix))

    return make


def test_a_damaged_cache_entry_is_dropped_and_read_from_s3(
    cached: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend = cached()
    with enact.Store(backend):
        ref = enact.commit({"cached": True})
    key = backend.keys.object(ref.digest)
    good = backend.client.get(key)
    backend.client.set(key, good[:-1] + b"!")
    with caplog.at_level(logging.WARNING), enact.Store(cached()) as store:
        assert store.checkout(ref) == {"cached": True}
    assert "fail their digest" in caplog.text
    assert backend.client.get(key) == good  # refilled from S3


def test_fsck_sees_through_the_cache_and_repairs_s3_from_it(
    cached: Any, open_s3: Any, s3_client: Any, s3_bucket: str
) -> None:
    backend = cached()
    with enact.Store(backend):
        ref = enact.commit({"precious": list(range(10))})
    data = open_s3().get([ref.digest])[0]
    key, offset, length = open_s3().locate(ref.digest)
    pack = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    s3_client.put_object(
        Bucket=s3_bucket, Key=key, Body=pack[:offset] + b"?" * length + pack[offset + length :]
    )
    with enact.Store(cached()) as store:  # the cache hides the damage from readers...
        assert store.checkout(ref) == {"precious": list(range(10))}
    report = enact.gc.fsck(cached())  # ...but not from fsck
    assert list(report.damaged) == [ref.digest]
    repaired = enact.gc.fsck(cached(), repair=True)
    assert repaired.restored == [ref.digest] and repaired.lost == []
    assert open_s3().get([ref.digest]) == [data]  # S3 itself holds a good copy again
    assert enact.gc.fsck(open_s3()).ok


def test_gc_through_a_cached_store(cached: Any, open_s3: Any) -> None:
    with s3_clock(2 * HOUR), enact.Store(cached()):
        garbage = enact.commit({"garbage": 1})
        kept = enact.commit({"kept": 1})
    report = enact.gc.collect(enact.Store(cached()), [kept])
    assert report.deleted == 1
    assert open_s3().has([garbage.digest, kept.digest]) == [False, True]


def test_enact_gc_and_fsck_commands_on_s3(
    open_s3: Any, s3_bucket: str, s3_env: dict[str, str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from enact.cli import main

    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    with s3_clock(2 * HOUR):
        open_s3().put(_objects(10, "garbage"))
        kept = _objects(1, "kept")
        open_s3().put(kept)
    url = f"s3://{s3_bucket}/gc"
    assert main(["pin", next(iter(kept)), "--name", "kept", "--store", url]) == 0
    assert main(["gc", "--store", url, "--no-redis", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete 10 objects" in out and "indexes 2 -> 1" in out
    assert main(["gc", "--store", url, "--no-redis"]) == 0
    assert "deleted     10 objects" in capsys.readouterr().out
    assert main(["fsck", "--store", url]) == 0
    assert "no damage found" in capsys.readouterr().out
    assert open_s3().has(list(kept)) == [True]
