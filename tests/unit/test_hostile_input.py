"""Decoders under hostile input: only enact errors escape, in bounded time and memory.

Every entry point that decodes bytes or values someone else chose is fed
structured garbage (msgpack trees shaped like enact's records, with real and
forged type ids, functions and refs) and mutations of valid objects:

* raw objects: ``unpack_value``, ``packed_links``, ``Store.checkout``;
* records behind refs: ``load_node``, ``invocation_summary``,
  ``pending_input_requests``, the accessors, and ``call_target`` (what replay
  would run);
* S3 pack indexes and packs: ``decode_index``, ``read_members``;
* JSON: ``JsonSerializer.deserialize``;
* worker task messages and rows: ``enact.worker.wire`` and ``raised_exception``.

The assertion is the same everywhere: the call returns, or raises an
``EnactError``. The default run tries a few thousand cases; set
``ENACT_FUZZ_EXAMPLES`` (cases per entry point) for a longer hunt.
"""

from __future__ import annotations

import dataclasses
import enum
import gc
import hashlib
import json
import os
import struct
import tracemalloc
from typing import Any, Callable

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import enact
from enact import calls, records, replay, requests, serialization, tree, wrappers
from enact.digests import digest_bytes
from enact.errors import EnactError
from enact.printing import invocation_summary
from enact.stores import _packs

EXAMPLES = int(os.environ.get("ENACT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    # Bounded time: generous enough for a machine shared by eight test runs,
    # small enough to catch anything super-linear in inputs of a few KiB.
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("ENACT_FUZZ_RANDOM") is None,
)
TIME_LIMIT_S = 10.0

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@enact.register
@dataclasses.dataclass
class Payload(enact.Resource):
    value: Any
    label: str = ""


@enact.register
class Shade(enum.Enum):
    DARK = 1
    LIGHT = 2


@enact.register
def fuzz_target(x: Any) -> Any:
    return x


RECORD_TYPES = [
    records.Invocation, records.Request, records.Response, records.CallArgs,
    records.BoundMethod, records.NativeException, requests.InputRequest,
    requests.RequestInput, enact.Ref, wrappers.TupleWrapper, wrappers.SetWrapper,
    wrappers.FrozenSetWrapper, wrappers.TypeReference, wrappers.FunctionReference,
    wrappers.BuiltinFunctionReference, wrappers.ModuleReference,
    wrappers.GenericAliasReference, wrappers.UnionReference, wrappers.EnumWrapper, Payload,
]  # fmt: skip
NAMES = [cls.type_id() for cls in RECORD_TYPES] + [
    "os.system", "posix.system", "builtins.eval", "subprocess.getoutput", "__main__.main",
    "enact.stores.S3Backend", "builtins.int", "builtins.ValueError", "typing.Any",
    f"{__name__}.fuzz_target", f"{__name__}.Shade", "enact.records", "json",
]  # fmt: skip
FIELDS = sorted({name for cls in RECORD_TYPES for name in cls.field_names()} | {"x", ""})


def only_enact_errors(call: Callable[..., Any], *args: Any) -> Any:
    """Run ``call``; an ``EnactError`` is fine, anything else fails the test."""
    import time

    start = time.monotonic()
    try:
        return call(*args)
    except EnactError:
        return None
    finally:
        elapsed = time.monotonic() - start
        assert elapsed < TIME_LIMIT_S, f"{call.__qualname__} took {elapsed:.1f} s"


# Strategies ---------------------------------------------------------------------------

names = st.one_of(st.sampled_from(NAMES), st.text(max_size=24))
digests_raw = st.one_of(
    st.binary(min_size=32, max_size=32), st.binary(max_size=40), st.just(b"\x00" * 32)
)
ext_data = st.one_of(
    names.map(lambda s: s.encode("utf-8", "surrogatepass")),
    digests_raw,
    st.integers(-(10**30), 10**30).map(lambda i: str(i).encode()),
    st.binary(max_size=16),
)
exts = st.builds(
    msgpack.ExtType, st.one_of(st.sampled_from([1, 2, 3, 4]), st.integers(0, 127)), ext_data
)
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
    st.text(max_size=20), st.binary(max_size=20), exts, names,
)  # fmt: skip


def _resource_shaped(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    type_ids = names.map(lambda s: s.encode("utf-8", "replace"))
    marker = st.builds(msgpack.ExtType, st.just(1), type_ids)
    fields = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=6)
    return st.one_of(
        st.tuples(marker, fields).map(list),
        st.lists(st.one_of(marker, children), max_size=4),
    )


trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(max_size=8), children, max_size=6),
        _resource_shaped(children),
    ),
    max_leaves=40,
)


def _pack(tree: Any) -> bytes:
    return msgpack.packb(tree, use_bin_type=True, strict_types=False)


enveloped = st.builds(
    lambda links, body, fmt: _pack([fmt, links, body]),
    st.lists(digests_raw, max_size=3) | leaves,
    trees,
    st.sampled_from([1, 1, 1, 2, True, 1.0]),
)


def _valid_objects() -> list[bytes]:
    """Packed objects enact itself writes, to mutate."""
    values: list[Any] = [
        records.CallArgs([1, "a", None], {"k": [1.5]}),
        records.NativeException("ValueError", "bad", "tb"),
        (1, {2, 3}, frozenset({4})),
        [int, str, Shade.DARK, list[int], int | None],
        fuzz_target,
        Payload(enact.Ref("ab" * 32), "x"),
        10**40,
        {"nested": [[[]]], "bytes": b"\x00"},
    ]
    out = [serialization.pack_value(v)[0] for v in values]
    with enact.InMemoryStore() as store:
        invocation = enact.invoke(fuzz_target, ([1, 2],))
        for data in store.backend.get(list(_reachable(store, invocation.digest))):
            assert data is not None
            out.append(data)
    return out


def _reachable(store: enact.Store, root: str) -> list[str]:
    from enact.store import iter_links

    return list(iter_links(store, [root]))


VALID = _valid_objects()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "splice"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[position : position + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[position:] = draw(st.sampled_from(VALID))[position:]
    return bytes(data)


hostile_bytes = st.one_of(enveloped, mutated(), st.binary(max_size=64))


# Raw objects ----------------------------------------------------------------------------


@FUZZ
@given(hostile_bytes)
def test_unpack_value(data: bytes) -> None:
    only_enact_errors(serialization.unpack_value, data)


@FUZZ
@given(hostile_bytes)
def test_packed_links(data: bytes) -> None:
    links = only_enact_errors(serialization.packed_links, data)
    assert links is None or all(enact.Ref.from_id(d) for d in links)


@FUZZ
@given(hostile_bytes)
def test_deepcopy_of_whatever_decodes(data: bytes) -> None:
    value = only_enact_errors(serialization.unpack_value, data)
    only_enact_errors(enact.deepcopy, value)
    only_enact_errors(enact.pformat, value)


# Records behind refs ------------------------------------------------------------------------


def _put(store: enact.Store, data: bytes) -> str:
    digest = digest_bytes(data)
    store.put_objects({digest: data})
    return digest


def _record(type_id: str, fields: dict[str, Any]) -> bytes:
    return _pack([1, [], [msgpack.ExtType(1, type_id.encode()), fields]])


def _ref(digest: str) -> msgpack.ExtType:
    return msgpack.ExtType(2, bytes.fromhex(digest))


python_values = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=10), st.binary(max_size=10)),
    lambda children: st.lists(children, max_size=3),
    max_leaves=6,
)
function_refs = st.builds(
    lambda name, builtin: (
        wrappers.BuiltinFunctionReference if builtin else wrappers.FunctionReference
    )(*(name.rsplit(".", 1) if "." in name else ("builtins", name))),
    names,
    st.booleans(),
)
crafted_values = st.one_of(
    function_refs,
    st.builds(records.CallArgs, st.lists(python_values, max_size=3)),
    st.builds(records.BoundMethod, python_values, function_refs),
    st.builds(requests.InputRequest, st.sampled_from([int, str, Shade]), python_values),
    st.builds(records.NativeException, st.sampled_from(["ValueError", "os.system", "X"]),
              st.text(max_size=10)),
    st.builds(Payload, python_values),
)  # fmt: skip
graph_leaves = st.one_of(
    hostile_bytes,
    st.sampled_from(VALID),
    crafted_values.map(lambda v: serialization.pack_value(v)[0]),
    crafted_values.map(lambda v: serialization.pack_value(v)[0]),
)


RARELY = st.sampled_from([False] * 9 + [True])


@st.composite
def record_graphs(draw: st.DrawFn) -> tuple[enact.Store, str]:
    """A store whose root is Invocation-shaped, with fuzzed records behind its refs.

    Most fields are well formed, so that decoding gets past the first check and
    reaches what a record names (and what replay would run).
    """
    store = enact.InMemoryStore()
    targets = [_put(store, draw(graph_leaves)) for _ in range(draw(st.integers(1, 4)))]
    pick = st.sampled_from(targets)

    def field(good: st.SearchStrategy[Any]) -> Any:
        # About one field in ten is junk (hypothesis favours the first choice).
        return draw(leaves) if draw(RARELY) else draw(good)

    refs = pick.map(_ref)
    request = _record(
        records.Request.type_id(), {"invokable": field(refs), "input": field(refs)}
    )
    children = [_ref(draw(pick)) for _ in range(draw(st.integers(0, 3)))]
    response_fields = {
        "invokable": field(pick.map(_ref)),
        "output": field(st.none() | pick.map(_ref)),
        "raised": field(st.none() | pick.map(_ref)),
        "raised_here": field(st.booleans()),
        "children": field(st.just(children)),
    }
    if draw(RARELY):
        del response_fields[draw(st.sampled_from(sorted(response_fields)))]
    response = _record(records.Response.type_id(), response_fields)
    root_type = field(st.just(records.Invocation.type_id()))
    root = _record(
        root_type if isinstance(root_type, str) else records.Invocation.type_id(),
        {"request": _ref(_put(store, request)), "response": _ref(_put(store, response))},
    )
    return store, _put(store, draw(graph_leaves) if draw(RARELY) else root)


@FUZZ
@given(record_graphs())
def test_records_behind_refs(graph: tuple[enact.Store, str]) -> None:
    store, root = graph
    with store:
        only_enact_errors(store.checkout, root)
        node = only_enact_errors(tree.load, store, root)
        if node is None:
            return
        invocation = node.invocation()
        only_enact_errors(invocation_summary, invocation)
        only_enact_errors(requests.pending_input_requests, invocation)
        only_enact_errors(replay.call_target, invocation)
        only_enact_errors(lambda: list(invocation.walk()))
        only_enact_errors(invocation.get_children)
        only_enact_errors(invocation.get_raised)
        only_enact_errors(invocation.rewind, 0)


def test_a_digest_that_is_not_a_record_is_our_error() -> None:
    with enact.InMemoryStore() as store:
        ref = store.commit("not an invocation")
        with pytest.raises(enact.DeserializationError, match="not an enact Invocation"):
            tree.load(store, ref.digest)
        for bad in ("", "xyz", 5, None, "AB" * 32):
            with pytest.raises(EnactError):
                tree.load(store, bad)  # type: ignore[arg-type]


# Pack indexes and packs ------------------------------------------------------------------------


def _sealed(body: bytes) -> bytes:
    """An index body with a valid checksum, so the parser behind it is reached."""
    return body + hashlib.sha256(body).digest()


@st.composite
def indexes(draw: st.DrawFn) -> bytes:
    packs = [
        _packs.PackInfo(draw(st.sampled_from([f"{_packs.new_id()}-0.pack", "../x", ""])),
                        draw(st.integers(0, 2**40)))
        for _ in range(draw(st.integers(0, 3)))
    ]  # fmt: skip
    entries = [
        (draw(digests_raw.filter(lambda b: len(b) == 32)).hex(),
         draw(st.sampled_from([0, 1, 2, _packs.LOOSE]) | st.integers(0, 2**32 - 1)),
         draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**32 - 1)))
        for _ in range(draw(st.integers(0, 4)))
    ]  # fmt: skip
    valid = _packs.encode_index(packs, entries)
    if draw(st.booleans()):
        return valid
    body = bytearray(valid[:-32])
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, max(len(body) - 1, 0)))
        if body and draw(st.booleans()):
            body[position] ^= draw(st.integers(1, 255))
        else:
            body[position:position] = draw(st.binary(min_size=1, max_size=6))
    return _sealed(bytes(body)) if draw(st.booleans()) else bytes(body)


@FUZZ
@given(indexes() | st.binary(max_size=200).map(_sealed) | st.binary(max_size=80))
def test_decode_index(data: bytes) -> None:
    index = only_enact_errors(_packs.decode_index, data, "fuzz")
    if index is None:
        return
    for pack_no, pack in enumerate(index.packs):
        members = [(raw.hex(), o, n) for raw, p, o, n in index.entries if p == pack_no]
        body = _packs.PACK_MAGIC + b"\x00" * min(pack.size, 1 << 16)
        only_enact_errors(_packs.read_members, body, pack.size, members, "fuzz")


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 80), st.lists(st.tuples(
    st.integers(0, 80), st.integers(0, 80)), max_size=4))
def test_read_members(body: bytes, size: int, spans: list[tuple[int, int]]) -> None:
    members = [(f"{i:064x}", o, n) for i, (o, n) in enumerate(spans)]
    pieces = only_enact_errors(_packs.read_members, body, size, members, "fuzz")
    assert pieces is None or set(pieces) == {m[0] for m in members}


# JSON ---------------------------------------------------------------------------------------


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
    st.sampled_from(NAMES),
)  # fmt: skip
json_trees = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.sampled_from(["$d", "$t", "$v", "$b", "$f", "$fx", "$r", "$i", "$c", "x"]),
            children,
            max_size=3,
        ),
    ),
    max_leaves=30,
)
json_valid = [
    enact.JsonSerializer().serialize(v)
    for v in ([1, 2.5, b"x", None], Payload({"a": (1, 2)}), Shade.LIGHT, 10**30, fuzz_target)
]


@FUZZ
@given(
    json_trees.map(lambda t: json.dumps(t).encode())
    | st.sampled_from(json_valid).flatmap(
        lambda v: st.integers(0, len(v)).map(lambda i: v[:i] + v[i + 1 :])
    )
    | st.binary(max_size=40)
    | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)
)
def test_json_deserialize(data: bytes) -> None:
    only_enact_errors(enact.JsonSerializer().deserialize, data)


def test_json_nesting_is_refused_as_our_error() -> None:
    serializer = enact.JsonSerializer()
    for depth in (100_000, serialization.MAX_DEPTH + 5):
        with pytest.raises(enact.DeserializationError, match="nested"):
            serializer.deserialize(b"[" * depth + b"]" * depth)
    assert serializer.deserialize(b"[" * 100 + b"]" * 100) is not None


# Task messages and rows --------------------------------------------------------------------------


anything = st.one_of(trees, st.integers(), st.text(max_size=70))


@FUZZ
@given(anything)
def test_task_arguments(value: Any) -> None:
    from enact.worker import wire

    only_enact_errors(wire.task_id, value, "an id")
    only_enact_errors(wire.digest, value, "a digest")
    only_enact_errors(wire.count, value, "a count")
    only_enact_errors(wire.flag, value, "a flag")


def _work_item_strategy() -> st.SearchStrategy[Any]:
    """Work items shaped as ``wire.pack_work_item`` makes them, with hostile values."""
    fields = st.fixed_dictionaries(
        {
            "v": st.just(1) | leaves,
            "index": st.integers(-5, 2**41) | leaves,
            "input": hostile_bytes | leaves,
            "replay": st.none() | st.binary(min_size=32, max_size=32).map(bytes.hex) | leaves,
            "strict": st.booleans() | leaves,
            "retry": st.booleans() | leaves,
        }
    )
    return fields.flatmap(
        lambda item: st.sets(st.sampled_from(sorted(item))).map(
            lambda dropped: {k: v for k, v in item.items() if k not in dropped or k == "v"}
        )
    )


@FUZZ
@given(st.one_of(
    _work_item_strategy().map(_pack),
    st.tuples(st.integers(-5, 2**41) | leaves, hostile_bytes).map(lambda t: _pack(list(t))),
    hostile_bytes, trees.map(_pack), leaves,
))  # fmt: skip
def test_work_items(data: Any) -> None:
    from enact.worker import wire

    item = only_enact_errors(wire.work_item, data)
    if item is not None:
        only_enact_errors(wire.call_args, item["input"])


def test_a_work_item_of_a_release_without_retry_retries() -> None:
    """``retry`` was added within version 1: an item without it keeps the default."""
    from enact.worker import wire

    packed = wire.pack_work_item(3, b"args", None, True, retry=False)
    assert wire.work_item(packed)["retry"] is False
    older = _pack({"v": 1, "index": 3, "input": b"args", "replay": None, "strict": True})
    assert wire.work_item(older)["retry"] is True
    with pytest.raises(enact.DeserializationError, match="retry"):
        wire.work_item(_pack({"v": 1, "index": 3, "input": b"args", "strict": True, "retry": 1}))


def _row_strategy() -> st.SearchStrategy[Any]:
    """Rows shaped as ``tree.to_row`` makes them (a map of named fields), with hostile
    values and fields missing; also lists, as an older positional row was."""
    digest_text = st.one_of(
        st.binary(min_size=32, max_size=32).map(bytes.hex), st.text(max_size=70), leaves
    )
    value = st.one_of(digest_text, st.booleans(), st.lists(digest_text, max_size=3), leaves)
    names = ("digest", "request", "response", "invokable", "input", "post", "output",
             "raised", "raised_here", "children", "value")  # fmt: skip
    rows = st.fixed_dictionaries({"v": st.just(1) | leaves, **{n: value for n in names}})
    named = rows.flatmap(
        lambda row: st.sets(st.sampled_from(names), max_size=2).map(
            lambda dropped: {k: v for k, v in row.items() if k not in dropped}
        )
    )
    return st.one_of(named, st.lists(value, min_size=9, max_size=12))


@FUZZ
@given(_row_strategy(), st.dictionaries(st.text(max_size=70) | digests_raw, st.binary(max_size=20),
                                         max_size=3))
def test_result_rows(row: Any, records_: dict[Any, bytes]) -> None:
    from enact.worker import wire

    only_enact_errors(tree.from_row, row)
    for index in (0, -1, 3, True):
        message = _pack({"index": index, "row": row, "records": records_})
        only_enact_errors(wire.result_message, message, 4)


def test_a_forged_row_cannot_plant_records() -> None:
    from enact.worker import wire

    good = serialization.pack_value(7)[0]
    digest = digest_bytes(good)
    node = tree.Node(*([digest] * 6), digest, None, False, ())
    row = tree.to_row(node, good)
    assert wire.result_message(wire.pack_result(0, row, {digest: good}), 1)[3] == {digest: good}
    with pytest.raises(enact.DeserializationError, match="does not hash"):
        wire.result_message(wire.pack_result(0, row, {digest: b"evil"}), 1)
    with pytest.raises(enact.DeserializationError, match="index"):
        wire.result_message(wire.pack_result(1, row, {}), 1)
    with pytest.raises(enact.DeserializationError, match="value does not match"):
        tree.from_row(tree.to_row(node, b"evil"))


@FUZZ
@given(hostile_bytes)
def test_raised_exception(data: bytes) -> None:
    exc = only_enact_errors(calls.raised_exception, data)
    assert exc is None or isinstance(exc, BaseException)


# Memory ----------------------------------------------------------------------------------------


def _retained_after(work: Callable[[], None]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_distinct_type_ids_do_not_grow_memory() -> None:
    # Issue 9 measured 214 MiB for 100,000 objects naming distinct type ids.
    def decode_many() -> None:
        for i in range(100_000):
            data = _pack([1, [], [msgpack.ExtType(1, f"forged.module.Type{i}".encode()), {}]])
            with pytest.raises(enact.UnregisteredResource):
                serialization.unpack_value(data)

    retained = _retained_after(decode_many)
    assert retained < 1 << 20, f"{retained / 2**20:.1f} MiB retained"
    assert len(serialization._markers) <= len(RECORD_TYPES) + 200


def test_decoding_allocates_in_proportion_to_the_input() -> None:
    # The largest allocation msgpack allows for n bytes is about n small objects;
    # nothing may reserve memory by what a header claims.
    tracemalloc.start()
    try:
        for data in (
            b"\x93\x01\x90\xdd\xff\xff\xff\xff",  # an array header claiming 2**32 items
            b"\x93\x01\x90\xdb\xff\xff\xff\xff",  # a str header claiming 4 GiB
            b"\x93\x01\x90" + b"\x91" * 2000 + b"\xc0",  # nested past msgpack's limit
            struct.pack(">B", 0xC7) + b"\xff\x03" + b"9" * 255,
        ):
            tracemalloc.reset_peak()
            with pytest.raises(enact.DeserializationError):
                serialization.unpack_value(data)
            assert tracemalloc.get_traced_memory()[1] < 4 << 20
    finally:
        tracemalloc.stop()


def test_a_summary_prints_values_too_deep_for_repr() -> None:
    deep = b"\x93\x01\x90" + b"\x91" * 1000 + b"\xc0"  # msgpack decodes 1,000 levels
    with enact.InMemoryStore() as store:
        invocation = enact.invoke(fuzz_target, (1,))
        node = tree.load(store, invocation.digest)
        objects: dict[str, bytes] = {}
        forged = tree.build(
            objects, node.request_digest, node.invokable_digest, node.input_digest,
            node.post_invokable_digest, _put(store, deep), None, False, (),
        )  # fmt: skip
        store.put_objects(objects)
        summary = invocation_summary(forged.invocation())
    assert summary == "->fuzz_target(1) = <list nested too deeply to print>"
