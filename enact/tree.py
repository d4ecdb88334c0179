"""The recorded-call tree: one in-memory shape, one stored shape, one wire shape.

A recorded call is

* in memory, a ``Node``: the digests of its records and of what they point to,
  never values, immutable;
* in the store, three packed records: ``Request{invokable, input}``,
  ``Response{invokable, output, raised, raised_here, children}`` and
  ``Invocation{request, response}`` (``enact.records``), built here by template;
* on the wire between workers, a *row*: a msgpack map with named fields and a
  version (``to_row`` / ``from_row``).

This module owns all three, the bounded per-store node cache, the loading of nodes
from records, the record surgery behind rewind and input answers, the checkpoint
record of a running call, and the one ``walk`` that replay, input requests and
printing share. The call engine (``enact.calls``) records nodes as calls run; it
never packs a record itself.

Invariants: a node in a store's cache has its records in that store (written, or
staged in a run that writes them before anyone else can see the node's digest);
``build`` is the only place a response or invocation record is packed; the record
format is pinned by tests against the generic encoder and by the fixture store of
``tests/fixtures/store-v1``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Iterator, Mapping, Sequence

from msgpack import ExtType

from enact.context import active_store
from enact.digests import digest_bytes, is_digest
from enact.errors import DeserializationError
from enact.records import Checkpoint, Invocation, Request, Response, expect_record
from enact.registry import shown
from enact.serialization import EXT_REF, EXT_RESOURCE, pack_encoded, unpack_value
from enact.store import Store

Path = tuple[int, ...]

# The node cache of one store holds at most this many nodes (a node is about 500
# bytes, so about 10 MB); when full, the older half goes.
NODE_CACHE_SIZE = 20_000
# Memo of request records by (invokable, input) digests, cleared when full.
MEMO_LIMIT = 10_000


class Node:
    """A recorded call, by digests. Never mutated once built."""

    __slots__ = (
        "digest",
        "request_digest",
        "response_digest",
        "invokable_digest",
        "input_digest",
        "post_invokable_digest",
        "output_digest",
        "raised_digest",
        "raised_here",
        "children",
        "unstored",
    )

    def __init__(
        self,
        digest: str,
        request_digest: str,
        response_digest: str,
        invokable_digest: str,
        input_digest: str,
        post_invokable_digest: str,
        output_digest: str | None,
        raised_digest: str | None,
        raised_here: bool,
        children: tuple[str, ...],
        unstored: bool = False,
    ) -> None:
        self.digest = digest
        self.request_digest = request_digest
        self.response_digest = response_digest
        self.invokable_digest = invokable_digest
        self.input_digest = input_digest
        self.post_invokable_digest = post_invokable_digest
        self.output_digest = output_digest
        self.raised_digest = raised_digest
        self.raised_here = raised_here
        self.children = children
        # Its response and invocation records may not be in the store: the node of
        # a checkpoint (see ``load``). ``invocation`` packs and stages them.
        self.unstored = unstored

    @property
    def complete(self) -> bool:
        """The call returned or raised (it was not rewound or interrupted)."""
        return self.output_digest is not None or self.raised_digest is not None

    def invocation(self, store: Store | None = None) -> Invocation:
        """The ``Invocation`` record of this call (its digest already known); its refs
        remember ``store`` if one is given, so it keeps working outside ``with store:``.

        The node of a checkpoint (``load``) stands for records the store may not
        hold: they are packed again and staged in ``store`` (or the active store),
        so the invocation can be read at once, and written with that store's next
        write.
        """
        if self.unstored:
            target = store if store is not None else active_store()
            if target is not None:
                objects: dict[str, bytes] = {}
                incomplete(objects, self, self.children)
                target.stage(objects)
        return Invocation.known(self.request_digest, self.response_digest, self.digest, store)

    def __repr__(self) -> str:
        state = (
            "incomplete"
            if not self.complete
            else f"output {self.output_digest[:12]}"
            if self.output_digest is not None
            else f"raised {self.raised_digest[:12]}"  # type: ignore[index]
        )
        return f"<Node {self.digest[:12]}: {state}, {len(self.children)} children>"


# The stored shape: packed records -----------------------------------------------

_REQUEST_MARKER = ExtType(EXT_RESOURCE, Request.type_id().encode())
_RESPONSE_MARKER = ExtType(EXT_RESOURCE, Response.type_id().encode())
_INVOCATION_MARKER = ExtType(EXT_RESOURCE, Invocation.type_id().encode())

_tuple_new = tuple.__new__
_fromhex = bytes.fromhex


def _ext(digest: str) -> ExtType:
    # ExtType.__new__ validates in Python; our codes and data are known good.
    return _tuple_new(ExtType, (EXT_REF, _fromhex(digest)))


def _invocation_template() -> tuple[bytes, ...]:
    """Byte segments of a packed Invocation, split where the digests go.

    An Invocation always has the same shape, so packing one is a join of fixed
    segments and four raw digests (two sorted links, then request, response).
    A unit test pins the result to what the generic encoder produces.
    """
    a, b = "aa" * 32, "bb" * 32
    body = [_INVOCATION_MARKER, {"request": _ext(a), "response": _ext(b)}]
    data = pack_encoded(body, [a, b])
    raw_a, raw_b = _fromhex(a), _fromhex(b)
    segments = []
    rest = data
    for raw in (raw_a, raw_b, raw_a, raw_b):
        head, _, rest = rest.partition(raw)
        segments.append(head)
    segments.append(rest)
    return tuple(segments)


_INV_SEGMENTS = _invocation_template()


def pack_invocation(request_digest: str, response_digest: str) -> bytes:
    """The packed Invocation record for a request and a response digest."""
    s0, s1, s2, s3, s4 = _INV_SEGMENTS
    req, resp = _fromhex(request_digest), _fromhex(response_digest)
    low, high = (req, resp) if req < resp else (resp, req)
    return b"".join((s0, low, s1, high, s2, req, s3, resp, s4))


_request_memo: dict[tuple[str, str], tuple[str, bytes]] = {}


def request_object(invokable_digest: str, input_digest: str) -> tuple[str, bytes]:
    """Digest and packed bytes of the ``Request`` record of a call (memoized)."""
    key = (invokable_digest, input_digest)
    hit = _request_memo.get(key)
    if hit is None:
        body = [_REQUEST_MARKER, {"input": _ext(input_digest), "invokable": _ext(invokable_digest)}]
        data = pack_encoded(body, {invokable_digest, input_digest})
        if len(_request_memo) >= MEMO_LIMIT:
            _request_memo.clear()
        hit = _request_memo[key] = (digest_bytes(data), data)
    return hit


def build(
    objects: dict[str, bytes],
    request_digest: str,
    invokable_digest: str,
    input_digest: str,
    post_invokable_digest: str,
    output_digest: str | None,
    raised_digest: str | None,
    raised_here: bool,
    children: Sequence[str],
) -> Node:
    """Pack the response and invocation records of a call into ``objects``; its node.

    The request record (``request_object``) and the values the records point to
    are the caller's to add.
    """
    links = set(children)
    links.add(post_invokable_digest)
    if output_digest is not None:
        links.add(output_digest)
    if raised_digest is not None:
        links.add(raised_digest)
    body = [
        _RESPONSE_MARKER,
        {
            "children": [_ext(c) for c in children],
            "invokable": _ext(post_invokable_digest),
            "output": None if output_digest is None else _ext(output_digest),
            "raised": None if raised_digest is None else _ext(raised_digest),
            "raised_here": raised_here,
        },
    ]
    data = pack_encoded(body, links)
    response_digest = digest_bytes(data)
    objects[response_digest] = data
    data = pack_invocation(request_digest, response_digest)
    digest = digest_bytes(data)
    objects[digest] = data
    return Node(
        digest,
        request_digest,
        response_digest,
        invokable_digest,
        input_digest,
        post_invokable_digest,
        output_digest,
        raised_digest,
        raised_here,
        tuple(children),
    )


def incomplete(objects: dict[str, bytes], node: Node, children: Sequence[str]) -> Node:
    """An incomplete copy of ``node`` (no output, no exception) with ``children``."""
    return build(
        objects,
        node.request_digest,
        node.invokable_digest,
        node.input_digest,
        node.invokable_digest,
        None,
        None,
        False,
        children,
    )


def answered(objects: dict[str, bytes], node: Node, output_digest: str) -> Node:
    """A copy of ``node`` that returned ``output_digest`` (an answered input request)."""
    return build(
        objects,
        node.request_digest,
        node.invokable_digest,
        node.input_digest,
        node.post_invokable_digest,
        output_digest,
        None,
        False,
        node.children,
    )


# Checkpoints: a journal ---------------------------------------------------------------


# Every SEGMENT_STEPS-th checkpoint entry links a segment (``Checkpoint.skip``), so
# loading a checkpoint reads at most SEGMENT_STEPS entries, then one segment per
# SEGMENT_STEPS steps; a segment costs about one child digest per step.
SEGMENT_STEPS = 32


class Journal:
    """The last checkpoint of a running call, in memory: enough to write the next.

    ``digest`` is what to resume from (a ``Checkpoint`` entry, or the ``Invocation``
    record the run continues); ``length`` is how many children it records. The
    rest is for the next segment: ``steps`` entries written since the last one,
    which stands on ``segment`` (a digest, or ``None`` before the first child) of
    ``segment_length`` children; since then the children kept never went below
    ``low``, and ``tail`` is the children from ``low`` on.
    """

    __slots__ = ("digest", "length", "steps", "segment", "segment_length", "low", "tail")

    def __init__(self, digest: str, length: int) -> None:
        self.digest = digest
        self.length = length
        self.steps = 0
        self.segment: str | None = digest
        self.segment_length = length
        self.low = length
        self.tail: list[str] = []

    def __repr__(self) -> str:
        return f"<Journal {self.digest[:12]}: {self.length} children>"


_CHECKPOINT_MARKER = ExtType(EXT_RESOURCE, Checkpoint.type_id().encode())


def _entry(
    objects: dict[str, bytes],
    previous: str | None,
    request_digest: str,
    dropped: int,
    added: Sequence[str],
    skip: str | None,
) -> str:
    links = set(added)
    links.add(request_digest)
    if previous is not None:
        links.add(previous)
    if skip is not None:
        links.add(skip)
    body = [
        _CHECKPOINT_MARKER,
        {
            "added": [_ext(c) for c in added],
            "dropped": dropped,
            "previous": None if previous is None else _ext(previous),
            "request": _ext(request_digest),
            "skip": None if skip is None else _ext(skip),
        },
    ]
    data = pack_encoded(body, links)
    digest = digest_bytes(data)
    objects[digest] = data
    return digest


def checkpoint(
    objects: dict[str, bytes],
    previous: Journal | None,
    request_digest: str,
    kept: int,
    added: Sequence[str],
) -> Journal:
    """Record that a running call's children are ``previous``'s first ``kept`` ones,
    then ``added``; returns the checkpoint to resume from (its entry in ``objects``).

    The entry is a ``Checkpoint`` record of constant size beyond the digests in
    ``added`` (it stores how many children are dropped, zero unless slots were
    given back): a checkpoint never rewrites the children recorded before it, so a
    flow of n steps, checkpointed after each, writes O(n) bytes in all. Every
    ``SEGMENT_STEPS``-th entry also links a segment holding the children of the
    last ``SEGMENT_STEPS`` steps (amortized, still constant per step). ``load``
    reads it as the incomplete invocation it stands for.
    """
    if previous is None:
        if kept:
            raise ValueError(f"a first checkpoint keeps no children, got kept={kept}")
    elif not 0 <= kept <= previous.length:
        raise ValueError(f"cannot keep {kept} of the {previous.length} children checkpointed")
    if previous is None:
        steps, segment, segment_length, low, tail = 1, None, 0, 0, list(added)
    else:
        steps, segment, segment_length = (
            previous.steps + 1,
            previous.segment,
            previous.segment_length,
        )
        low = min(previous.low, kept)
        tail = previous.tail[: kept - low] + list(added)
    skip = None
    if steps >= SEGMENT_STEPS:
        skip = _entry(objects, segment, request_digest, segment_length - low, tail, None)
    digest = _entry(
        objects,
        None if previous is None else previous.digest,
        request_digest,
        0 if previous is None else previous.length - kept,
        added,
        skip,
    )
    journal = Journal(digest, kept + len(added))
    if skip is None:
        journal.steps, journal.segment, journal.segment_length = steps, segment, segment_length
        journal.low, journal.tail = low, tail
    else:  # the next segment stands on this one
        journal.segment = skip
    return journal


def _from_journal(store: Store, cache: NodeCache, digest: str, entry: Checkpoint) -> Node:
    """The incomplete invocation a checkpoint stands for; its records are staged.

    Follows ``previous`` back to the start of the journal (or to an invocation it
    continues, or to a node already loaded), one read per entry, then replays the
    entries forward. The records built here are those an incomplete invocation with
    these children has (the digest a checkpoint had before issue 15);
    ``Node.invocation`` packs them again and stages them in the store.
    """
    chain: list[tuple[str, Checkpoint]] = []
    base: tuple[str, ...] = ()
    at, record = digest, entry
    while True:
        if record.skip is not None:  # the segment holds the same children, further back
            at = record.skip.digest
            record = _checkpoint_record(store.get_object(at), at)
        chain.append((at, record))
        previous = record.previous
        if previous is None:
            break
        known = cache.nodes.get(previous.digest)
        if known is not None:
            base = known.children
            break
        found = unpack_value(store.get_object(previous.digest))
        if type(found) is Checkpoint:
            at, record = previous.digest, found
        else:
            base = load(store, previous.digest, cache).children
            break
    children = list(base)
    for at, record in reversed(chain):
        if record.dropped > len(children) or (record.dropped and record.previous is None):
            raise DeserializationError(
                f"checkpoint {at} drops {record.dropped} children, but the checkpoint it "
                f"follows records {len(children)}"
            )
        del children[len(children) - record.dropped :]
        children.extend(c.digest for c in record.added)
    request_digest = entry.request.digest
    request = expect_record(unpack_value(store.get_object(request_digest)), request_digest, Request)
    objects: dict[str, bytes] = {}
    invokable = request.invokable.digest
    built = build(
        objects, request_digest, invokable, request.input.digest, invokable,
        None, None, False, children,
    )  # fmt: skip
    node = Node(
        built.digest, built.request_digest, built.response_digest, built.invokable_digest,
        built.input_digest, built.post_invokable_digest, None, None, False, built.children,
        True,
    )  # fmt: skip
    cache.put(node)
    return node


def _checkpoint_record(data: bytes, digest: str) -> Checkpoint:
    record = unpack_value(data)
    if type(record) is not Checkpoint:
        raise DeserializationError(
            f"object {digest} is linked as a checkpoint segment but is a {type(record).__name__}"
        )
    return record


# The node cache and loading --------------------------------------------------------


class NodeCache:
    """The nodes of one store that the engine recorded or loaded, bounded by ``limit``:
    past it, the older half is dropped."""

    __slots__ = ("nodes", "limit", "_lock", "__weakref__")

    def __init__(self, limit: int = NODE_CACHE_SIZE) -> None:
        self.nodes: dict[str, Node] = {}
        self.limit = limit
        self._lock = threading.Lock()

    def get(self, digest: str) -> Node | None:
        return self.nodes.get(digest)

    def put(self, node: Node) -> None:
        nodes = self.nodes
        nodes[node.digest] = node
        if len(nodes) > self.limit:
            with self._lock:
                _halve(nodes, self.limit)

    def alias(self, digest: str, node: Node) -> None:
        """Find ``node`` by another digest as well (a checkpoint's, see ``load``)."""
        self.nodes[digest] = node
        self.put(node)

    def __len__(self) -> int:
        return len(self.nodes)


def _halve(entries: dict[str, Any], limit: int) -> None:
    """Drop the older half of ``entries`` if it holds more than ``limit``."""
    if len(entries) > limit:
        for old in list(entries)[: len(entries) // 2]:
            entries.pop(old, None)


_caches: weakref.WeakKeyDictionary[Store, NodeCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(store: Store) -> NodeCache:
    """The node cache of ``store`` (made on first use; it goes when the store goes)."""
    cache = _caches.get(store)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(store)
            if cache is None:
                cache = _caches[store] = NodeCache()
    return cache


def cache_stats(store: Store) -> dict[str, int]:
    """How many nodes ``store``'s cache holds, and its bound."""
    cache = cache_for(store)
    return {"nodes": len(cache), "limit": cache.limit}


def remember(store: Store, node: Node) -> None:
    """Put ``node`` in ``store``'s cache (its records are in, or on their way to, the store)."""
    cache_for(store).put(node)


def _node_from_records(digest: str, inv: Any, request: Any, response: Any) -> Node:
    return Node(
        digest,
        inv.request.digest,
        inv.response.digest,
        request.invokable.digest,
        request.input.digest,
        response.invokable.digest,
        None if response.output is None else response.output.digest,
        None if response.raised is None else response.raised.digest,
        bool(response.raised_here),
        tuple(c.digest for c in response.children),
    )


def load(store: Store, digest: str, cache: NodeCache | None = None) -> Node:
    """The node of the stored invocation ``digest``: cached, else read from its records.

    ``digest`` may also be a checkpoint (``checkpoint``): its node is the incomplete
    invocation it stands for (whose own digest differs), built from the journal (its
    records are staged in the store only when ``node.invocation()`` is used).
    Raises ``ObjectMissing`` or ``ObjectCorrupt`` as any read does, and
    ``DeserializationError`` if a record is not of the kind its place requires.
    """
    if cache is None:
        cache = cache_for(store)
    node = cache.nodes.get(digest)
    if node is None:
        record = unpack_value(store.get_object(digest))
        if type(record) is Checkpoint:
            node = _from_journal(store, cache, digest, record)
            cache.alias(digest, node)
            return node
        inv = expect_record(record, digest, Invocation)
        request, response = inv.request.digest, inv.response.digest
        request_data, response_data = store.get_objects([request, response])
        node = _node_from_records(
            digest,
            inv,
            expect_record(unpack_value(request_data), request, Request),
            expect_record(unpack_value(response_data), response, Response),
        )
        cache.put(node)
    return node


def prefetch_children(store: Store, digest: str) -> None:
    """Load the nodes of an invocation's children in two batched reads.

    Replay loads each reused child; against a remote store that is two round trips
    per child. Batched, it is two for the whole level. Only a prefetch: a record
    of the wrong kind is skipped here, and reported when replay loads it.
    """
    cache = cache_for(store)
    node = load(store, digest, cache)
    missing = [d for d in dict.fromkeys(node.children) if d not in cache.nodes]
    if len(missing) < 2:
        return
    invocations = [
        (child, inv)
        for child, inv in zip(missing, map(unpack_value, store.get_objects(missing)))
        if type(inv) is Invocation
    ]
    records = store.get_objects(
        [d for _, inv in invocations for d in (inv.request.digest, inv.response.digest)]
    )
    for index, (child, inv) in enumerate(invocations):
        request, response = unpack_value(records[2 * index]), unpack_value(records[2 * index + 1])
        if type(request) is Request and type(response) is Response:
            cache.put(_node_from_records(child, inv, request, response))


def write_records(store: Store, objects: Mapping[str, bytes]) -> None:
    """Write a run's records to ``store`` in one batch, skipping those it wrote lately.

    ``Store.recently_written`` decides what "lately" is: a record may link an object
    without writing it again only within that time, so a concurrent gc cannot take
    it (``enact.backend``, issue 10).
    """
    known = store.recently_written()
    new = {d: data for d, data in objects.items() if d not in known}
    if new:
        store.put_objects(new)
        known.update(new)


def commit(store: Store, objects: dict[str, bytes], node: Node, write: bool = True) -> Node:
    """Write (or, with ``write=False``, stage) new records and cache their node."""
    if write:
        write_records(store, objects)
    else:
        store.stage(objects)
    remember(store, node)
    return node


# The wire shape: rows ------------------------------------------------------------------

ROW_VERSION = 1


def to_row(node: Node, value: bytes | None = None) -> dict[str, Any]:
    """A node as a row for another process: named fields, a version, and optionally
    ``value``, the packed output (or exception) so the receiver need not read it."""
    return {
        "v": ROW_VERSION,
        "digest": node.digest,
        "request": node.request_digest,
        "response": node.response_digest,
        "invokable": node.invokable_digest,
        "input": node.input_digest,
        "post": node.post_invokable_digest,
        "output": node.output_digest,
        "raised": node.raised_digest,
        "raised_here": node.raised_here,
        "children": list(node.children),
        "value": value,
    }


def from_row(row: Any) -> tuple[Node, bytes | None]:
    """The node and value of a row, every field checked (rows come from other
    processes, through Redis); ``DeserializationError`` naming what is wrong."""
    if type(row) is not dict:
        raise DeserializationError(f"a call row must be a map, got {type(row).__name__}")
    version = row.get("v")
    if version != ROW_VERSION:
        raise DeserializationError(
            f"a call row of version {shown(version, 20)}, but this process reads version "
            f"{ROW_VERSION}: are workers of different enact releases sharing a cluster?"
        )
    for name in _ROW_DIGESTS:
        _row_digest(row, name)
    output, raised = row.get("output"), row.get("raised")
    for name, value in (("output", output), ("raised", raised)):
        if value is not None:
            _row_digest(row, name)
    if output is not None and raised is not None:
        raise DeserializationError("a call row holds both an output and an exception")
    raised_here, children, value = row.get("raised_here"), row.get("children"), row.get("value")
    if type(raised_here) is not bool:
        raise DeserializationError("a call row's raised_here must be true or false")
    if type(children) is not list or not all(is_digest(c) for c in children):
        raise DeserializationError("a call row's children must be a list of digests")
    if value is not None and (
        type(value) is not bytes or digest_bytes(value) != (output or raised)
    ):
        raise DeserializationError("a call row's value does not match its digest")
    node = Node(
        row["digest"],
        row["request"],
        row["response"],
        row["invokable"],
        row["input"],
        row["post"],
        output,
        raised,
        raised_here,
        tuple(children),
    )
    return node, value


_ROW_DIGESTS = ("digest", "request", "response", "invokable", "input", "post")


def _row_digest(row: dict[str, Any], name: str) -> None:
    if name not in row:
        raise DeserializationError(f"a call row (version 1) lacks field {name!r}")
    if not is_digest(row[name]):
        raise DeserializationError(
            f"a call row's {name} must be a digest, got {shown(row[name], 80)}"
        )


# Walking the tree ------------------------------------------------------------------------


def walk(
    store: Store,
    digest: str,
    *,
    enter: Callable[[Path, Node], bool] | None = None,
    from_end: bool = False,
) -> Iterator[tuple[Path, Node]]:
    """Every call under ``digest`` in pre-order, as ``(path, node)``; the root is ``()``.

    Nodes are loaded as they are reached, so a walk stopped early reads nothing more.
    ``enter(path, node)`` decides whether a node's children are visited (default:
    always). ``from_end`` visits each node's children last to first.
    """
    cache = cache_for(store)
    stack: list[tuple[Path, str]] = [((), digest)]
    while stack:
        path, current = stack.pop()
        node = load(store, current, cache)
        yield path, node
        children = node.children
        if children and (enter is None or enter(path, node)):
            if from_end:
                stack.extend((path + (i,), children[i]) for i in range(len(children)))
            else:
                stack.extend((path + (i,), children[i]) for i in range(len(children) - 1, -1, -1))


def _check_path(node: Node, path: Sequence[int], depth: int) -> int:
    index = path[depth]
    if not 0 <= index < len(node.children):
        raise IndexError(
            f"path {tuple(path)} is out of range: the call at {tuple(path[:depth])} has "
            f"{len(node.children)} child calls"
        )
    return index


def call_at(store: Store, digest: str, path: Sequence[int]) -> Node:
    """The node at ``path`` below ``digest``; ``IndexError`` naming a bad step."""
    node = load(store, digest)
    for depth in range(len(path)):
        node = load(store, node.children[_check_path(node, path, depth)])
    return node


def leaf_paths(store: Store, digest: str) -> list[Path]:
    """Paths of the calls that made no calls themselves, in execution order."""
    return [path for path, node in walk(store, digest) if not node.children]


# Record surgery: rewinds and replacements ----------------------------------------------


def rewind(store: Store, digest: str, num_calls: int) -> Node:
    """Drop the output and the last ``num_calls`` top-level child calls."""
    node = load(store, digest)
    if num_calls < 0 or num_calls > len(node.children):
        raise ValueError(
            f"cannot rewind {num_calls} calls: the invocation has {len(node.children)} child calls"
        )
    objects: dict[str, bytes] = {}
    kept = node.children[: len(node.children) - num_calls]
    return commit(store, objects, incomplete(objects, node, kept))


def _truncate(
    store: Store, objects: dict[str, bytes], node: Node, path: Sequence[int], depth: int
) -> Node:
    index = _check_path(node, path, depth)
    kept = list(node.children[:index])
    if depth + 1 < len(path):
        child = load(store, node.children[index])
        kept.append(_truncate(store, objects, child, path, depth + 1).digest)
    return incomplete(objects, node, kept)


def rewind_to(store: Store, digest: str, path: Sequence[int]) -> Node:
    """End the record just before the call at ``path``: it and all later calls go."""
    if not path:
        raise ValueError("path () is the top-level call itself; use rewind(len(children))")
    objects: dict[str, bytes] = {}
    return commit(store, objects, _truncate(store, objects, load(store, digest), tuple(path), 0))


def rewind_leaves(store: Store, digest: str, num_leaves: int) -> Node:
    """Remove the last ``num_leaves`` leaf calls (calls that made no calls), at any depth.

    Walks from the end and stops at the ``num_leaves``-th leaf, so the cost follows
    what is rewound, not the size of the record.
    """
    if num_leaves < 1:
        raise ValueError(f"cannot rewind {num_leaves} leaf calls: give a positive number")
    found: list[Path] = []
    for path, node in walk(store, digest, from_end=True):
        if path and not node.children:
            found.append(path)
            if len(found) == num_leaves:
                return rewind_to(store, digest, path)
    raise ValueError(f"cannot rewind {num_leaves} leaf calls: the invocation has {len(found)}")


def replace(
    store: Store, digest: str, replacements: Mapping[Path, Node], write: bool = True
) -> Node:
    """New records where the call at each path is replaced; its ancestors become incomplete.

    With ``write=False`` the records are staged (see ``Store.stage``), not written.
    """
    objects: dict[str, bytes] = {}

    def rebuild(node: Node, prefix: Path) -> Node:
        if prefix in replacements:
            return replacements[prefix]
        children = list(node.children)
        depth = len(prefix)
        touched = {p[depth] for p in replacements if p[:depth] == prefix and len(p) > depth}
        for index in sorted(touched):
            if not 0 <= index < len(children):
                raise IndexError(f"no call at path {prefix + (index,)}")
            child = load(store, children[index])
            children[index] = rebuild(child, prefix + (index,)).digest
        return incomplete(objects, node, children)

    return commit(store, objects, rebuild(load(store, digest), ()), write)
