"""The pieces behind enact 0.4 compatibility, one by one (the differential suite in
``tests/compat`` runs whole 0.4 programs)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import typing
from pathlib import Path
from typing import Any, Iterator

import flows
import pytest

import enact
from enact import contexts, field_values, inspection, type_inference, types
from enact.context import active_store, store_for


@pytest.fixture
def store() -> Iterator[enact.Store]:
    flows.CALLS.clear()
    with enact.InMemoryStore() as s:
        yield s


@enact.register
@dataclasses.dataclass
class Pair(enact.Resource):
    a: Any
    b: Any = None


@enact.register
class Refused(enact.ExceptionResource):
    pass


# Objects from a store remember it ----------------------------------------------------


def test_invocations_and_refs_work_after_the_block() -> None:
    with enact.InMemoryStore() as store:
        invocation = enact.invoke(flows.roll_sum, (3,))
        ref = store.commit(Pair(1))
    assert active_store() is None
    assert len(invocation.get_children()) == 3
    assert invocation.get_child(0).get_input() == enact.CallArgs([6], {})
    assert invocation.request().invokable() is flows.roll_sum
    assert enact.invocation_summary(invocation).startswith("->roll_sum(3) = ")
    assert [p for p, _ in invocation.walk()] == [(), (0,), (1,), (2,)]
    rewound = invocation.rewind_leaves(1)
    replayed = rewound.replay()
    assert replayed.get_children()[:2] == invocation.get_children()[:2]
    assert active_store() is None  # replay entered the store only while it ran
    assert ref.checkout() == Pair(1) and ref() == Pair(1)
    with ref.modify() as value:
        value.a = 2
    assert ref.checkout() == Pair(2)
    assert store_for(invocation) is store and store_for(ref) is store


def test_an_active_store_takes_precedence(tmp_path: Path) -> None:
    first, second = enact.InMemoryStore(), enact.FileStore(tmp_path)
    with first:
        invocation = enact.invoke(flows.roll_sum, (1,))
    with second:
        assert store_for(invocation) is first  # second does not hold it
        assert len(invocation.get_children()) == 1
        in_second = enact.invoke(flows.roll_sum, (1,))
        assert store_for(in_second) is second
        ref = second.commit(Pair(3))
    with first:
        assert ref.checkout() == Pair(3)  # first lacks it: the ref's own store answers
        assert not first.has(ref)


def test_values_checked_out_remember_the_store_of_their_refs() -> None:
    with enact.InMemoryStore() as store:
        inner = store.commit(Pair("inner"))
        outer = store.commit(Pair(inner))
    assert outer.checkout().a.checkout() == Pair("inner")
    detached = enact.Ref(inner.digest)
    assert not detached.is_cached()
    with pytest.raises(enact.NoActiveStore, match="with store:"):
        detached.checkout()
    inner._clear_cache()
    with pytest.raises(enact.NoActiveStore):
        inner.checkout()


# Replay: exceptions are retried; overrides; edited records ---------------------------


def test_a_replayed_invocation_whose_refs_were_edited_is_committed(store: enact.Store) -> None:
    invocation = enact.invoke(flows.roll_sum, (2,))
    with invocation.response.modify() as response:
        response.output = enact.commit(100)
    assert invocation.get_output() == 100
    flows.CALLS.clear()
    assert invocation.replay().get_output() == 100  # reused as edited, nothing ran
    assert flows.CALLS == {}
    invocation.clear_output()
    assert not invocation.complete()
    replayed = invocation.replay()
    assert replayed.get_output() == sum(c.get_output() for c in invocation.get_children())


def test_replay_context_takes_refs_and_overrides(store: enact.Store) -> None:
    recorded = enact.invoke(flows.calls_fail, ("no",), wrap_exceptions=True)
    with enact.ReplayContext(
        subinvocations=[enact.commit(recorded)], exception_override=lambda ref: enact.commit(7)
    ) as context:
        assert flows.calls_fail("no") == 7
    assert [c.get_output() for c in context.invocations()] == [7]


def test_a_call_whose_exception_cannot_be_recorded_is_a_build_failure(store: enact.Store) -> None:
    class Unregistered(enact.ExceptionResource):
        pass

    @enact.register
    def raise_unregistered() -> int:
        raise Unregistered("x")

    @enact.register
    def calls_it() -> int:
        return raise_unregistered()

    with pytest.raises(enact.InvocationBuildFailure, match="raise_unregistered.*Unregistered"):
        enact.invoke(calls_it)


def test_exception_resources_store_their_args_or_their_fields(store: enact.Store) -> None:
    plain = store.commit(Refused("no", 3)).checkout()
    assert type(plain) is Refused and plain.args == ("no", 3) and str(plain) == "('no', 3)"
    assert Refused.field_names() == ("args",)
    assert flows.Rejected.field_names() == ("reason", "code")
    assert store.commit(flows.Rejected("why", 2)).checkout() == flows.Rejected("why", 2)
    with pytest.raises(TypeError, match="cannot be set in place"):
        plain.set_from(Refused())


def test_unreplayable_call_names_the_function(store: enact.Store) -> None:
    def local(x: int) -> int:
        return flows.roll_die(x)

    invocation = enact.invoke(local, (6,))
    with pytest.raises(enact.ReplayError, match="local") as info:
        invocation.rewind().replay()
    assert isinstance(info.value, enact.UnregisteredResource)


# Invokables ------------------------------------------------------------------------


def test_invoke_method_and_types(store: enact.Store) -> None:
    invocation = flows.Stringify().invoke(enact.commit(3))
    assert invocation.get_output() == "3" and invocation.get_input() == 3
    assert flows.Stringify().invoke(4).get_output() == "4"  # a plain value works too
    assert flows.Accumulator.get_input_type() is int
    assert flows.Stringify.get_output_type() is str
    assert enact._InvokableBase is enact.invokables.AnyInvokable

    @enact.register
    class NoInput(enact.AsyncInvokable):
        async def call(self) -> int:
            return 1

    assert asyncio.run(NoInput().invoke()).get_output() == 1
    assert NoInput.get_input_type() is type(None)


def test_builder_records_the_calls_made_inside_it(store: enact.Store) -> None:
    builder = enact.invocations.Builder(flows.Stringify(), enact.commit(2))
    with builder:
        assert builder._children is None
        flows.roll_die(6)
        assert builder.call() == "2"
    assert builder.completed and builder.invocation.get_output() == "2"
    assert len(builder._children or []) == 1


def test_invocation_generator_send_is_a_generators_send(store: enact.Store) -> None:
    generator = enact.InvocationGenerator.from_callable(flows.ask_twice)
    with pytest.raises(TypeError, match="non-None"):
        generator.send(1)
    first = generator.send(None)
    assert isinstance(first, enact.InputRequest) and not generator.complete
    second = generator.send(1)
    assert isinstance(second, enact.InputRequest)
    with pytest.raises(StopIteration):
        generator.send(2)
    assert generator.complete and generator.invocation.get_output() == [1, 2]
    with pytest.raises(StopIteration):
        generator.send(3)


def test_input_request_for_value_is_a_ref(store: enact.Store) -> None:
    invocation = enact.invoke(flows.human_rolls_die)
    request = invocation.get_raised()
    assert isinstance(request.for_value, enact.Ref)
    assert request.for_value() == request.requested_for == "Please roll a die."
    with enact.InMemoryStore():  # another store: the ref still answers
        assert request.for_value.checkout() == "Please roll a die."


# Field values, wrappers and resource dicts ---------------------------------------------


def test_field_value_wrappers_digest_like_their_values() -> None:
    for value in (None, True, 3, 2.5, "s", b"b", [1, [2]], {"k": (1,)}, int, Pair):
        wrapped = enact.wrap(value)
        assert isinstance(wrapped, enact.TypeWrapperBase)
        assert enact.resource_digest(wrapped) == enact.resource_digest(value), value
        assert enact.unwrap(wrapped) == value
    as_dict = enact.wrap(5).to_resource_dict()
    assert enact.digests.digest(as_dict) == enact.resource_digest(5)
    with pytest.raises(enact.FieldTypeError, match="wraps int values, not str"):
        field_values.IntWrapper.wrap("5")


def test_resource_dicts_round_trip_and_are_checked() -> None:
    value = Pair({1, 2}, [Pair(int), Pair((1, "x"))])
    as_dict = value.to_resource_dict()
    assert field_values.from_resource_dict(as_dict) == value
    assert enact.resource_digest(as_dict) == enact.resource_digest(value)
    assert enact.JsonSerializer().deserialize(enact.JsonSerializer().serialize(as_dict)) == value
    broken = enact.ResourceDict(Pair, {"a": 1})
    with pytest.raises(enact.FieldTypeError, match="fields"):
        enact.resource_digest(broken)
    with pytest.raises(TypeError, match="ResourceDict"):
        field_values.from_resource_dict({"a": 1})  # type: ignore[arg-type]


def test_set_from_copies_and_updates_in_place() -> None:
    shared = Pair(1)
    target = Pair(shared, [1])
    alias = target.b
    target.set_from(Pair(Pair(2), [3, 4]))
    assert target.a is shared and shared == Pair(2)  # nested resources updated in place
    assert target.b is alias and alias == [3, 4]  # mutable wrapped values too
    source = Pair(Pair(5), {"k": [1]})
    target.set_from(source)
    source.b["k"].append(2)
    assert target.b == {"k": [1]}  # copied, not shared


# Refs, packing and custom ref types ----------------------------------------------------


@enact.register
@dataclasses.dataclass
class Reversed(enact.Resource):
    data: bytes


@enact.register
class ReversingRef(enact.Ref):
    """Stores a value's JSON reversed: a stand-in for an encrypting ref type."""

    @classmethod
    def pack(cls, resource: Any) -> Any:
        data = enact.JsonSerializer().serialize(resource)[::-1]
        ref = cls.from_resource(resource)
        packed = Reversed(data).to_resource_dict()
        return ref, enact.references.PackedResource(packed, ref.to_resource_dict(), set(), set())

    def unpack(self, packed: Any) -> Any:
        stored = field_values.from_resource_dict(packed.data)
        return enact.JsonSerializer().deserialize(stored.data[::-1])


def test_custom_ref_types_store_the_packed_form(tmp_path: Path) -> None:
    store = enact.Store(enact.FileBackend(tmp_path), ref_type=ReversingRef)
    ref = store.commit(Pair("secret"))
    assert type(ref) is ReversingRef and store.has(ref)
    assert store.checkout(ref) == Pair("secret")
    stored = b"".join(p.read_bytes() for p in (tmp_path / "objects").rglob("*") if p.is_file())
    assert b"secret" not in stored and b"terces" in stored
    path = next(p for p in (tmp_path / "objects").rglob("*") if p.is_file())
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    with pytest.raises(enact.ObjectCorrupt):
        enact.Store(enact.FileBackend(tmp_path), ref_type=ReversingRef).checkout(ref)
    with pytest.raises(TypeError, match="ref_type"):
        enact.Store(ref_type=int)  # type: ignore[arg-type]


def test_ref_ids_and_construction() -> None:
    digest = "ab" * 32
    assert enact.Ref(digest).id == digest
    assert enact.Ref.from_id(f'{{"digest": "{digest}"}}') == enact.Ref(digest)
    with pytest.raises(AssertionError, match="string digest"):
        enact.Ref(1234)  # type: ignore[arg-type]
    with pytest.raises(enact.RefError):
        enact.Ref.from_id('{"digest": 3}')
    with enact.InMemoryStore() as store:
        with pytest.raises(enact.ObjectMissing, match="not a digest"):
            store.checkout(enact.Ref("nope"))
        assert store.has_objects(["nope", digest]) == [False, False]


# Store queries and type metadata -------------------------------------------------------


def test_file_backend_keeps_type_metadata(tmp_path: Path) -> None:
    with enact.FileStore(tmp_path):
        enact.commit(Pair(1, [Pair(2)]))
    backend = enact.FileBackend(tmp_path)
    assert backend.get_type(Pair.type_key()) == {"a": None, "b": None}
    assert backend.get_type(flows.Counter.type_key()) is None
    assert asyncio.run(backend.get_type_async(Pair.type_key())) == {"a": None, "b": None}
    backend.register_type(flows.Counter.type_key(), {"value": types.Int()})
    assert enact.FileBackend(tmp_path).get_type(flows.Counter.type_key()) == {
        "value": types.Int()
    }


def test_type_keys_are_read_without_decoding() -> None:
    data = enact.serialization.pack_value([Pair((1,)), {"k": enact.Ref("ab" * 32)}])[0]
    keys = inspection.type_keys(data)
    assert {k.name for k in keys} == {
        "enact.refs.Ref", Pair.type_id(), "enact.wrappers.TupleWrapper",
        "enact.field_values.ListWrapper",
    }  # fmt: skip


# Contexts, types, inference ----------------------------------------------------------


def test_contexts_follow_threads_and_tasks() -> None:
    @contexts.register
    class Scope(contexts.Context):
        pass

    seen: list[Any] = []
    with Scope() as scope:
        worker = threading.Thread(target=lambda: seen.append(Scope.get_current()))
        worker.start()
        worker.join()

        async def in_task() -> Any:
            return Scope.get_current()

        seen.append(asyncio.run(in_task()))
    assert seen == [None, scope]  # a new thread starts empty; tasks inherit
    with pytest.raises(contexts.ContextError, match="exited without being entered"):
        Scope().__exit__(None, None, None)


def test_descriptors_and_inference() -> None:
    assert type_inference.from_annotation(typing.Optional[typing.List[int]]) == types.Union(  # noqa: UP045
        (types.List(types.Int()), types.NoneType())
    )
    assert type_inference.from_annotation(int | None) == types.Union(
        (types.Int(), types.NoneType())
    )
    assert type_inference.from_annotation(Pair) == types.ResourceType(Pair.type_key())
    assert type_inference.to_python_type(types.ResourceType(Pair.type_key())) is Pair
    assert types.ResourceType(enact.Ref.type_key()).pformat() == "enact.refs.Ref (enact)"
    with pytest.raises(ValueError, match="not a type descriptor"):
        types.TypeDescriptor.from_json({"nope": 1})
    with pytest.raises(type_inference.TypeInferenceFailed, match="missing annotation"):
        type_inference.from_annotation(None, strict=True)
