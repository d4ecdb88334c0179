"""Values: resources, wrappers, and what commit/checkout preserve (API.md section 1)."""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import enum
import json
import math
import random
import re
import types
import uuid
from typing import Any

import pytest

import enact
from enact.wrappers import FunctionReference, ModuleReference, TypeReference


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> enact.Store:
    if request.param == "memory":
        return enact.InMemoryStore()
    return enact.FileStore(tmp_path / "store")


# Types used below. Module level, so stored data can name them.


@enact.register
@dataclasses.dataclass
class MyResource(enact.Resource):
    x: int
    y: list = dataclasses.field(default_factory=list)


class Die:
    """Non-enact python type."""

    def __init__(self, sides: int) -> None:
        self.sides = sides

    @enact.register
    def roll(self) -> int:
        return random.randint(1, self.sides)


@enact.register
@dataclasses.dataclass
class DieWrapper(enact.TypeWrapper[Die]):
    """Wrapper for Die."""

    sides: int

    @classmethod
    def wrapped_type(cls) -> type[Die]:
        return Die

    @classmethod
    def wrap(cls, value: Die) -> DieWrapper:
        return DieWrapper(value.sides)

    def unwrap(self) -> Die:
        return Die(self.sides)


class LoadedDie(Die):
    """A subclass of a wrapped type: stored through the base's wrapper."""


@enact.register
@dataclasses.dataclass
class Node(enact.Resource):
    name: str
    children: list = dataclasses.field(default_factory=list)
    attrs: dict = dataclasses.field(default_factory=dict)


@enact.register
@dataclasses.dataclass(frozen=True)
class Point(enact.ImmutableResource):
    x: int
    y: int


@enact.register
@dataclasses.dataclass
class Box(enact.Resource):
    value: Any


@dataclasses.dataclass
class NotRegistered(enact.Resource):
    value: int


class Opaque:
    """A type with no wrapper."""


Pair = collections.namedtuple("Pair", "a b")


@enact.register
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@enact.register
class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


registered_len = enact.register(len)


def module_level_function(x: int) -> int:
    return x + 1


@enact.register
def registered_function(x: int) -> int:
    return x * 2


def _roundtrip(store: enact.Store, value: Any) -> Any:
    with store:
        return enact.checkout(enact.commit(value))


# The seed's examples, as written -------------------------------------------


def test_seed_resource_example(store: enact.Store, capsys: pytest.CaptureFixture[str]) -> None:
    with store:
        ref = enact.commit(MyResource(x=1, y=[2, 3]))
        print(ref.checkout())
        print(ref())
    assert capsys.readouterr().out == "MyResource(x=1, y=[2, 3])\nMyResource(x=1, y=[2, 3])\n"


def test_seed_type_wrapper_example(store: enact.Store) -> None:
    with store:
        die = Die(sides=6)
        invocation = enact.invoke(die.roll)
        summary = enact.invocation_summary(invocation)
    assert re.fullmatch(r"-><\S+\.Die object at 0x[0-9a-f]+>\.roll\(\) = [1-6]", summary), summary


def test_wrapped_value_round_trips_as_the_wrapped_type(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Die(6))
        first, second = ref.checkout(), ref.checkout()
    assert type(first) is Die and first.sides == 6
    assert first is not second
    # Subclasses go through the base's wrapper (and come back as the base type).
    loaded = _roundtrip(store, LoadedDie(4))
    assert type(loaded) is Die and loaded.sides == 4


def test_wrapped_values_nested_in_containers_and_resources(store: enact.Store) -> None:
    value = Box({"dice": [Die(4), (Die(6),)], "set": {Point(1, 2)}})
    out = _roundtrip(store, value)
    assert [d.sides for d in out.value["dice"][:1]] == [4]
    assert type(out.value["dice"][1]) is tuple and out.value["dice"][1][0].sides == 6
    assert out.value["set"] == {Point(1, 2)}


# Round trips ------------------------------------------------------------------

ROUND_TRIP_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    2**64,
    -(2**63) - 1,
    10**100,
    -(10**100),
    0.0,
    1.5,
    -2.25e-300,
    math.inf,
    -math.inf,
    "",
    "héllo ✓ \x00 \U0001f600",
    b"",
    b"\x00\xff" * 10,
    [],
    [1, [2, [3, []]]],
    {},
    {"a": 1, "b": [None, {"c": b"d"}]},
    {"": "empty key", "ü": "unicode key"},
    (),
    (1, "a", (2.0, None)),
    set(),
    {1, 2, 3},
    {"a", b"a", (1, 2), frozenset({1})},
    frozenset(),
    frozenset({frozenset({1, 2}), 3}),
    [(), set(), frozenset(), [], {}],
    Point(1, 2),
    MyResource(1, [Point(3, 4), {"p": Point(5, 6)}]),
    Node("root", [Node("a"), Node("b", [Node("c", attrs={"k": (1, 2)})])], {"x": {1, 2}}),
    Box(Box(Box([Box(None)]))),
    Box(Point),
    Box(enact.Ref),
]


@pytest.mark.parametrize("value", ROUND_TRIP_VALUES, ids=repr)
def test_round_trip(store: enact.Store, value: Any) -> None:
    out = _roundtrip(store, value)
    assert out == value
    assert type(out) is type(value)
    with store:
        assert enact.commit(out) == enact.commit(value)


def test_round_trip_preserves_exact_types_inside_containers(store: enact.Store) -> None:
    value = [1, True, 1.0, (1,), [1], {1}, frozenset({1}), b"1", "1", None]
    out = _roundtrip(store, value)
    assert [type(x) for x in out] == [type(x) for x in value]
    assert out == value


def test_float_special_values(store: enact.Store) -> None:
    out = _roundtrip(store, [math.nan, -0.0, 0.0, 5e-324])
    assert math.isnan(out[0])
    assert math.copysign(1.0, out[1]) == -1.0 and math.copysign(1.0, out[2]) == 1.0
    assert out[3] == 5e-324


def test_large_bytes_value(store: enact.Store) -> None:
    payload = random.Random(0).randbytes(10 * 1024 * 1024)
    with store:
        ref = enact.commit(Box(payload))
        out = ref.checkout()
    assert out.value == payload


def test_types_round_trip(store: enact.Store) -> None:
    value = [int, str, type(None), ValueError, collections.abc.Sequence, Any, Point, Color]
    out = _roundtrip(store, value)
    assert all(a is b for a, b in zip(out, value)), out


def test_plain_classes_round_trip_once_registered(store: enact.Store) -> None:
    # A fresh name per run: registration is by name, and the test runs once per store.
    Unregistered = type(f"Unregistered{uuid.uuid4().hex}", (), {})

    with store:
        ref = enact.commit([Unregistered])
        with pytest.raises(enact.UnregisteredResource, match="Unregistered.*register"):
            ref.checkout()
        enact.Registry.get().register_class(Unregistered)
        assert ref.checkout() == [Unregistered]


def test_types_that_are_merely_imported_are_not_loaded(store: enact.Store) -> None:
    # Not registered and not in the fixed table of built-in types.
    for value in (types.FunctionType, types.ModuleType, Opaque, collections.OrderedDict):
        with store:
            ref = enact.commit(value)
            with pytest.raises(enact.UnregisteredResource, match=value.__qualname__):
                ref.checkout()


def test_enum_members_round_trip(store: enact.Store) -> None:
    out = _roundtrip(store, [Color.RED, Level.HIGH, {"c": Color.GREEN}])
    assert out == [Color.RED, Level.HIGH, {"c": Color.GREEN}]
    assert out[0] is Color.RED and type(out[1]) is Level
    with store:
        assert enact.commit(Color.RED) != enact.commit(Color.GREEN)


def test_functions_round_trip_only_when_registered(store: enact.Store) -> None:
    out = _roundtrip(store, [registered_function, registered_len])
    assert out[0] is registered_function
    assert out[0](3) == 6 and out[1]([1, 2]) == 2
    for function in (module_level_function, max):
        with store:
            ref = enact.commit(function)
            with pytest.raises(enact.UnregisteredResource, match=function.__name__):
                ref.checkout()


def test_modules_round_trip_once_registered(store: enact.Store) -> None:
    fresh = types.ModuleType(f"enact_test_{uuid.uuid4().hex}")
    with store:
        ref = enact.commit({"fresh": fresh})
        with pytest.raises(enact.UnregisteredResource, match=f"module '{fresh.__name__}'"):
            ref.checkout()
    enact.register(json)
    enact.register(math)
    out = _roundtrip(store, {"json": json, "math": math})
    assert out["json"] is json and out["math"] is math


def test_loading_never_imports_modules(store: enact.Store) -> None:
    with store:
        ref = enact.commit(ModuleReference("enact_test_module_that_does_not_exist"))
        with pytest.raises(enact.UnregisteredResource, match="enact_test_module_that_does_not"):
            ref.checkout()
        ref = enact.commit(FunctionReference("enact_test_not_imported", "f"))
        with pytest.raises(enact.UnregisteredResource, match="enact_test_not_imported"):
            ref.checkout()
        ref = enact.commit(TypeReference("enact_test_not_imported", "T"))
        with pytest.raises(enact.UnregisteredResource, match="enact_test_not_imported"):
            ref.checkout()


def test_local_types_and_lambdas_are_stored_by_name_but_cannot_be_loaded(
    store: enact.Store,
) -> None:
    class Local:
        pass

    with store:
        for value in (Local, lambda: None):
            ref = enact.commit(value)
            with pytest.raises(enact.UnregisteredResource, match="<locals>|<lambda>"):
                ref.checkout()


# Equality and isolation --------------------------------------------------------


def test_equal_values_give_equal_refs(store: enact.Store) -> None:
    with store:
        a = enact.commit(Node("n", [Point(1, 2)], {"a": 1, "b": 2}))
        b = enact.commit(Node("n", [Point(1, 2)], {"b": 2, "a": 1}))
        c = enact.commit(Node("n", [Point(1, 3)], {"a": 1, "b": 2}))
        assert a == b and a.digest == b.digest
        assert a != c
        assert enact.commit({3, 1, 2}) == enact.commit({2, 3, 1})


def test_modifying_a_committed_object_does_not_change_its_ref(store: enact.Store) -> None:
    value = Node("n", [Point(1, 2)], {"a": [1]})
    with store:
        ref = enact.commit(value)
        value.name = "changed"
        value.children.append(Point(0, 0))
        value.attrs["a"].append(2)
        assert ref.checkout() == Node("n", [Point(1, 2)], {"a": [1]})


def test_modifying_a_checked_out_object_does_not_change_its_ref(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Node("n", [], {"a": [1]}))
        out = ref.checkout()
        out.name = "changed"
        out.attrs["a"].append(2)
        out.children.append(Node("new"))
        assert ref.checkout() == Node("n", [], {"a": [1]})
        assert ref.checkout() is not ref.checkout()


# ResourceBase interface ---------------------------------------------------------


def test_resource_interface() -> None:
    value = MyResource(1, [2])
    assert MyResource.field_names() == ("x", "y")
    assert value.field_values() == (1, [2])
    assert list(value.field_items()) == [("x", 1), ("y", [2])]
    assert MyResource.from_fields({"x": 3, "y": [4]}) == MyResource(3, [4])
    assert MyResource.type_id() == f"{__name__}.MyResource"
    assert MyResource.type_key().name == MyResource.type_id()
    assert str(MyResource.type_key()) == MyResource.type_id()
    assert list(MyResource.field_descriptors()) == [enact.types.Int(), enact.types.List()]
    assert isinstance(value, enact.ResourceBase)


def test_to_resource_dict() -> None:
    """0.4's view: a dict of field values tagged with the type; it digests like the resource."""
    value = Box([Point(1, 2), (3,)])
    as_dict = value.to_resource_dict()
    assert isinstance(as_dict, enact.ResourceDict) and as_dict.type_info == Box.type_key()
    assert as_dict == {
        "value": [{"x": 1, "y": 2}, {"values": [3]}],
    }
    point, wrapped = as_dict["value"]
    assert point.type_info == Point.type_key()
    assert wrapped.type_info.name == "enact.wrappers.TupleWrapper"
    assert enact.digests.digest(as_dict) == enact.resource_digest(value)
    assert enact.resource_registry.from_resource_dict(as_dict) == value


def test_resource_set_from_updates_in_place() -> None:
    target = MyResource(1, [1])
    alias = target
    target.set_from(MyResource(2, [3]))
    assert alias == MyResource(2, [3])
    with pytest.raises(TypeError, match="Point"):
        target.set_from(Point(1, 2))


def test_immutable_resource_set_from_accepts_only_an_equal_value() -> None:
    point = Point(1, 2)
    point.set_from(Point(1, 2))
    assert point == Point(1, 2)
    with pytest.raises(TypeError, match=r"immutable.*Point\(x=1, y=3\)"):
        point.set_from(Point(1, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 5  # type: ignore[misc]


def test_from_fields_for_fields_without_init() -> None:
    out = NoInit.from_fields({"a": 1, "b": 2})
    assert (out.a, out.b) == (1, 2)


@enact.register
@dataclasses.dataclass
class NoInit(enact.Resource):
    a: int
    b: int = dataclasses.field(init=False, default=0)


def test_resource_with_init_false_field_round_trips(store: enact.Store) -> None:
    value = NoInit(1)
    value.b = 7
    out = _roundtrip(store, value)
    assert (out.a, out.b) == (1, 7)


@enact.register
class Handmade(enact.ResourceBase):
    """A resource written against the abstract interface, without dataclasses."""

    def __init__(self, a: Any, b: Any) -> None:
        self.a, self.b = a, b

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return ("a", "b")

    def field_values(self) -> tuple[Any, ...]:
        return (self.a, self.b)

    @classmethod
    def from_fields(cls, fields: Any) -> Handmade:
        return cls(fields["a"], fields["b"])

    def set_from(self, other: Any) -> None:
        self.a, self.b = other.a, other.b

    def __eq__(self, other: object) -> bool:
        return type(other) is Handmade and (other.a, other.b) == (self.a, self.b)


def test_hand_written_resource_base_subclass(store: enact.Store) -> None:
    value = Handmade([1, (2,)], Handmade(None, b"x"))
    out = _roundtrip(store, value)
    assert out == value and type(out.b) is Handmade
    assert list(value.field_items()) == [("a", [1, (2,)]), ("b", value.b)]
    assert value.to_resource_dict().type_info.name == Handmade.type_id()
    target = Handmade(0, 0)
    target.set_from(value)
    assert target == value


# Wrapper helpers ----------------------------------------------------------------


def test_wrap_and_unwrap() -> None:
    """0.4's rule: ``wrap`` gives a resource for every value; plain values get a wrapper
    that digests like the value itself."""
    assert enact.wrap(5) == enact.resource_registry.IntWrapper(5)
    assert enact.wrap([1]) == enact.resource_registry.ListWrapper([1])
    assert enact.resource_digest(enact.wrap([1, (2,)])) == enact.resource_digest([1, (2,)])
    assert enact.wrap(Point(1, 2)) == Point(1, 2)
    assert isinstance(enact.wrap(Point), enact.resource_registry.ResourceTypeWrapper)
    assert enact.unwrap(enact.wrap(Point)) is Point
    wrapped = enact.wrap(Die(3))
    assert wrapped == DieWrapper(3)
    assert enact.unwrap(wrapped).sides == 3
    assert enact.unwrap(5) == 5
    assert enact.unwrap(enact.wrap((1, 2))) == (1, 2)
    assert enact.unwrap(enact.wrap({1, 2})) == {1, 2}
    assert enact.to_python_type(enact.types.Int()) is int
    assert enact.from_python_type(int) == enact.types.Int()
    with pytest.raises(enact.MissingWrapperError, match="Opaque"):
        enact.wrap(Opaque())
    with pytest.raises(enact.MissingWrapperError, match="Opaque"):
        enact.wrap(Opaque)


def test_deepcopy_is_independent() -> None:
    value = Node("n", [Node("c")], {"d": Die(6), "t": (1, [2])})
    copy = enact.deepcopy(value)
    assert copy is not value
    assert copy.children == value.children and copy.children[0] is not value.children[0]
    assert copy.attrs["d"] is not value.attrs["d"] and copy.attrs["d"].sides == 6
    copy.attrs["t"][1].append(3)
    assert value.attrs["t"] == (1, [2])
    with pytest.raises(enact.FieldTypeError):
        enact.deepcopy(Opaque())


def test_set_wrapped_value_default_and_failure() -> None:
    target, src = Die(4), Die(20)
    DieWrapper.set_wrapped_value(target, src)
    assert target.sides == 20
    with pytest.raises(TypeError, match="set_wrapped_value"):
        DieWrapper.set_wrapped_value(1, 2)  # type: ignore[arg-type]


# Unsupported values -------------------------------------------------------------


def test_unsupported_type_names_type_and_field_path(store: enact.Store) -> None:
    with store:
        with pytest.raises(enact.FieldTypeError) as info:
            enact.commit(Node("n", [Node("c", attrs={"bad": Opaque()})]))
    message = str(info.value)
    assert "Opaque" in message
    assert "Node.children[0].attrs['bad']" in message
    assert isinstance(info.value, TypeError)


def test_unsupported_top_level_value(store: enact.Store) -> None:
    with store, pytest.raises(enact.FieldTypeError, match="Opaque"):
        enact.commit(Opaque())


def test_unsupported_value_inside_tuple_and_set(store: enact.Store) -> None:
    with store:
        with pytest.raises(enact.FieldTypeError, match=r"Opaque.*Box\.value"):
            enact.commit(Box((1, Opaque())))
        with pytest.raises(enact.FieldTypeError, match="Opaque"):
            enact.commit({Opaque()})


def test_namedtuple_is_not_silently_stored_as_tuple(store: enact.Store) -> None:
    with store, pytest.raises(enact.FieldTypeError, match="Pair"):
        enact.commit(Pair(1, 2))


def test_non_str_dict_keys_are_rejected(store: enact.Store) -> None:
    with store:
        for key in (1, b"k", (1,), None, 1.5):
            with pytest.raises(enact.FieldTypeError, match=r"dict keys must be str") as info:
                enact.commit(Box({"ok": 1, key: 2}))
            assert type(key).__qualname__ in str(info.value)
            assert "Box.value" in str(info.value)


def test_unregistered_resource_class_is_rejected(store: enact.Store) -> None:
    with store:
        with pytest.raises(enact.FieldTypeError, match=r"NotRegistered.*not registered"):
            enact.commit(Box(NotRegistered(1)))
        with pytest.raises(enact.FieldTypeError, match=r"NotRegistered"):
            enact.commit(NotRegistered)


def test_missing_field_value_is_reported() -> None:
    value = MyResource.__new__(MyResource)
    value.x = 1
    with pytest.raises(enact.FieldTypeError, match="'y'"):
        enact.resource_digest(value)


# Cycles -------------------------------------------------------------------------


def _assert_cycle(value: Any, type_name: str) -> None:
    with pytest.raises(enact.SerializationError) as info:
        enact.resource_digest(value)
    assert isinstance(info.value, enact.CycleError)
    assert "contains itself" in str(info.value) and type_name in str(info.value)


def test_cycles_raise_a_clear_error(store: enact.Store) -> None:
    items: list[Any] = [1]
    items.append(items)
    _assert_cycle(items, "list")

    mapping: dict[str, Any] = {}
    mapping["self"] = [mapping]
    _assert_cycle(mapping, "dict")

    node = Node("n")
    node.children.append(Box(node))
    _assert_cycle(node, "Node")

    box = Box(None)
    box.value = (box,)
    _assert_cycle(box, "Box")

    with store, pytest.raises(enact.CycleError):
        enact.commit(items)


class Chain:
    def __init__(self) -> None:
        self.next: Chain | None = None


@enact.register
@dataclasses.dataclass
class ChainWrapper(enact.TypeWrapper[Chain]):
    next: Any

    @classmethod
    def wrapped_type(cls) -> type[Chain]:
        return Chain

    @classmethod
    def wrap(cls, value: Chain) -> ChainWrapper:
        return cls(value.next)

    def unwrap(self) -> Chain:
        chain = Chain()
        chain.next = self.next
        return chain


def test_cycle_through_a_type_wrapper_is_a_cycle_error() -> None:
    chain = Chain()
    chain.next = chain
    _assert_cycle(chain, "Chain")


def test_shared_substructure_is_not_a_cycle(store: enact.Store) -> None:
    shared = [1, 2]
    point = Point(0, 0)
    out = _roundtrip(store, Box([shared, shared, {"p": point, "q": point}, (shared,)]))
    assert out.value == [[1, 2], [1, 2], {"p": point, "q": point}, ([1, 2],)]


def test_too_deep_nesting_is_a_serialization_error() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(enact.SerializationError, match="nested too deeply"):
        enact.resource_digest(value)
