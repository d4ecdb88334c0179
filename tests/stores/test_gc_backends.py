"""gc, fsck and pins on every collectable backend: file, Redis and S3 (moto over HTTP).

Objects are written "some time ago" the way each backend records time (see
``tests/gcsupport.py``), and gc runs with its default grace (an hour).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import enact
import enact.gc
from enact.errors import ConflictError, GcError, ObjectCorrupt, ObjectMissing
from tests.gcsupport import HOUR, Harness, dag_object, make_harness, stored

KINDS = ["file", "redis", "s3"]


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return make_harness(request, request.param, tmp_path)


def _chain(n: int, tag: str) -> list[tuple[str, bytes]]:
    """Objects o0 <- o1 <- ... (each links the one before)."""
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        out.append(dag_object(f"{tag}{i}", [out[-1][0]] if out else []))
    return out


# -- the property: nothing reachable is deleted, everything else old is ----------------


Dag = tuple[list[list[int]], list[bool], list[int]]


@st.composite
def dags(draw: Any) -> Dag:
    """A random DAG (each node links some earlier ones), ages, and roots."""
    n = draw(st.integers(1, 24))
    links = [
        sorted(draw(st.sets(st.integers(0, max(i - 1, 0)), max_size=min(i, 3)))) for i in range(n)
    ]
    old = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    roots = sorted(draw(st.sets(st.integers(0, n - 1), max_size=4)))
    return links, old, roots


def _check_gc_property(harness: Harness, dag: Dag) -> None:
    links, old, root_ids = dag
    objects: list[tuple[str, bytes]] = []
    for i, targets in enumerate(links):
        objects.append(dag_object(f"node {i} {id(dag)}", [objects[j][0] for j in targets]))
    # Write old and young objects in a few separate puts (so S3 gets several packs).
    for i in range(0, len(objects), 5):
        batch = list(enumerate(objects))[i : i + 5]
        olds = {d: b for j, (d, b) in batch if old[j]}
        youngs = {d: b for j, (d, b) in batch if not old[j]}
        if olds:
            harness.write(olds, 2 * HOUR)
        if youngs:
            harness.write(youngs, 0)
    roots = [objects[i][0] for i in root_ids]
    report = enact.gc.collect(harness.open(), roots)

    live: set[int] = set()
    frontier = list(root_ids) + [i for i in range(len(objects)) if not old[i]]
    while frontier:
        i = frontier.pop()
        if i not in live:
            live.add(i)
            frontier += links[i]
    digests = [d for d, _ in objects]
    expected = [i in live for i in range(len(objects))]
    assert stored(harness, digests) == expected
    kept = [d for i, d in enumerate(digests) if i in live]
    assert harness.open().get(kept) == [objects[i][1] for i in sorted(live)]
    assert report.deleted == len(objects) - len(live)
    assert report.marked == len(live)


@pytest.mark.parametrize("kind", KINDS)
def test_gc_deletes_exactly_the_unreachable_old_objects(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    base = make_harness(request, kind, tmp_path)
    examples = 12 if kind == "s3" else 40

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(dags())
    def check(dag: Dag) -> None:
        _check_gc_property(base.sub(), dag)

    check()


# -- dry runs, youth, pins, roots ---------------------------------------------------------


def test_a_dry_run_deletes_nothing(harness: Harness) -> None:
    garbage = dict(_chain(5, "garbage"))
    harness.write(garbage, 2 * HOUR)
    report = enact.gc.collect(harness.open(), dry_run=True)
    assert report.dry_run and report.deleted == 5 and report.bytes_reclaimed > 0
    assert stored(harness, list(garbage)) == [True] * 5
    assert "would delete 5 objects" in report.summary()
    real = enact.gc.collect(harness.open())
    assert real.deleted == 5
    assert stored(harness, list(garbage)) == [False] * 5


def test_young_objects_keep_what_they_link(harness: Harness) -> None:
    old = _chain(3, "old")
    young = dag_object("young", [old[-1][0]])
    harness.write(dict(old), 2 * HOUR)
    harness.write(dict([young]), 0)
    report = enact.gc.collect(harness.open())
    assert report.deleted == 0 and report.young == 1
    assert stored(harness, [d for d, _ in old] + [young[0]]) == [True] * 4


def test_pins_are_roots_until_removed(harness: Harness) -> None:
    kept, dropped = _chain(3, "kept"), _chain(3, "dropped")
    harness.write(dict(kept + dropped), 2 * HOUR)
    backend = harness.open()
    assert enact.gc.pin(backend, kept[-1][0], "results") == "results"
    assert enact.gc.pins(harness.open()) == {"results": kept[-1][0]}
    enact.gc.collect(harness.open())
    assert stored(harness, [d for d, _ in kept + dropped]) == [True] * 3 + [False] * 3
    assert enact.gc.unpin(harness.open(), kept[-1][0]) == ["results"]  # by digest
    enact.gc.collect(harness.open())
    assert stored(harness, [d for d, _ in kept]) == [False] * 3


def test_pinning_needs_the_object_and_a_valid_name(harness: Harness) -> None:
    digest, data = dag_object("x")
    with pytest.raises(ObjectMissing, match="cannot pin"):
        enact.gc.pin(harness.open(), digest)
    harness.write({digest: data}, 0)
    with pytest.raises(ValueError, match="invalid pin name"):
        enact.gc.pin(harness.open(), digest, "no/slashes")
    with pytest.raises(ValueError, match="digest"):
        enact.gc.pin(harness.open(), "not-a-digest")
    assert enact.gc.pin(harness.open(), digest) == digest


def test_roots_of_every_kind_and_missing_roots(harness: Harness) -> None:
    a, b, c = _chain(1, "a"), _chain(1, "b"), _chain(1, "c")
    harness.write(dict(a + b + c), 2 * HOUR)
    never_written = dag_object("never written")[0]

    class Source:
        def gc_roots(self) -> Any:
            return [(b[0][0], "ref b"), (never_written, "flow x head")]

    report = enact.gc.collect(harness.open(), [a[0][0], Source()])
    assert stored(harness, [a[0][0], b[0][0], c[0][0]]) == [True, True, False]
    assert report.missing_roots == [(never_written, "flow x head")]


def test_roots_set_while_the_mark_runs_are_kept(harness: Harness) -> None:
    late = _chain(2, "late")
    harness.write(dict(late), 2 * HOUR)
    calls = []

    class Source:  # a ref that is set after gc first read the roots
        def gc_roots(self) -> Any:
            calls.append(1)
            return [] if len(calls) == 1 else [(late[-1][0], "ref set late")]

    enact.gc.collect(harness.open(), [Source()])
    assert len(calls) == 2
    assert stored(harness, [d for d, _ in late]) == [True, True]


def test_a_damaged_reachable_object_stops_gc(harness: Harness) -> None:
    chain, garbage = _chain(3, "chain"), _chain(2, "garbage")
    harness.write(dict(chain + garbage), 2 * HOUR)
    middle, data = chain[1]
    harness.damage(middle, bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(GcError, match=middle):
        enact.gc.collect(harness.open(), [chain[-1][0]])
    assert stored(harness, [d for d, _ in garbage]) == [True, True]  # nothing deleted
    report = enact.gc.collect(harness.open(), [chain[-1][0]], allow_damaged=True)
    assert middle in report.damaged
    assert stored(harness, [d for d, _ in garbage]) == [False, False]


def test_a_grace_below_the_minimum_needs_offline(harness: Harness) -> None:
    garbage = dict(_chain(2, "g"))
    harness.write(garbage, 60)
    with pytest.raises(GcError, match="offline"):
        enact.gc.collect(harness.open(), grace_s=30)
    assert stored(harness, list(garbage)) == [True, True]
    report = enact.gc.collect(harness.open(), grace_s=30, offline=True)
    assert report.deleted == 2


def test_one_gc_at_a_time(harness: Harness) -> None:
    other = harness.open()
    other.lock_maintenance("another gc", 600)
    with pytest.raises(ConflictError, match="another gc"):
        enact.gc.collect(harness.open())
    enact.gc.collect(harness.open(), dry_run=True)  # a dry run takes no lock
    other.unlock_maintenance("another gc")
    other.lock_maintenance("a crashed gc", 1.0)
    time.sleep(1.2)
    enact.gc.collect(harness.open())  # an expired lock is broken
    enact.gc.collect(harness.open())  # and released after each gc


# -- a writer racing the sweep ---------------------------------------------------------


def test_a_writer_racing_the_sweep_loses_nothing(harness: Harness) -> None:
    """The plan condemns X; a writer then commits X again and a record linking it;
    the sweep runs: X survives."""
    x, other = dag_object("x"), dag_object("other")
    harness.write(dict([x, other]), 2 * HOUR)
    backend = harness.open()
    clock = getattr(backend, "server_time", time.time)
    inventory = backend.inventory(clock() - HOUR)
    plan = inventory.plan(set())
    assert plan.delete_objects == 2
    record = dag_object("record", [x[0]])
    harness.open().put(dict([x, record]))  # another process commits again, meanwhile
    inventory.sweep(plan)
    fresh = harness.open()
    assert fresh.get([x[0], record[0]]) == [x[1], record[1]]
    assert fresh.has([other[0]]) == [False]


# -- corruption: contained, and repaired by committing again or by fsck --------------------


def test_fsck_reports_damage_and_repair_makes_recommit_work(harness: Harness) -> None:
    chain = _chain(3, "c")
    harness.write(dict(chain), 0)
    victim, data = chain[1]
    harness.damage(victim, bytes([data[0] ^ 1]) + data[1:])
    report = enact.gc.fsck(harness.open())
    assert not report.ok
    assert list(report.damaged) == [victim] and report.lost == [victim]
    assert victim in report.summary()
    repaired = enact.gc.fsck(harness.open(), repair=True)
    assert repaired.repaired and repaired.lost == [victim]
    # The damaged copy is out of the way everywhere: every process sees it missing...
    assert stored(harness, [victim]) == [False]
    after = enact.gc.fsck(harness.open())
    assert after.dangling == {victim: chain[2][0]} and not after.damaged
    # ...so committing it again from any process writes a good copy.
    harness.open().put({victim: data})
    assert harness.open().get([victim]) == [data]
    assert enact.gc.fsck(harness.open()).ok


def test_an_old_damaged_copy_is_repaired_by_committing_again(harness: Harness) -> None:
    """No fsck needed: a writer never trusts a copy older than the reuse horizon."""
    digest, data = dag_object("rotting")
    harness.write({digest: data}, 2 * HOUR)
    harness.damage(digest, bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(ObjectCorrupt), enact.Store(harness.open()) as reader:
        reader.get_object(digest)
    with enact.Store(harness.open()) as writer:  # another process, which never read it
        writer.put_objects({digest: data})
    with enact.Store(harness.open()) as reader:
        assert reader.get_object(digest) == data


def test_a_damaged_copy_found_by_a_read_is_repaired_by_committing_again(harness: Harness) -> None:
    with enact.Store(harness.open()) as store:
        ref = enact.commit({"value": 42})
    data = harness.open().get([ref.digest])[0]
    harness.damage(ref.digest, data[:-1] + bytes([data[-1] ^ 1]))
    store = enact.Store(harness.open())
    with store, pytest.raises(ObjectCorrupt, match="commit"):
        store.checkout(ref)
    with store:
        assert enact.commit({"value": 42}) == ref
    with enact.Store(harness.open()) as fresh:
        assert fresh.checkout(ref) == {"value": 42}
