"""The canonical encoding and digests (API.md section 2), and decoding safety."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgpack
import pytest

import enact
from enact.serialization import (
    FORMAT,
    MsgpackSerializer,
    pack_value,
    packed_links,
    unpack_value,
)


@enact.register
@dataclasses.dataclass(frozen=True)
class Point(enact.ImmutableResource):
    y: int
    x: int  # declared out of order: the encoding sorts fields by name


@enact.register
@dataclasses.dataclass
class Box(enact.Resource):
    value: Any


@enact.register
@dataclasses.dataclass
class OtherBox(enact.Resource):
    value: Any


def _packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _marker(cls: type) -> msgpack.ExtType:
    return msgpack.ExtType(1, cls.type_id().encode())


# The documented format ---------------------------------------------------------


def test_packed_object_is_format_links_body() -> None:
    data, links = pack_value({"b": [1, None], "a": b"x"})
    assert links == set()
    assert data == _packb([FORMAT, [], {"a": b"x", "b": [1, None]}])
    assert unpack_value(data) == {"a": b"x", "b": [1, None]}


def test_resource_encoding_sorts_fields_by_name() -> None:
    data, _ = pack_value(Point(y=2, x=1))
    expected = _packb([FORMAT, [], [_marker(Point), {"x": 1, "y": 2}]])
    assert data == expected
    assert enact.resource_digest(Point(y=2, x=1)) == hashlib.sha256(expected).hexdigest()


def test_refs_are_links_and_ext_values() -> None:
    d1, d2 = "ab" * 32, "01" * 32
    data, links = pack_value([enact.Ref(d1), {"r": enact.Ref(d2)}, enact.Ref(d1)])
    assert links == {d1, d2}
    r1, r2 = msgpack.ExtType(2, bytes.fromhex(d1)), msgpack.ExtType(2, bytes.fromhex(d2))
    expected_body = [r1, {"r": r2}, r1]
    assert data == _packb([FORMAT, sorted([bytes.fromhex(d1), bytes.fromhex(d2)]), expected_body])
    assert packed_links(data) == sorted([d2, d1])


@pytest.mark.parametrize("digest", ["abcd", "AB" * 32, "zz" * 32, "0" * 65, ""])
def test_refs_with_malformed_digests_cannot_be_stored(digest: str) -> None:
    with pytest.raises(enact.FieldTypeError, match=r"Box\.value.*not 64 lowercase hex"):
        enact.resource_digest(Box(enact.Ref(digest)))
    # A Ref may still be built around any string, as in 0.4, and its id round-trips.
    ref_id = enact.Ref(digest).id
    assert json.loads(ref_id) == {"digest": digest}
    assert enact.Ref.from_id(ref_id) == enact.Ref(digest)
    with enact.InMemoryStore() as store:
        with pytest.raises(enact.RefError, match="not a digest"):
            enact.Ref(digest).checkout()
        assert not store.has(enact.Ref(digest))


def test_big_ints_and_classes_are_ext_values() -> None:
    data, _ = pack_value([2**64, -(2**63) - 1, 2**64 - 1, -(2**63), Point])
    assert data == _packb(
        [
            FORMAT,
            [],
            [
                msgpack.ExtType(3, str(2**64).encode()),
                msgpack.ExtType(3, str(-(2**63) - 1).encode()),
                2**64 - 1,
                -(2**63),
                msgpack.ExtType(4, Point.type_id().encode()),
            ],
        ]
    )


def test_floats_are_always_64_bit() -> None:
    data, _ = pack_value(1.5)
    assert data[-9] == 0xCB  # msgpack float 64


# Golden digests: stored data must stay addressable across releases.
GOLDEN = [
    (None, "73426e84c86536ee8dd4e4c8b96113f368be0818d6defb63c3ac1304feec7d7f"),
    (True, "1589ca5ce07b24860165bdcda24ca9cb00bfbf1c6cbbe50d293699b2f4243b73"),
    (1, "ffe4d2a84c54672b3074ce8d5db24fbf2a2d35f497efead932b025d06f51cc62"),
    (1.0, "732a162526e382847b4f75d87e645306bf39ca51feec1b721f85e17b37aebb98"),
    ("a", "d08801b7e965c4f09d0496b14ec73932434f0c5fea3919fdd5e947d20ae5f456"),
    (b"a", "00c0cb9f1ef03794814ae4c7e1bdf87fec868e0fc534e0312e61f1392c0fb8d7"),
    ([1, 2], "6e6605331bc9c1659efac178894acafdbbbb18b293927760d7d35c5d400ceabb"),
    ({"b": 1, "a": 2}, "242c6242e5ee0f872ffbc95507f02fff6ab430f580e3885bd740f32e5c2b2855"),
    ((1,), "490f0fd146b738aefc933172b170e5228d5b2a4dde1683484c812c7dd4f1e5e6"),
    ({1}, "565db41cbe7bd56ca24a1ad9784d4c42579e8418522ff12124b1125b7cb9674e"),
]


@pytest.mark.parametrize("value,digest", GOLDEN, ids=[repr(v) for v, _ in GOLDEN])
def test_golden_digests(value: Any, digest: str) -> None:
    assert enact.resource_digest(value) == digest


def test_digests_do_not_depend_on_hash_seed() -> None:
    """Set and dict ordering must not leak into the encoding."""
    code = textwrap.dedent(
        """
        import enact
        value = [{"x", "y", "zz", "w" * 40, b"q", (1, "a")}, frozenset({"p", "q", "r"}),
                 {"k%d" % i: i for i in range(50)}]
        print(enact.resource_digest(value))
        """
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1


# Distinct values, distinct digests ---------------------------------------------

DISTINCT = [
    None,
    True,
    False,
    0,
    1,
    0.0,
    -0.0,
    1.0,
    2**64,
    float(2**64),
    "",
    "1",
    b"",
    b"1",
    [],
    [1],
    [True],
    [1.0],
    (),
    (1,),
    set(),
    {1},
    frozenset(),
    frozenset({1}),
    {},
    {"value": 1},
    [[]],
    [()],
    Box(1),
    Box(True),
    Box((1,)),
    Box([1]),
    OtherBox(1),
    Box,
    OtherBox,
    int,
    bool,
    float,
    enact.Ref("00" * 32),
    "00" * 32,
]


def test_distinct_values_have_distinct_digests() -> None:
    digests = [enact.resource_digest(v) for v in DISTINCT]
    collisions = [
        (DISTINCT[i], DISTINCT[j])
        for i in range(len(digests))
        for j in range(i + 1, len(digests))
        if digests[i] == digests[j]
    ]
    assert collisions == []


def test_true_one_and_one_point_zero_are_three_digests() -> None:
    assert len({enact.resource_digest(v) for v in (True, 1, 1.0)}) == 3
    assert len({enact.resource_digest(v) for v in (False, 0, 0.0)}) == 3
    assert len({enact.resource_digest(Box(v)) for v in (True, 1, 1.0)}) == 3


def test_equal_values_have_equal_digests_regardless_of_construction_order() -> None:
    a = {"x": {3, 1, 2}, "y": [Point(1, 2)], "z": frozenset({"b", "a"})}
    b = {"z": frozenset({"a", "b"}), "y": [Point(x=2, y=1)], "x": {2, 3, 1}}
    assert enact.resource_digest(a) == enact.resource_digest(b)


# Type keys carry no version ----------------------------------------------------


def test_type_ids_are_module_and_qualname_without_a_version() -> None:
    assert Point.type_id() == f"{Point.__module__}.Point"
    assert enact.__version__ not in Point.type_id()
    data, _ = pack_value(Point(1, 2))
    assert enact.__version__.encode() not in data


def test_digest_does_not_change_with_package_or_distribution_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    before = enact.resource_digest([Point(1, 2), Box((1,)), Point])
    monkeypatch.setattr(enact, "__version__", "99.0.0")
    point_key = Point.type_distribution_key()
    try:
        Point.set_type_distribution_key(enact.DistributionKey("some-dist", "1.0"))
        first = enact.resource_digest([Point(1, 2), Box((1,)), Point])
        Point.set_type_distribution_key(enact.DistributionKey("some-dist", "2.0"))
        second = enact.resource_digest([Point(1, 2), Box((1,)), Point])
        assert Point.type_key().distribution_key == enact.DistributionKey("some-dist", "2.0")
    finally:
        Point.set_type_distribution_key(point_key)
    assert before == first == second
    assert Point.type_key().name == Point.type_id()


# Decoding: unknown types, garbage, and no code execution -----------------------


def test_unknown_resource_type_raises_unregistered_resource() -> None:
    data = _packb([FORMAT, [], [msgpack.ExtType(1, b"gone.module.Thing"), {"x": 1}]])
    with pytest.raises(enact.UnregisteredResource, match=r"gone\.module\.Thing"):
        unpack_value(data)
    data = _packb([FORMAT, [], {"k": msgpack.ExtType(4, b"gone.module.Kind")}])
    with pytest.raises(enact.UnregisteredResource, match=r"gone\.module\.Kind"):
        unpack_value(data)


def test_unknown_type_through_a_store_names_the_type() -> None:
    data = _packb([FORMAT, [], [msgpack.ExtType(1, b"gone.module.Thing"), {"x": 1}]])
    digest = hashlib.sha256(data).hexdigest()
    backend = enact.InMemoryBackend()
    backend.put({digest: data})
    with enact.Store(backend) as store:
        assert store.has(digest)
        with pytest.raises(enact.UnregisteredResource, match=r"gone\.module\.Thing"):
            enact.Ref.from_id(digest).checkout()
        assert isinstance(enact.UnregisteredResource("x"), enact.RegistryError)


def test_type_registered_in_another_process_is_unregistered_here(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import dataclasses, enact

        @enact.register
        @dataclasses.dataclass
        class OnlyInChild(enact.Resource):
            x: int

        with enact.FileStore({str(tmp_path)!r}):
            print(enact.commit({{"thing": OnlyInChild(1)}}).id)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    with enact.FileStore(tmp_path):
        with pytest.raises(enact.UnregisteredResource) as info:
            enact.Ref.from_id(out).checkout()
    assert "__main__.OnlyInChild" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x93\x01\x90",  # truncated array
        _packb(3),
        _packb([FORMAT, []]),
        _packb([FORMAT + 1, [], 1]),
        _packb([FORMAT, [], msgpack.ExtType(9, b"")]),
        _packb([FORMAT, [], [msgpack.ExtType(1, Box.type_id().encode()), "not fields"]]),
        _packb([FORMAT, [], {1: 2}]),
        _packb([FORMAT, [], [msgpack.ExtType(1, Box.type_id().encode()), {"nope": 1}]]),
        _packb([FORMAT, [], [msgpack.ExtType(1, Box.type_id().encode()), {}]]),
        _packb([FORMAT, [], msgpack.ExtType(2, b"short")]),
        _packb([FORMAT, [], msgpack.ExtType(3, b"1.5")]),
    ],
    ids=repr,
)
def test_undecodable_bytes_raise_deserialization_error(data: bytes) -> None:
    with pytest.raises(enact.DeserializationError) as info:
        unpack_value(data)
    assert isinstance(info.value, enact.SerializationError)
    assert str(info.value)


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def test_decoding_never_unpickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Evil(str(marker)))
    digest = hashlib.sha256(data).hexdigest()
    with enact.FileStore(tmp_path / "store") as store:
        store.backend.put({digest: data})
        with pytest.raises(enact.DeserializationError):
            store.checkout(digest)
        with pytest.raises(enact.DeserializationError):
            enact.JsonSerializer().deserialize(data)
    assert not marker.exists()


@pytest.mark.parametrize("value", ["\ud800", {"\udc00": 1}, [1, "ok \udfff ok"]], ids=repr)
def test_strings_that_are_not_valid_unicode_are_a_serialization_error(value: Any) -> None:
    with pytest.raises(enact.SerializationError, match="surrogate"):
        enact.resource_digest(value)
    assert enact.resource_digest("after") == enact.resource_digest("after")  # packer reset


def test_packed_links_rejects_non_objects() -> None:
    with pytest.raises(enact.DeserializationError):
        packed_links(_packb([2, [], None]))
    with pytest.raises(enact.DeserializationError):
        packed_links(b"\xc1")


# Serializers --------------------------------------------------------------------

SERIALIZER_VALUES = [
    None,
    True,
    1,
    1.0,
    -0.0,
    float("inf"),
    2**100,
    -(2**100),
    "s",
    b"\x00bytes",
    [1, [True, 1.0]],
    {"a": {"b": [b"c"]}, "$d": 1, "$t": "x"},
    (1, (2,)),
    {1, 2},
    frozenset({"a"}),
    Point(1, 2),
    Box([Point(3, 4), {"k": (Box(None),)}]),
    Box(Point),
    enact.Ref("ab" * 32),
    int,
]


@pytest.mark.parametrize("value", SERIALIZER_VALUES, ids=repr)
@pytest.mark.parametrize("serializer", [enact.JsonSerializer(), MsgpackSerializer()], ids=type)
def test_serializer_round_trip(serializer: enact.Serializer, value: Any) -> None:
    data = serializer.serialize(value)
    assert isinstance(data, bytes)
    out = serializer.deserialize(data)
    assert out == value and type(out) is type(value)
    assert serializer.serialize(out) == data


def test_json_serializer_is_json_and_keeps_type_distinctions() -> None:
    serializer = enact.JsonSerializer()
    encoded = [serializer.serialize(v) for v in (True, 1, 1.0, [1], (1,), "1", b"1")]
    assert len(set(encoded)) == len(encoded)
    tree = json.loads(serializer.serialize(Box({"x": 1})))
    assert tree == {"$t": Box.type_id(), "$v": {"value": {"$d": {"x": 1}}}}


def test_json_serializer_keeps_nan_bits() -> None:
    import struct

    odd_nan = struct.unpack(">d", bytes.fromhex("7ff8000000000001"))[0]
    serializer = enact.JsonSerializer()
    for value in (odd_nan, float("nan"), -float("nan")):
        out = serializer.deserialize(serializer.serialize(value))
        assert struct.pack(">d", out) == struct.pack(">d", value)
        assert enact.resource_digest(out) == enact.resource_digest(value)


def test_json_serializer_errors() -> None:
    serializer = enact.JsonSerializer()
    with pytest.raises(enact.DeserializationError, match="invalid JSON"):
        serializer.deserialize(b"{not json")
    with pytest.raises(enact.DeserializationError, match="unknown JSON tag"):
        serializer.deserialize(b'{"$zz": 1}')
    with pytest.raises(enact.UnregisteredResource, match="gone.Type"):
        serializer.deserialize(b'{"$t": "gone.Type", "$v": {}}')
    for malformed in (
        b'{"$t": "x"}',
        b'{"$d": 5}',
        b'{"$b": "!!!"}',
        b'{"$f": "one"}',
        b'{"$i": "1.5"}',
        b'{"$r": 7}',
        json.dumps({"$t": Box.type_id(), "$v": {"nope": 1}}).encode(),
    ):
        with pytest.raises(enact.DeserializationError):
            serializer.deserialize(malformed)
    with pytest.raises(enact.FieldTypeError):
        serializer.serialize(object())


# Error hierarchy ------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(enact.FieldTypeError, TypeError)
    assert issubclass(enact.SerializationError, ValueError)
    assert issubclass(enact.CycleError, enact.SerializationError)
    assert issubclass(enact.DeserializationError, enact.SerializationError)
    assert issubclass(enact.ObjectCorrupt, enact.RefError)
    assert issubclass(enact.ObjectMissing, enact.RefError)
    assert issubclass(enact.ObjectMissing, KeyError)
    assert issubclass(enact.RefError, enact.StoreError)
    assert issubclass(enact.UnregisteredResource, enact.RegistryError)
    assert issubclass(enact.ConfigError, ValueError)
    for name in (
        "FieldTypeError RefError RegistryError UnregisteredResource ReplayError InputChanged "
        "IncompleteSubinvocationError InputRequestOutsideInvocation RequestedTypeUndetermined "
        "SerializationError DeserializationError"
    ).split():
        error = getattr(enact, name)
        assert issubclass(error, enact.EnactError) and issubclass(error, Exception), name
    assert str(enact.ObjectMissing("no object abc")) == "no object abc"
