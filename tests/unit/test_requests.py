"""Input requests (API.md section 4): humans are one more distribution."""

from __future__ import annotations

from typing import Iterator

import flows
import pytest

import enact
from enact.requests import answer_inputs, matches_type, pending_input_requests


@pytest.fixture
def store() -> Iterator[enact.Store]:
    flows.CALLS.clear()
    with enact.InMemoryStore() as s:
        yield s


def test_request_input_records_a_partial_invocation(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_dice_user_flow)
    request = inv.get_raised()
    assert isinstance(request, enact.InputRequest)
    assert request.requested_type is int
    assert request.for_value() == "Total number of rolls?"
    assert request.context is None
    assert inv.get_raised_here() is False
    (child,) = inv.get_children()
    assert child.request().invokable() == enact.RequestInput(int, None)
    expected = "RequestInput(requested_type=<class 'int'>, context=None)"
    assert repr(enact.RequestInput(int)) == expected
    assert child.get_raised_here() is True
    assert pending_input_requests(inv) == [((0,), request)]
    assert inv.pending_input_requests() == [((0,), request)]
    assert enact.invocation_summary(inv).splitlines() == [
        "->roll_dice_user_flow() raised InputRequest: input of type int requested for "
        "'Total number of rolls?'",
        "  ->RequestInput(requested_type=<class 'int'>, context=None)(Total number of rolls?) "
        "raised InputRequest: input of type int requested for 'Total number of rolls?'",
    ]


def test_continue_invocation(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_dice_user_flow)
    request = inv.get_raised()
    inv = request.continue_invocation(inv, 2)
    assert inv.get_raised().for_value() == "Please roll a die."
    inv = enact.continue_invocation(inv, 5)
    inv = enact.continue_invocation(inv, 4)
    assert inv.successful() and inv.get_output() == 9
    assert inv.pending_input_requests() == []


def test_invocation_generator_seed_flow(store: enact.Store) -> None:
    answers = {"Total number of rolls?": 3, "Please roll a die.": 6}
    gen = enact.InvocationGenerator.from_callable(flows.roll_dice_user_flow)
    seen = []
    for request in gen:
        assert gen.input_request is request
        assert not gen.complete
        seen.append(request.for_value())
        gen.set_input(answers[request.for_value()])
    assert seen == ["Total number of rolls?"] + ["Please roll a die."] * 3
    assert gen.complete and gen.input_request is None
    assert gen.invocation is not None and gen.invocation.get_output() == 18
    assert [c.get_output() for c in gen.invocation.get_children()] == [3, 6, 6, 6]


def test_completed_calls_are_not_run_again(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.ask_then_roll)
    for _ in gen:
        gen.set_input(100)
    inv = gen.invocation
    assert inv is not None
    assert flows.CALLS["roll_die"] == 3  # two before the request, one after: never repeated
    children = inv.get_children()
    rolls = [c.get_output() for c in children if c.request().invokable() is flows.roll_die]
    assert len(rolls) == 3
    assert inv.get_output() == sum(rolls) + 100


def test_answering_many_requests_reexecutes_no_completed_call(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.roll_dice_user_flow)
    next(gen)
    gen.set_input(20)
    for _ in gen:
        gen.set_input(1)
    assert gen.invocation is not None and gen.invocation.get_output() == 20
    # Each human_rolls_die ran once to ask and once to return its answer; no more.
    assert flows.CALLS["human_rolls_die"] == 40


def test_requests_nested_three_levels_deep(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.ask_top)
    paths = []
    for i, request in enumerate(gen):
        assert request.for_value() == "deep"
        assert request.context == {"level": 3}
        assert gen.invocation is not None
        (path, pending), = gen.invocation.pending_input_requests()
        assert pending == request
        assert len(path) == 3  # ask_top -> ask_middle -> ask_deep -> RequestInput
        paths.append(path)
        gen.set_input(i + 1)
    assert paths == [(1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 1)]
    inv = gen.invocation
    assert inv is not None and inv.get_output() == (1 + 2) * 100 + (3 + 4)
    # Every roll ran exactly once although the flow was resumed four times.
    assert flows.CALLS["roll_die"] == 1 + 2 + 4
    assert inv.call_at((1, 1)).get_output() == 1
    assert inv.call_at((2, 2, 1)).get_output() == 4


def test_nested_request_records_raised_here_only_at_the_request(store: enact.Store) -> None:
    inv = enact.invoke(flows.ask_top)
    assert isinstance(inv.get_raised(), enact.InputRequest)
    flags = {path: call.get_raised_here() for path, call in inv.walk() if call.get_raised()}
    assert flags == {(): False, (1,): False, (1, 1): False, (1, 1, 1): True}


def test_identical_requests_get_their_own_answers(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.ask_twice)
    answers = [11, 22]
    requests = []
    for request in gen:
        requests.append(request)
        gen.set_input(answers.pop(0))
    assert requests[0] == requests[1]  # the same question twice
    assert gen.complete
    assert gen.invocation is not None and gen.invocation.get_output() == [11, 22]


def test_answer_inputs_by_path(store: enact.Store) -> None:
    inv = enact.invoke(flows.ask_twice)
    answered = enact.continue_invocation(inv, 1)
    ((path, request),) = answered.pending_input_requests()
    assert path == (1,)
    with pytest.raises(enact.UnknownInputRequest, match=r"no pending input request at path \(0,\)"):
        answer_inputs(answered, {(0,): 5})
    done = enact.continue_invocation(answered, 2, path=(1,))
    assert done.get_output() == [1, 2]


def test_wrong_type_answer_raises_and_the_request_stays_pending(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.roll_dice_user_flow)
    request = next(gen)
    message = r"'three' \(type str\) does not match the requested type int"
    with pytest.raises(TypeError, match=message):
        gen.set_input("three")
    with pytest.raises(enact.AnswerTypeError):
        gen.set_input(3.0)
    assert gen.input_request is request
    with pytest.raises(enact.InputError, match="still unanswered"):
        next(gen)
    assert gen.invocation is not None
    assert [r for _, r in gen.invocation.pending_input_requests()] == [request]
    gen.set_input(1)  # now a right answer works
    assert next(gen).for_value() == "Please roll a die."


def test_bool_is_not_accepted_for_int(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_dice_user_flow)
    with pytest.raises(enact.AnswerTypeError, match="True"):
        enact.continue_invocation(inv, True)
    assert inv.pending_input_requests()  # nothing changed
    assert enact.continue_invocation(inv, 0).get_output() == 0


def test_matches_type() -> None:
    assert matches_type(1, int) and not matches_type(True, int)
    assert matches_type(1, float) and matches_type(1.5, float) and not matches_type(True, float)
    assert matches_type(None, None) and matches_type(None, type(None))
    assert matches_type("a", int | str) and not matches_type(b"a", int | str)
    assert matches_type(["a", "b"], list[str]) and not matches_type(["a", 1], list[str])
    assert matches_type({"a": 1}, dict[str, int]) and not matches_type({"a": "1"}, dict[str, int])
    assert matches_type((1, "a"), tuple[int, str]) and not matches_type((1, 2), tuple[int, str])
    assert matches_type((1, 2, 3), tuple[int, ...])
    assert matches_type(object(), object) and matches_type(3, "anything")


def test_generic_requested_type_is_checked(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.ask_str_list)
    next(gen)
    with pytest.raises(enact.AnswerTypeError):
        gen.set_input(["a", 2])
    gen.set_input(["a", "b"])
    assert list(gen) == []
    assert gen.invocation is not None and gen.invocation.get_output() == ["a", "b"]


def test_union_requested_type_is_checked(store: enact.Store) -> None:
    @enact.register
    def ask_number_or_name() -> int | str:
        return enact.request_input(int | str, "seat?")

    inv = enact.invoke(ask_number_or_name)
    with pytest.raises(enact.AnswerTypeError):
        enact.continue_invocation(inv, 1.5)
    assert enact.continue_invocation(inv, "window").get_output() == "window"


def test_float_request_accepts_int(store: enact.Store) -> None:
    @enact.register
    def ask_float() -> float:
        return enact.request_input(float, "ratio?")

    inv = enact.invoke(ask_float)
    with pytest.raises(enact.AnswerTypeError):
        enact.continue_invocation(inv, "0.5")
    assert enact.continue_invocation(inv, 1).get_output() == 1


def test_send_answers_and_advances(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.roll_dice_user_flow)
    first = next(gen)
    assert first.for_value() == "Total number of rolls?"
    second = gen.send(2)
    assert second.for_value() == "Please roll a die."
    with pytest.raises(TypeError):
        gen.send("six")
    assert gen.input_request is second
    gen.send(3)
    with pytest.raises(StopIteration):
        gen.send(4)
    assert gen.complete and gen.invocation is not None and gen.invocation.get_output() == 7


def test_set_input_without_a_request(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.roll_dice_user_flow)
    with pytest.raises(enact.InputError, match="iterate first"):
        gen.set_input(1)


def test_flow_without_requests_completes_at_once(store: enact.Store) -> None:
    gen = enact.InvocationGenerator.from_callable(flows.roll_sum, (2,))
    assert list(gen) == []
    assert gen.complete and gen.invocation is not None and gen.invocation.successful()


def test_from_invocation_resumes_a_stored_flow(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_dice_user_flow)
    inv = enact.continue_invocation(inv, 2)
    flows.CALLS.clear()
    gen = enact.InvocationGenerator.from_invocation(inv)
    assert gen.invocation == inv
    prompts = []
    for request in gen:
        prompts.append(request.for_value())
        gen.set_input(5)
    assert prompts == ["Please roll a die."] * 2
    assert gen.invocation is not None and gen.invocation.get_output() == 10
    assert gen.invocation.get_child(0) == inv.get_child(0)


def test_generator_from_invokable_and_input_ref(store: enact.Store) -> None:
    gen = enact.InvocationGenerator(enact.commit(flows.AskInvokable()), enact.commit("how many?"))
    request = next(gen)
    assert request.requested_type is int and request.for_value() == "how many?"
    gen.set_input(4)
    assert list(gen) == []
    assert gen.invocation is not None and gen.invocation.get_output() == 4


def test_request_input_outside_an_invocation() -> None:
    with pytest.raises(enact.InputRequestOutsideInvocation, match="outside a tracked invocation"):
        enact.request_input(int, "number?")


def test_requested_type_from_the_return_annotation(store: enact.Store) -> None:
    inv = enact.invoke(flows.ask_typed)
    assert inv.get_raised().requested_type is str
    with pytest.raises(enact.AnswerTypeError):
        enact.continue_invocation(inv, 1)
    assert enact.continue_invocation(inv, "Ada").get_output() == "Ada"


def test_requested_type_undetermined(store: enact.Store) -> None:
    with pytest.raises(enact.RequestedTypeUndetermined, match="anything"):
        enact.invoke(flows.ask_untyped)


def test_input_request_is_an_exception_resource(store: enact.Store) -> None:
    request = enact.InputRequest(int, "x", {"k": 1})
    assert isinstance(request, enact.ExceptionResource)
    assert enact.checkout(enact.commit(request)) == request
    assert str(request) == "input of type int requested for 'x'"


def test_continue_without_pending_request(store: enact.Store) -> None:
    inv = enact.invoke(flows.add, (1, 2))
    with pytest.raises(enact.InputError, match="no pending input request"):
        enact.continue_invocation(inv, 1)
