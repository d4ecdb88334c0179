"""Invocations (API.md section 3): what a call records, and its accessors."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Iterator

import flows
import pytest

import enact
from enact.records import BoundMethod, CallArgs
from enact.tree import pack_invocation


@pytest.fixture
def store() -> Iterator[enact.Store]:
    flows.CALLS.clear()
    with enact.InMemoryStore() as s:
        yield s


# Records and accessors -----------------------------------------------------------


def test_invoke_records_the_call_tree(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (3,))
    assert isinstance(inv, enact.Invocation)
    assert inv.successful()
    assert inv.get_input() == CallArgs([3], {})
    children = inv.get_children()
    assert len(children) == 3
    assert inv.get_output() == sum(c.get_output() for c in children)
    for i, child in enumerate(children):
        assert child == inv.get_child(i)
        assert child.get_input() == CallArgs([6], {})
        assert 1 <= child.get_output() <= 6
        assert child.get_children() == []
        assert child.get_raised() is None
        assert child.get_raised_here() is False
    assert inv.get_raised() is None
    assert inv.get_raised_here() is False


def test_request_and_response_records(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    request = inv.request()
    response = inv.response()
    assert isinstance(request, enact.Request)
    assert isinstance(response, enact.Response)
    assert isinstance(inv.request, enact.Ref) and isinstance(inv.response, enact.Ref)
    assert request.invokable() is flows.roll_sum  # functions load as the registered callable
    assert request.input() == CallArgs([2], {})
    assert response.invokable == request.invokable  # a function has no state to change
    assert response.output() == inv.get_output()
    assert response.raised is None
    assert response.raised_here is False
    assert [c.digest for c in response.children] == [c.digest for c in inv.get_children()]
    assert all(isinstance(c, enact.Ref) for c in response.children)


def test_records_are_committed_and_digests_match_the_encoder(store: enact.Store) -> None:
    inv = enact.invoke(flows.two_sums, (2,))
    for _, call in inv.walk():
        # The engine packs records through templates; the generic encoder must agree.
        assert enact.resource_digest(call) == call.digest
        assert enact.resource_digest(call.request()) == call.request.digest
        assert enact.resource_digest(call.response()) == call.response.digest
        assert store.has(call.ref()) and store.has(call.request) and store.has(call.response)
        assert enact.commit(call) == call.ref()
    assert enact.checkout(inv.ref()) == inv


def _digest_cases() -> list[enact.Invocation]:
    cases = [
        enact.invoke(flows.outer, (1,)),
        enact.invoke(flows.calls_fail, ("x",), wrap_exceptions=True),
        enact.invoke(flows.calls_reject, ("no",)),
        enact.invoke(flows.ask_top),
        enact.invoke(flows.counter_flow, (2,)),
        enact.invoke(flows.tally_flow, (2,)),
        enact.invoke(flows.AccumulatorFlow(), (2,)),
        enact.invoke(flows.kwargs_flow),
        asyncio.run(enact.invoke_async(flows.gather_flow, (2,))),
    ]
    cases.append(cases[0].rewind_leaves(3))
    cases.append(enact.continue_invocation(cases[3], 1))
    return cases


def test_template_packed_records_match_the_generic_encoder(store: enact.Store) -> None:
    for case in _digest_cases():
        for _, call in case.walk():
            assert enact.resource_digest(call) == call.digest
            assert enact.resource_digest(call.request()) == call.request.digest
            assert enact.resource_digest(call.response()) == call.response.digest
            assert enact.resource_digest(call.get_input()) == call.request().input.digest
            assert enact.resource_digest(call.get_invokable()) == call.request().invokable.digest


def test_commit_false_keeps_records_out_of_the_store(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,), commit=False)
    assert not store.has(inv.ref())
    assert enact.invoke(flows.roll_sum, (2,)).get_output() >= 2


def test_pack_invocation_matches_the_generic_encoder() -> None:
    request, response = "0f" * 32, "f0" * 32
    for a, b in ((request, response), (response, request)):
        data = pack_invocation(a, b)
        inv = enact.Invocation(enact.Ref(a), enact.Ref(b))
        assert enact.resource_digest(inv) == enact.Invocation(enact.Ref(a), enact.Ref(b)).digest
        from enact.digests import digest_bytes
        from enact.serialization import pack_value

        assert data == pack_value(inv)[0]
        assert digest_bytes(data) == enact.resource_digest(inv)


def test_equal_runs_share_records(store: enact.Store) -> None:
    first = enact.invoke(flows.add, (1, 2))
    second = enact.invoke(flows.add, (1, 2))
    assert first == second and first.digest == second.digest
    assert enact.invoke(flows.add, (1, 3)).digest != first.digest


def test_keyword_arguments_are_recorded(store: enact.Store) -> None:
    inv = enact.invoke(flows.add, (1,), {"b": 5})
    assert inv.get_input() == CallArgs([1], {"b": 5})
    assert inv.get_output() == 6
    nested = enact.invoke(flows.kwargs_flow)
    assert [c.get_input() for c in nested.get_children()] == [
        CallArgs([1], {"b": 2}),
        CallArgs([3], {}),
    ]
    assert nested.get_output() == 6


def test_a_single_argument_need_not_be_a_tuple(store: enact.Store) -> None:
    assert enact.invoke(flows.roll_sum, 2).get_input() == CallArgs([2], {})
    assert enact.invoke(flows.add, [1, 2]).get_output() == 3


def test_registered_functions_run_normally_outside_invoke() -> None:
    assert flows.add(2, 3) == 5
    assert 2 <= flows.roll_sum(2) <= 12  # no store needed, nothing recorded


def test_three_levels_are_recorded(store: enact.Store) -> None:
    inv = enact.invoke(flows.outer, (1,))
    paths = [path for path, _ in inv.walk()]
    assert paths == [(), (0,), (0, 0), (0, 1), (1,), (1, 0), (1, 1)]
    assert inv.get_output() == [c.get_output() for c in inv.get_children()]
    assert inv.call_at((1, 0)).get_input() == CallArgs([11], {})


def test_unregistered_function_can_be_invoked_but_not_replayed(store: enact.Store) -> None:
    def local_roll(sides: int) -> int:
        return flows.roll_die(sides)

    inv = enact.invoke(local_roll, (6,))
    assert 1 <= inv.get_output() <= 6
    assert len(inv.get_children()) == 1
    assert enact.invocation_summary(inv).startswith("->local_roll(6) = ")
    with pytest.raises(enact.RegistryError, match="local_roll"):
        inv.rewind().replay()


def test_unregistered_module_level_function_can_be_invoked_but_not_replayed(
    store: enact.Store,
) -> None:
    # Being imported is not enough: stored data resolves only registered code, so
    # a record cannot make a process run whatever it happens to have imported.
    inv = enact.invoke(flows.unregistered_roll, (6,))
    assert 1 <= inv.get_output() <= 6
    assert enact.invocation_summary(inv).startswith("->unregistered_roll(6) = ")
    with pytest.raises(enact.UnregisteredResource, match=r"flows\.unregistered_roll.*register"):
        inv.rewind(0).replay()
    assert flows.CALLS["unregistered_roll"] == 1


def test_invoke_rejects_what_it_cannot_call(store: enact.Store) -> None:
    with pytest.raises(TypeError, match="cannot invoke"):
        enact.invoke(42)


def test_getting_output_of_a_failed_call_raises(store: enact.Store) -> None:
    inv = enact.invoke(flows.fail, ("x",), wrap_exceptions=True)
    with pytest.raises(ValueError, match="no output"):
        inv.get_output()


# Methods and invokables --------------------------------------------------------------


def test_method_of_a_resource_records_self_as_state(store: enact.Store) -> None:
    counter = flows.Counter(5)
    inv = enact.invoke(counter.increment, (2,))
    assert counter.value == inv.get_output() >= 7
    request_state = inv.request().invokable()
    assert isinstance(request_state, BoundMethod)
    assert request_state.instance == flows.Counter(5)
    post_state = inv.response().invokable()
    assert post_state.instance == flows.Counter(counter.value)
    assert enact.invocation_summary(inv) == (
        f"->Counter(value=5).increment(2) = {counter.value}"
    )


def test_method_of_a_wrapped_type_records_self_as_state(store: enact.Store) -> None:
    tally = flows.Tally(10)
    inv = enact.invoke(tally.add, (1,))
    assert tally.total == inv.get_output()
    # Checking out unwraps: the recorded states come back as Tally objects.
    assert isinstance(inv.request().invokable().instance, flows.Tally)
    assert inv.request().invokable().instance.total == 10
    assert inv.response().invokable().instance.total == tally.total
    assert enact.invocation_summary(inv) == f"->Tally(10).add(1) = {tally.total}"


def test_methods_called_inside_a_flow_are_children(store: enact.Store) -> None:
    inv = enact.invoke(flows.counter_flow, (3,))
    children = inv.get_children()
    assert len(children) == 3
    # Each call's recorded state before it is the state after the previous one.
    for before, after in zip(children, children[1:]):
        assert after.request().invokable == before.response().invokable
    assert children[-1].response().invokable().instance == flows.Counter(inv.get_output())


def test_invokable_without_input(store: enact.Store) -> None:
    dice = flows.DiceRoll(2, 6)
    inv = enact.invoke(dice)
    assert inv.get_input() is None
    assert inv.request().invokable() == flows.DiceRoll(2, 6)
    assert len(inv.get_children()) == 2
    assert inv.get_output() == sum(c.get_output() for c in inv.get_children())
    dice.num_rolls = 3  # the record keeps the version that ran
    assert inv.request().invokable() == flows.DiceRoll(2, 6)
    assert enact.invocation_summary(inv).splitlines()[0].startswith(
        "->DiceRoll(num_rolls=2, sides_per_die=6)(None) = "
    )


def test_invokable_with_input_and_state(store: enact.Store) -> None:
    accumulator = flows.Accumulator(100)
    inv = enact.invoke(accumulator, (5,))
    assert inv.get_input() == 5
    assert inv.request().invokable() == flows.Accumulator(100)
    assert inv.response().invokable() == flows.Accumulator(accumulator.total)
    assert accumulator.total == inv.get_output() >= 105


def test_invokable_outside_invoke_just_runs() -> None:
    assert flows.Accumulator(1)(1) >= 2
    assert flows.Stringify()(3) == "3"


def test_invokable_takes_at_most_one_argument(store: enact.Store) -> None:
    with pytest.raises(TypeError, match="at most one argument"):
        enact.invoke(flows.Accumulator(), (1, 2))


def test_typed_invokable_checks_input_and_output(store: enact.Store) -> None:
    assert enact.invoke(flows.Stringify(), (4,)).get_output() == "4"
    with pytest.raises(enact.InvokableTypeError, match="expects input of type int, got str"):
        enact.invoke(flows.stringify_via, ("4",))
    with pytest.raises(TypeError, match="Stringify expects output of type str, got int"):
        enact.invoke(flows.stringify_via, (4, True))
    with pytest.raises(TypeError, match="expects input of type int, got bool"):
        flows.Stringify()(True)
    with pytest.raises(TypeError, match="expects output of type str, got int"):
        flows.Stringify(broken=True)(4)


def test_invoke_does_not_type_check_the_top_level_call(store: enact.Store) -> None:
    """As in enact 0.4: types are checked where an invokable is called, not by ``invoke``
    (which may be handed anything a replay or an exception override needs)."""
    assert enact.invoke(flows.Stringify(), ("4",)).get_output() == "4"
    assert enact.invoke(flows.Stringify(broken=True), (4,)).get_output() == 4


def test_registration_infers_invokable_types() -> None:
    assert flows.Accumulator._enact_input_type is int
    assert flows.Accumulator._enact_output_type is int
    assert flows.DiceRoll._enact_input_type is type(None)
    with pytest.raises(enact.RegistryError, match="at most one argument") as caught:

        @enact.register
        @dataclasses.dataclass
        class TwoArgs(enact.Invokable):
            def call(self, a: int, b: int) -> int:
                return a + b

    assert isinstance(caught.value, TypeError)  # a decorator misuse is also a TypeError


def test_register_rejects_bound_methods_and_other_objects() -> None:
    class Plain:
        def method(self) -> int:
            return 1

    with pytest.raises(ValueError, match="bound method"):
        enact.register(Plain().method)
    with pytest.raises(TypeError):
        enact.register(42)  # type: ignore[arg-type]


# Exceptions -------------------------------------------------------------------------


def test_native_exception_is_recorded_and_reraised(store: enact.Store) -> None:
    with pytest.raises(ValueError, match="boom") as info:
        enact.invoke(flows.calls_fail, ("boom",))
    inv = info.value.invocation  # type: ignore[attr-defined]
    assert not inv.successful()
    raised = inv.get_raised()
    assert isinstance(raised, enact.NativeException)
    assert raised.type_name == "ValueError"
    assert raised.str_representation == "boom"
    assert "Traceback" in raised.traceback and "raise ValueError(message)" in raised.traceback
    assert inv.get_raised_here() is False  # it passed through from the child
    roll, failed = inv.get_children()
    assert roll.successful()
    assert failed.get_raised() == raised and failed.get_raised_here() is True
    assert enact.invocation_summary(failed) == "->fail(boom) raised ValueError: boom"


def test_wrap_exceptions_returns_the_invocation(store: enact.Store) -> None:
    inv = enact.invoke(flows.fail, ("quiet",), wrap_exceptions=True)
    assert inv.get_raised() == enact.NativeException(
        "ValueError", "quiet", inv.get_raised().traceback
    )
    assert inv.get_raised_here() is True
    inv = enact.invoke(flows.fail, ("quiet",), raise_on_errors=False)
    assert isinstance(inv.get_raised(), enact.NativeException)


def test_custom_exception_type_name_is_qualified(store: enact.Store) -> None:
    with pytest.raises(flows.CustomError) as info:
        enact.invoke(flows.raise_custom)
    raised = info.value.invocation.get_raised()  # type: ignore[attr-defined]
    assert raised.type_name == "flows.CustomError"
    assert raised.str_representation == "custom message"
    summary = enact.invocation_summary(info.value.invocation)  # type: ignore[attr-defined]
    assert summary == "->raise_custom() raised CustomError: custom message"


def test_caught_exception_leaves_parent_successful(store: enact.Store) -> None:
    inv = enact.invoke(flows.catches_fail)
    assert inv.successful() and inv.get_output() == "caught caught"
    assert not inv.get_child(0).successful()


def test_exception_raised_while_handling_a_child_is_raised_here(store: enact.Store) -> None:
    with pytest.raises(KeyError) as info:
        enact.invoke(flows.reraises_other)
    inv = info.value.invocation  # type: ignore[attr-defined]
    assert inv.get_raised().type_name == "KeyError"
    assert inv.get_raised_here() is True
    assert inv.get_child(0).get_raised().type_name == "ValueError"


def test_exception_resource_is_returned_inside_the_invocation(store: enact.Store) -> None:
    inv = enact.invoke(flows.calls_reject, ("no",))
    assert inv.get_raised() == flows.Rejected("no", 7)
    assert isinstance(inv.get_raised(), flows.Rejected)
    assert inv.get_raised_here() is False
    assert inv.get_child(1).get_raised_here() is True
    assert enact.invocation_summary(inv).splitlines()[0] == (
        "->calls_reject(no) raised Rejected: reason='no', code=7"
    )


def test_call_that_changes_its_input_raises_input_changed(store: enact.Store) -> None:
    with pytest.raises(enact.InputChanged, match=r"mutate_input\(\[1\]\) changed its own input"):
        enact.invoke(flows.mutate_input, ([1],))
    assert enact.invoke(flows.copies_input, ([1],)).get_output() == 2


def test_nested_call_that_changes_its_input_raises_input_changed(store: enact.Store) -> None:
    with pytest.raises(enact.InputChanged, match=r"mutate_input\(\[1, 2\]\)") as info:
        enact.invoke(flows.calls_mutate_input)
    inv = info.value.invocation  # type: ignore[attr-defined]
    assert inv.get_raised_here() is False
    child = inv.get_child(0)
    assert child.get_input() == CallArgs([[1, 2]], {})  # the input as it was passed
    assert child.get_raised().type_name == "enact.errors.InputChanged"
    assert child.get_raised_here() is True


def test_invokable_that_changes_its_input_raises_input_changed(store: enact.Store) -> None:
    @enact.register
    @dataclasses.dataclass
    class Appender(enact.Invokable[list, int]):
        def call(self, values: list) -> int:
            values.append(0)
            return len(values)

    with pytest.raises(enact.InputChanged):
        enact.invoke(Appender(), ([1],))


def test_unstorable_output_is_recorded_as_an_error(store: enact.Store) -> None:
    with pytest.raises(enact.FieldTypeError, match="object") as info:
        enact.invoke(flows.calls_unstorable)
    inv = info.value.invocation  # type: ignore[attr-defined]
    assert inv.get_child(0).get_raised_here() is True
    assert inv.get_raised_here() is False


def test_call_whose_state_cannot_be_stored_fails_with_the_real_error(store: enact.Store) -> None:
    with pytest.raises(enact.FieldTypeError, match="object") as info:
        enact.invoke(flows.calls_breaks_own_state)
    inv = info.value.invocation  # type: ignore[attr-defined]
    # The failed call cannot be recorded: its parent records the error as its own.
    assert inv.get_raised_here() is True
    assert "FieldTypeError" in inv.get_raised().type_name
    assert len(inv.get_children()) == 1  # the roll before it


def test_unstorable_input_raises_before_anything_is_recorded(store: enact.Store) -> None:
    with pytest.raises(enact.FieldTypeError):
        enact.invoke(flows.add, (object(),))


def test_errors_reach_the_caller_with_the_store_inactive() -> None:
    with pytest.raises(enact.StoreError, match="no store is active"):
        enact.invoke(flows.add, (1, 2))

