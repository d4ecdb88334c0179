"""The recorded-call tree (enact/tree.py): rows, the node cache, loading, walk."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import flows
import msgpack
import pytest

import enact
from enact import tree
from enact.records import Invocation, Request, Response
from enact.serialization import pack_value


@pytest.fixture
def store() -> Iterator[enact.Store]:
    with enact.InMemoryStore() as s:
        flows.CALLS.clear()
        yield s


def test_build_packs_the_records_the_generic_encoder_would(store: enact.Store) -> None:
    inv = enact.invoke(flows.calls_fail, ("x",), wrap_exceptions=True)
    for _, node in tree.walk(store, inv.digest):
        request = Request(enact.Ref(node.invokable_digest), enact.Ref(node.input_digest))
        response = Response(
            enact.Ref(node.post_invokable_digest),
            None if node.output_digest is None else enact.Ref(node.output_digest),
            None if node.raised_digest is None else enact.Ref(node.raised_digest),
            node.raised_here,
            [enact.Ref(c) for c in node.children],
        )
        invocation = Invocation(enact.Ref(node.request_digest), enact.Ref(node.response_digest))
        for record, digest in [
            (request, node.request_digest),
            (response, node.response_digest),
            (invocation, node.digest),
        ]:
            data = pack_value(record)[0]
            assert store.get_object(digest) == data


def test_rows_carry_named_fields_and_a_version(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    node = tree.load(store, inv.digest)
    output = store.get_object(node.output_digest)  # type: ignore[arg-type]
    row = tree.to_row(node, output)
    assert row["v"] == tree.ROW_VERSION == 1
    assert row["digest"] == node.digest and row["children"] == list(node.children)
    wire = msgpack.unpackb(msgpack.packb(row))  # as it travels between workers
    back, value = tree.from_row(wire)
    assert value == output
    assert [getattr(back, s) for s in tree.Node.__slots__] == [
        getattr(node, s) for s in tree.Node.__slots__
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"v": 2}, "version 2, but this process reads version 1"),
        ({"v": None}, "version None"),
        ({"post": KeyError}, "lacks field 'post'"),
        ({"input": "../../etc"}, "input must be a digest"),
        ({"raised_here": 1}, "raised_here must be true or false"),
        ({"value": b"not the output"}, "value does not match its digest"),
    ],
)
def test_rows_from_another_release_fail_clearly(
    store: enact.Store, change: dict[str, Any], message: str
) -> None:
    row = tree.to_row(tree.load(store, enact.invoke(flows.roll_die, (6,)).digest))
    for key, value in change.items():
        if value is KeyError:
            del row[key]
        else:
            row[key] = value
    with pytest.raises(enact.DeserializationError, match=message):
        tree.from_row(row)
    with pytest.raises(enact.DeserializationError, match="must be a map"):
        tree.from_row([1, 2])  # type: ignore[arg-type]


def test_walk_visits_in_execution_order_and_can_prune_and_reverse(store: enact.Store) -> None:
    inv = enact.invoke(flows.outer, (1,))
    paths = [p for p, _ in tree.walk(store, inv.digest)]
    assert paths == [(), (0,), (0, 0), (0, 1), (1,), (1, 0), (1, 1)]
    pruned = [p for p, _ in tree.walk(store, inv.digest, enter=lambda p, n: p != (0,))]
    assert pruned == [(), (0,), (1,), (1, 0), (1, 1)]
    backwards = [p for p, _ in tree.walk(store, inv.digest, from_end=True)]
    assert backwards == [(), (1,), (1, 1), (1, 0), (0,), (0, 1), (0, 0)]
    assert tree.leaf_paths(store, inv.digest) == [(0, 0), (0, 1), (1, 0), (1, 1)]


class CountingBackend:
    """A memory backend that counts the objects each ``get`` asks for."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.gets: list[int] = []

    def has(self, digests: Sequence[str]) -> list[bool]:
        return [d in self.objects for d in digests]

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        self.gets.append(len(digests))
        return [self.objects.get(d) for d in digests]

    def put(self, objects: Mapping[str, bytes]) -> None:
        self.objects.update(objects)


def test_a_walk_stopped_early_reads_nothing_more(store: enact.Store) -> None:
    backend = CountingBackend()
    with enact.Store(backend, cache_bytes=0):
        inv = enact.invoke(flows.roll_sum, (50,))
    fresh = enact.Store(backend, cache_bytes=0)  # nothing cached: as another process
    walk = tree.walk(fresh, inv.digest)
    next(walk), next(walk)
    assert sum(backend.gets) == 6  # two nodes, three records each


def store_of(backend: CountingBackend) -> enact.Store:
    """A store on ``backend`` that does not count its reads."""
    copy = CountingBackend()
    copy.objects = backend.objects
    return enact.Store(copy)


def test_prefetch_loads_a_level_in_two_batched_reads(store: enact.Store) -> None:
    backend = CountingBackend()
    with enact.Store(backend, cache_bytes=0):
        inv = enact.invoke(flows.roll_sum, (40,))
    fresh = enact.Store(backend, cache_bytes=0)
    tree.prefetch_children(fresh, inv.digest)
    distinct = len(set(tree.load(store_of(backend), inv.digest).children))  # equal rolls are one
    assert distinct > 3
    # The root (its invocation, then its two records), then each level in one batch.
    assert backend.gets == [1, 2, distinct, 2 * distinct]
    backend.gets.clear()
    for child in tree.load(fresh, inv.digest).children:
        tree.load(fresh, child)
    assert backend.gets == []  # every child's node came from the cache


def test_the_node_cache_is_bounded_and_drops_its_older_half() -> None:
    cache = tree.NodeCache(limit=10)
    nodes = [
        tree.Node(f"{i:064x}", "", "", "", "", "", None, None, False, ()) for i in range(25)
    ]
    for node in nodes:
        cache.put(node)
        assert len(cache) <= 10
    assert cache.get(nodes[-1].digest) is nodes[-1]
    assert cache.get(nodes[0].digest) is None


def test_each_store_has_its_own_node_cache(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_die, (6,))
    assert tree.cache_stats(store) == {"nodes": 1, "limit": tree.NODE_CACHE_SIZE}
    assert tree.cache_stats(enact.InMemoryStore())["nodes"] == 0
    assert tree.cache_for(store).get(inv.digest) is not None


def test_a_node_lists_its_state(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    node = tree.load(store, inv.digest)
    assert repr(node).startswith(f"<Node {inv.digest[:12]}: output ")
    assert repr(node).endswith("2 children>")
    assert repr(tree.load(store, inv.rewind(1).digest)).endswith("incomplete, 1 children>")
    assert node.invocation() == inv and node.invocation().digest == inv.digest
