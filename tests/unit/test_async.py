"""Async flows: invoke_async, gather order, replay, concurrent input requests."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import flows
import pytest

import enact
from enact.records import CallArgs


@pytest.fixture
def store() -> Iterator[enact.Store]:
    flows.CALLS.clear()
    with enact.InMemoryStore() as s:
        yield s


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def outputs(inv: enact.Invocation) -> list:
    return [c.get_output() for c in inv.get_children()]


def test_invoke_async_records_async_and_sync_children(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.mixed_async))
    assert [p for p, _ in inv.walk()] == [(), (0,), (1,), (2,), (2, 0), (2, 1)]
    assert inv.get_output() == sum(outputs(inv))
    assert enact.invocation_summary(inv, show_output=False).splitlines() == [
        "->mixed_async() ",  # 0.4's separating space stays when the output is not shown
        "  ->roll_die(6) ",
        "  ->roll_die_async(6) ",
        "  ->sequential_async(2) ",
        "    ->roll_die_async(6) ",
        "    ->roll_die_async(6) ",
    ]


def test_invoke_async_accepts_sync_targets(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.roll_sum, (2,)))
    assert inv.get_output() == sum(outputs(inv))


def test_invoke_rejects_async_targets(store: enact.Store) -> None:
    with pytest.raises(TypeError, match="invoke_async"):
        enact.invoke(flows.sequential_async, (1,))


def test_gather_records_children_in_start_order(store: enact.Store) -> None:
    # Child i sleeps 10 * (4 - i) ms: they finish in reverse order.
    inv = run(enact.invoke_async(flows.gather_flow, (4,)))
    delays = [c.get_input() for c in inv.get_children()]
    assert delays == [CallArgs([d], {}) for d in (40, 30, 20, 10)]
    assert inv.get_output() == outputs(inv)
    for child in inv.get_children():
        assert len(child.get_children()) == 1  # each child's own roll stays with it
    again = run(enact.invoke_async(flows.gather_flow, (4,)))
    assert [c.get_input() for c in again.get_children()] == delays


def test_replay_async_reuses_gathered_children(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.gather_flow, (4,)))
    flows.CALLS.clear()
    replayed = run(inv.rewind(1).replay_async())
    assert flows.CALLS == {"slow_then_roll": 1, "roll_die": 1}
    assert outputs(replayed)[:3] == outputs(inv)[:3]
    flows.CALLS.clear()
    replayed = run(inv.rewind_to((1, 0)).replay_async())
    # Children 0 is reused; 1 is re-entered (its roll re-runs); 2 and 3 run fresh.
    assert flows.CALLS == {"slow_then_roll": 3, "roll_die": 3}
    assert replayed.get_child(0) == inv.get_child(0)


def test_replay_async_of_sequential_flow(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.sequential_async, (5,)))
    flows.CALLS.clear()
    replayed = run(inv.rewind(2).replay_async())
    assert flows.CALLS == {"roll_die_async": 2}
    assert outputs(replayed)[:3] == outputs(inv)[:3]
    assert replayed.get_output() == sum(outputs(replayed))


def test_sync_replay_of_an_async_flow_is_an_error(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.sequential_async, (2,)))
    with pytest.raises(TypeError, match="invoke_async"):
        inv.rewind(1).replay()


def test_async_invokables_replay_with_state(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.AsyncAccumulatorFlow(), (3,)))
    totals = outputs(inv)
    flows.CALLS.clear()
    replayed = run(inv.rewind(1).replay_async())
    assert flows.CALLS == {"AsyncAccumulator": 1}
    assert outputs(replayed)[:2] == totals[:2]
    assert replayed.get_child(2).request().invokable() == flows.AsyncAccumulator(totals[1])


def test_async_invokable_outside_invoke_just_runs() -> None:
    assert run(flows.AsyncAccumulator(5)(1)) >= 6


def test_async_exceptions_are_recorded(store: enact.Store) -> None:
    with pytest.raises(ValueError, match="async boom") as info:
        run(enact.invoke_async(flows.calls_fail_async, ("async boom",)))
    inv = info.value.invocation  # type: ignore[attr-defined]
    assert inv.get_raised_here() is False
    assert inv.get_child(1).get_raised_here() is True
    assert inv.get_raised().type_name == "ValueError"
    wrapped = run(enact.invoke_async(flows.fail_async, ("x",), wrap_exceptions=True))
    assert wrapped.get_raised().str_representation == "x"


def test_child_still_running_when_parent_returns(store: enact.Store) -> None:
    async def main() -> None:
        with pytest.raises(enact.IncompleteSubinvocationError, match=r"forgets_child\(\)"):
            await enact.invoke_async(flows.forgets_child)
        await asyncio.sleep(0.1)  # let the orphan finish inside this loop

    run(main())


def test_child_still_running_when_parent_raises(store: enact.Store) -> None:
    async def main() -> None:
        with pytest.raises(
            enact.IncompleteSubinvocationError,
            match=r"fails_while_child_runs\(\) returned while child call #0 was still running",
        ) as info:
            await enact.invoke_async(flows.fails_while_child_runs)
        assert isinstance(info.value.__context__, ValueError)  # the error it raised
        await asyncio.sleep(0.1)

    run(main())


def test_child_never_awaited(store: enact.Store) -> None:
    with pytest.raises(enact.IncompleteSubinvocationError, match="had not started"):
        run(enact.invoke_async(flows.never_awaits_child))


def test_concurrent_input_requests_are_all_pending(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.ask_two_concurrently))
    pending = inv.pending_input_requests()
    assert [(path, r.for_value()) for path, r in pending] == [((0, 0), "first"), ((1, 0), "second")]
    assert inv.get_raised_here() is False  # both requests only pass through the parent
    # Answer them one by one.
    inv = run(enact.continue_invocation_async(inv, 3))
    assert [(p, r.for_value()) for p, r in inv.pending_input_requests()] == [((1, 0), "second")]
    flows.CALLS.clear()
    inv = run(enact.continue_invocation_async(inv, 4))
    assert inv.successful() and inv.get_output() == 34
    assert flows.CALLS == {"ask_async": 1}  # only the call waiting for the answer re-ran


def test_concurrent_requests_can_be_answered_in_any_order(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.ask_two_concurrently))
    inv = run(enact.continue_invocation_async(inv, 7, path=(1, 0)))
    assert [r.for_value() for _, r in inv.pending_input_requests()] == ["first"]
    inv = run(enact.continue_invocation_async(inv, 1))
    assert inv.get_output() == 17


def test_identical_concurrent_requests_get_their_own_answers(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.ask_same_concurrently))
    (first_path, first), (second_path, second) = inv.pending_input_requests()
    assert first == second and first_path != second_path
    inv = run(enact.continue_invocation_async(inv, 5, path=second_path))
    assert [p for p, _ in inv.pending_input_requests()] == [first_path]
    inv = run(first.continue_invocation_async(inv, 6))
    assert inv.get_output() == [6, 5]


def test_exception_resource_is_returned_by_invoke_async(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.ask_async, ("q",)))
    assert isinstance(inv.get_raised(), enact.InputRequest)
    assert inv.get_raised_here() is False


def test_concurrent_requests_nested_in_async_flow(store: enact.Store) -> None:
    inv = run(enact.invoke_async(flows.ask_nested_async))
    paths = [path for path, _ in inv.pending_input_requests()]
    assert paths == [(0, 0, 0), (0, 1, 0)]
    answered = run(enact.continue_invocation_async(inv, 1, path=(0, 1, 0)))
    done = run(enact.continue_invocation_async(answered, 2))
    assert done.successful()
    assert done.get_output() == 21 + done.get_child(1).get_output()


def test_store_context_follows_tasks(store: enact.Store) -> None:
    async def main() -> list[enact.Invocation]:
        flows_ = (enact.invoke_async(flows.sequential_async, (n,)) for n in range(3))
        return list(await asyncio.gather(*flows_))

    invocations = run(main())
    assert [len(inv.get_children()) for inv in invocations] == [0, 1, 2]


def test_async_file_store(tmp_path: Any) -> None:
    flows.CALLS.clear()
    with enact.FileStore(tmp_path):
        inv = run(enact.invoke_async(flows.gather_flow, (3,)))
    with enact.FileStore(tmp_path):
        replayed = run(inv.rewind(1).replay_async())
        assert outputs(replayed)[:2] == outputs(inv)[:2]
