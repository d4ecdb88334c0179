"""Rewind and replay (API.md section 3): at any depth, reusing recorded calls.

``flows.CALLS`` counts the bodies that really ran, so each test can check that
replay re-executed exactly the rewound calls and nothing else.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any, Iterator

import flows
import pytest

import enact
from enact.replay import replace_calls
from enact.tree import load


@pytest.fixture
def store() -> Iterator[enact.Store]:
    flows.CALLS.clear()
    flows.SIDES[0] = 6
    with enact.InMemoryStore() as s:
        yield s
    flows.SIDES[0] = 6


def outputs(inv: enact.Invocation) -> list:
    return [c.get_output() for c in inv.get_children()]


# rewind(n) ------------------------------------------------------------------------


def test_rewind_drops_output_and_last_children(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (4,))
    rewound = inv.rewind(1)
    assert not rewound.complete() and not rewound.successful()
    assert enact.invocation_summary(rewound).splitlines()[0] == "->roll_sum(4) incomplete"
    assert [c.digest for c in rewound.get_children()] == [c.digest for c in inv.get_children()[:3]]
    assert rewound.get_input() == inv.get_input()
    assert rewound.get_raised() is None
    with pytest.raises(ValueError, match="no output"):
        rewound.get_output()
    assert inv.successful() and len(inv.get_children()) == 4  # the original is untouched
    assert len(inv.rewind(3).get_children()) == 1
    assert inv.rewind(4).get_children() == []
    assert len(inv.rewind(0).get_children()) == 4 and not inv.rewind(0).complete()
    assert store.has(rewound.ref())


def test_rewind_default_is_one_call(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    assert inv.rewind() == inv.rewind(1)


@pytest.mark.parametrize("n", [-1, 3])
def test_rewind_out_of_range(store: enact.Store, n: int) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    with pytest.raises(ValueError, match="has 2 child calls"):
        inv.rewind(n)


def test_replay_after_rewind_reruns_only_the_rewound_calls(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (10,))
    flows.CALLS.clear()
    replayed = inv.rewind(3).replay()
    assert flows.CALLS == {"roll_sum": 1, "roll_die": 3}
    assert replayed.successful()
    assert outputs(replayed)[:7] == outputs(inv)[:7]
    assert [c.digest for c in replayed.get_children()[:7]] == [
        c.digest for c in inv.get_children()[:7]
    ]
    assert replayed.get_output() == sum(outputs(replayed))


def test_replay_of_a_complete_invocation_runs_nothing(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (3,))
    flows.CALLS.clear()
    assert inv.replay() == inv
    assert flows.CALLS == {}


def test_replay_of_rewind_zero_reruns_only_the_top_call(store: enact.Store) -> None:
    inv = enact.invoke(flows.two_sums, (2,))
    flows.CALLS.clear()
    assert inv.rewind(0).replay() == inv
    assert flows.CALLS == {"two_sums": 1}


def test_invoke_with_replay_from(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (3,))
    flows.CALLS.clear()
    replayed = enact.invoke(flows.roll_sum, (3,), replay_from=inv.rewind(1))
    assert flows.CALLS["roll_die"] == 1
    assert outputs(replayed)[:2] == outputs(inv)[:2]
    by_digest = enact.invoke(flows.roll_sum, (3,), replay_from=inv.rewind(1).digest)
    assert outputs(by_digest)[:2] == outputs(inv)[:2]


def test_replay_retries_recorded_exceptions(store: enact.Store) -> None:
    """As in enact 0.4: calls that returned are reused, calls that raised run again."""
    rewound = enact.invoke(flows.calls_fail, ("boom",), wrap_exceptions=True).rewind(0)
    flows.CALLS.clear()
    with pytest.raises(ValueError, match="boom") as info:
        rewound.replay()
    assert flows.CALLS == {"calls_fail": 1, "fail": 1}  # roll_die was reused, fail retried
    replayed = info.value.invocation  # type: ignore[attr-defined]
    assert replayed.get_raised_here() is False
    assert replayed.get_raised().str_representation == "boom"
    assert replayed.get_child(0) == rewound.get_child(0)
    assert replayed.get_child(1).get_raised_here() is True
    assert replayed.replay(wrap_exceptions=True) == replayed


def test_replay_runs_again_every_kind_of_recorded_exception(store: enact.Store) -> None:
    """An ``ExceptionResource``, an input request and an exception raised in async code
    are retried too; the calls that returned before them are reused."""
    rejected = enact.invoke(flows.calls_reject, ("no",))
    waiting = enact.invoke(flows.ask_then_roll)
    [(path, _)] = waiting.pending_input_requests()
    failed_async = asyncio.run(
        enact.invoke_async(flows.calls_fail_async, ("async boom",), wrap_exceptions=True)
    )
    flows.CALLS.clear()
    again = rejected.replay()
    assert flows.CALLS == {"reject": 1}  # its roll was reused
    assert again.get_raised() == flows.Rejected("no", 7) and again.digest == rejected.digest
    asked_again = waiting.replay()
    assert flows.CALLS == {"reject": 1}  # the two rolls before the request were reused
    assert [p for p, _ in asked_again.pending_input_requests()] == [path]
    replayed_async = asyncio.run(failed_async.replay_async(wrap_exceptions=True))
    assert flows.CALLS == {"reject": 1, "fail_async": 1}  # roll_die_async was reused
    assert replayed_async.get_raised().str_representation == "async boom"
    assert replayed_async.get_child(0) == failed_async.get_child(0)


def test_a_run_that_resumes_reuses_calls_that_raised(store: enact.Store) -> None:
    """``retry_raised=False`` (how a flow resumes) continues where the record stopped:
    a caught failure is reused, so the program takes the path it took. The default
    replay retries it, and a retry that now succeeds takes another path."""
    flows.FLAKY[0] = True
    try:
        waiting = enact.invoke(flows.tolerant_flow)
        [(path, _)] = waiting.pending_input_requests()
        answered = enact.requests.answer_inputs(waiting, {path: 5})
        roll = waiting.get_child(1).get_output()
        flows.FLAKY[0] = False  # flaky() would succeed now
        flows.CALLS.clear()
        resumed = enact.invoke(flows.tolerant_flow, replay_from=answered, retry_raised=False)
        assert resumed.get_output() == roll + 5
        assert flows.CALLS == {}  # neither flaky() nor the roll ran again
        assert resumed.get_child(0).get_raised_here()
        assert answered.replay(retry_raised=False).digest == resumed.digest
        with pytest.raises(enact.ReplayError, match=r"record has roll_die\(6\)"):
            answered.replay()  # flaky() ran again, returned, and the program moved on
        assert flows.CALLS == {"flaky": 1}
    finally:
        flows.FLAKY[0] = True


def test_exception_override_turns_a_recorded_exception_into_an_output(
    store: enact.Store,
) -> None:
    recorded = enact.invoke(flows.calls_fail, ("boom",), wrap_exceptions=True)
    seen: list[Any] = []

    def override(raised: enact.Ref) -> enact.Ref | None:
        seen.append(raised())
        return enact.commit(41)

    flows.CALLS.clear()
    replayed = recorded.replay(override)
    assert replayed.get_output() == 41
    assert flows.CALLS == {"calls_fail": 1}  # fail() did not run: the override is its output
    # Only the call that raised the exception itself is offered to the override.
    assert [type(e).__name__ for e in seen] == ["NativeException"]
    assert seen[0].str_representation == "boom"
    child = replayed.get_child(1)
    assert child.get_output() == 41 and child.get_raised() is None
    assert child.get_input() == recorded.get_child(1).get_input()


def test_exception_override_returning_none_retries(store: enact.Store) -> None:
    recorded = enact.invoke(flows.calls_fail, ("boom",), wrap_exceptions=True)
    flows.CALLS.clear()
    replayed = recorded.replay(lambda raised: None, wrap_exceptions=True)
    assert flows.CALLS == {"calls_fail": 1, "fail": 1}
    assert replayed.get_raised().str_representation == "boom"


def test_exception_override_must_give_a_ref_of_the_output_type(store: enact.Store) -> None:
    recorded = enact.invoke(flows.calls_fail, ("boom",), wrap_exceptions=True)
    with pytest.raises(TypeError, match="must return a Ref"):
        recorded.replay(lambda raised: 41)
    typed = enact.invoke(flows.calls_fails_typed, (3,), wrap_exceptions=True)
    with pytest.raises(enact.InvokableTypeError, match="not of the output type str"):
        typed.replay(lambda raised: enact.commit(3))
    assert typed.replay(lambda raised: enact.commit("three")).get_output() == "three"


# Rewind at any depth ------------------------------------------------------------------


def test_walk_leaf_paths_and_call_at(store: enact.Store) -> None:
    inv = enact.invoke(flows.outer, (1,))
    walked = list(inv.walk())
    assert [p for p, _ in walked] == [(), (0,), (0, 0), (0, 1), (1,), (1, 0), (1, 1)]
    assert inv.leaf_paths() == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for path, call in walked:
        assert inv.call_at(path) == call
    assert inv.call_at(()) == inv
    assert inv.call_at((1, 1)).get_output() == inv.get_output()[1][1]
    with pytest.raises(IndexError, match=r"path \(2,\) is out of range"):
        inv.call_at((2,))
    with pytest.raises(IndexError, match=r"call at \(0,\) has 2 child calls"):
        inv.call_at((0, 5))


def test_leaf_paths_of_a_call_without_children(store: enact.Store) -> None:
    inv = enact.invoke(flows.add, (1, 2))
    assert inv.leaf_paths() == [()]
    with pytest.raises(ValueError, match="has 0"):
        inv.rewind_leaves(1)


def test_rewind_to_a_nested_call(store: enact.Store) -> None:
    inv = enact.invoke(flows.outer, (1,))
    rewound = inv.rewind_to((1, 1))
    assert enact.invocation_summary(rewound, show_output=False).splitlines() == [
        "->outer(1) incomplete",
        "  ->middle(1) ",  # 0.4's separating space stays when the output is not shown
        "    ->leaf(1) ",
        "    ->leaf(2) ",
        "  ->middle(11) incomplete",
        "    ->leaf(11) ",
    ]
    assert rewound.get_child(0) == inv.get_child(0)  # unchanged subtrees are shared
    assert rewound.call_at((1, 0)) == inv.call_at((1, 0))
    flows.CALLS.clear()
    replayed = rewound.replay()
    assert flows.CALLS == {"outer": 1, "middle": 1, "leaf": 1}
    assert replayed.get_output()[0] == inv.get_output()[0]
    assert replayed.get_output()[1][0] == inv.get_output()[1][0]
    assert replayed.call_at((1, 1)).get_input() == inv.call_at((1, 1)).get_input()


def test_rewind_to_removes_the_call_and_everything_after_it(store: enact.Store) -> None:
    inv = enact.invoke(flows.outer, (1,))
    rewound = inv.rewind_to((0, 1))
    assert [p for p, _ in rewound.walk()] == [(), (0,), (0, 0)]
    flows.CALLS.clear()
    replayed = rewound.replay()
    assert flows.CALLS == {"outer": 1, "middle": 2, "leaf": 3}
    assert replayed.get_output()[0][0] == inv.get_output()[0][0]
    top = inv.rewind_to((1,))
    assert [p for p, _ in top.walk()] == [(), (0,), (0, 0), (0, 1)]
    assert top.get_child(0) == inv.get_child(0)


def test_rewind_to_rejects_bad_paths(store: enact.Store) -> None:
    inv = enact.invoke(flows.outer, (1,))
    with pytest.raises(ValueError, match="top-level call itself"):
        inv.rewind_to(())
    with pytest.raises(IndexError):
        inv.rewind_to((0, 2))
    with pytest.raises(IndexError):
        inv.rewind_to((0, 0, 0))


def test_rewind_leaves(store: enact.Store) -> None:
    inv = enact.invoke(flows.outer, (1,))
    assert inv.rewind_leaves(1) == inv.rewind_to((1, 1))
    assert inv.rewind_leaves() == inv.rewind_to((1, 1))
    assert inv.rewind_leaves(2) == inv.rewind_to((1, 0))
    assert inv.rewind_leaves(3) == inv.rewind_to((0, 1))
    assert inv.rewind_leaves(4) == inv.rewind_to((0, 0))
    with pytest.raises(ValueError, match="cannot rewind 5 leaf calls"):
        inv.rewind_leaves(5)
    with pytest.raises(ValueError):
        inv.rewind_leaves(0)
    flows.CALLS.clear()
    replayed = inv.rewind_leaves(3).replay()
    assert flows.CALLS["leaf"] == 3
    assert replayed.call_at((0, 0)) == inv.call_at((0, 0))


def test_rewind_leaves_in_a_deep_tree(store: enact.Store) -> None:
    inv = enact.invoke(flows.two_sums, (50,))
    assert len(inv.leaf_paths()) == 100
    flows.CALLS.clear()
    replayed = inv.rewind_leaves(60).replay()
    assert flows.CALLS == {"two_sums": 1, "roll_sum": 2, "roll_die": 60}
    assert outputs(replayed.get_child(0))[:40] == outputs(inv.get_child(0))[:40]


def test_replace_calls_swaps_a_recorded_call(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    forced = enact.invoke(flows.roll_die, (6,))
    while forced.get_output() == inv.get_child(0).get_output():
        forced = enact.invoke(flows.roll_die, (6,))
    changed = replace_calls(inv, {(0,): load(store, forced.digest)})
    assert not changed.complete() and changed.get_child(0) == forced
    flows.CALLS.clear()
    replayed = changed.replay()
    assert flows.CALLS == {"roll_sum": 1}
    assert outputs(replayed) == [forced.get_output(), inv.get_child(1).get_output()]


# Stateful invokables --------------------------------------------------------------


def test_replay_restores_invokable_state_without_running_it(store: enact.Store) -> None:
    inv = enact.invoke(flows.AccumulatorFlow(), (4,))
    totals = outputs(inv)
    flows.CALLS.clear()
    replayed = inv.rewind(1).replay()
    assert flows.CALLS == {"Accumulator": 1}
    assert outputs(replayed)[:3] == totals[:3]
    last = replayed.get_child(3)
    # The reused calls restored the accumulator, so the fresh call started from there.
    assert last.request().invokable() == flows.Accumulator(totals[2])
    assert totals[2] + 3 <= last.get_output() <= totals[2] + 1003
    assert replayed.response().invokable() == flows.AccumulatorFlow(
        flows.Accumulator(last.get_output())
    )


def test_replay_of_a_complete_stateful_flow_restores_the_final_state(store: enact.Store) -> None:
    inv = enact.invoke(flows.AccumulatorFlow(), (3,))
    flows.CALLS.clear()
    replayed = inv.rewind(0).replay()
    assert replayed == inv and flows.CALLS == {}


def test_replay_of_a_top_level_stateful_invokable(store: enact.Store) -> None:
    accumulator = flows.Accumulator(100)
    inv = enact.invoke(accumulator, (5,))
    flows.CALLS.clear()
    replayed = inv.rewind(0).replay()
    assert flows.CALLS == {"Accumulator": 1}
    assert replayed.request().invokable() == flows.Accumulator(100)  # state before the call
    assert 105 <= replayed.get_output() <= 1105


def test_replay_restores_resource_method_state(store: enact.Store) -> None:
    inv = enact.invoke(flows.counter_flow, (4,))
    flows.CALLS.clear()
    replayed = inv.rewind(2).replay()
    assert flows.CALLS == {"counter_flow": 1, "Counter.increment": 2}
    assert outputs(replayed)[:2] == outputs(inv)[:2]
    third = replayed.get_child(2)
    assert third.request().invokable().instance == flows.Counter(outputs(inv)[1])
    assert replayed.get_output() == outputs(replayed)[3]


def test_replay_restores_wrapped_type_method_state(store: enact.Store) -> None:
    inv = enact.invoke(flows.tally_flow, (3,))
    flows.CALLS.clear()
    replayed = inv.rewind(1).replay()
    assert flows.CALLS == {"tally_flow": 1, "Tally.add": 1}
    assert outputs(replayed)[:2] == outputs(inv)[:2]
    assert replayed.get_child(2).request().invokable().instance.total == outputs(inv)[1]
    assert outputs(inv)[1] + 2 <= replayed.get_output() <= outputs(inv)[1] + 1002


def test_replay_of_a_top_level_method_call(store: enact.Store) -> None:
    counter = flows.Counter(3)
    inv = enact.invoke(counter.increment, (1,))
    flows.CALLS.clear()
    replayed = inv.rewind(0).replay()
    assert flows.CALLS == {"Counter.increment": 1}
    assert replayed.request().invokable().instance == flows.Counter(3)
    assert counter.value == inv.get_output()  # replay worked on its own copy


# Divergence ---------------------------------------------------------------------------


def test_strict_replay_raises_on_divergence(store: enact.Store) -> None:
    inv = enact.invoke(flows.die_flow, (2,))
    flows.SIDES[0] = 8
    with pytest.raises(enact.ReplayError) as info:
        inv.rewind(1).replay()
    message = str(info.value)
    assert "child call #0 of die_flow(2)" in message
    assert "the record has roll_die(6)" in message
    assert "the program called roll_die(8)" in message


def test_strict_replay_raises_on_divergence_in_a_nested_call(store: enact.Store) -> None:
    inv = enact.invoke(flows.nested_die_flow, (2,))
    flows.SIDES[0] = 8
    flows.CALLS.clear()
    with pytest.raises(enact.ReplayError) as info:
        inv.rewind_leaves(1).replay()
    message = str(info.value)
    assert "child call #0 of die_flow(2)" in message
    assert "roll_die(6)" in message and "roll_die(8)" in message
    assert flows.CALLS["roll_die"] == 0
    # The partial record shows where it diverged.
    failed = info.value.invocation  # type: ignore[attr-defined]
    assert failed.get_raised_here() is False
    assert failed.get_child(0) == inv.get_child(0)
    assert failed.get_child(1).get_raised().type_name == "enact.errors.ReplayError"
    assert failed.get_child(1).get_raised_here() is True
    assert failed.get_child(1).get_children() == []


def test_non_strict_replay_runs_the_diverging_calls_fresh(store: enact.Store) -> None:
    inv = enact.invoke(flows.nested_die_flow, (3,))
    flows.SIDES[0] = 8
    flows.CALLS.clear()
    replayed = inv.rewind_leaves(1).replay(strict=False)
    assert flows.CALLS == {"nested_die_flow": 1, "die_flow": 1, "roll_die": 3}
    assert replayed.successful()
    assert replayed.get_child(0) == inv.get_child(0)
    assert [c.get_input().args for c in replayed.get_child(1).get_children()] == [[8]] * 3


def test_replay_without_divergence_matches_strictly(store: enact.Store) -> None:
    inv = enact.invoke(flows.nested_die_flow, (3,))
    flows.CALLS.clear()
    replayed = inv.rewind_leaves(4).replay(strict=True)
    assert flows.CALLS["roll_die"] == 4
    assert replayed.get_child(0).get_children()[:2] == inv.get_child(0).get_children()[:2]


# ReplayContext -------------------------------------------------------------------------


def test_replay_context_reuses_recorded_calls(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (3,))
    flows.CALLS.clear()
    with enact.ReplayContext(inv.get_children()) as ctx:
        rolls = [flows.roll_die(6) for _ in range(4)]
    assert flows.CALLS == {"roll_die": 1}  # three reused, one past the record
    assert rolls[:3] == outputs(inv)
    recorded = ctx.invocations()
    assert recorded[:3] == inv.get_children()
    assert recorded[3].get_output() == rolls[3]
    assert store.has(recorded[3].ref())


def test_replay_context_strict_and_non_strict(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (2,))
    with pytest.raises(enact.ReplayError, match=r"record has roll_die\(6\).*called roll_die\(4\)"):
        with enact.ReplayContext(inv.get_children()):
            flows.roll_die(4)
    flows.CALLS.clear()
    with enact.ReplayContext(inv.get_children(), strict=False) as ctx:
        flows.roll_die(4)
        flows.roll_die(6)
    assert flows.CALLS == {"roll_die": 2}  # after a divergence everything runs fresh
    assert len(ctx.invocations()) == 2


def test_replay_context_records_fresh_calls_without_a_record(store: enact.Store) -> None:
    with enact.ReplayContext() as ctx:
        total = flows.roll_sum(2)
    (call,) = ctx.invocations()
    assert call.get_output() == total and len(call.get_children()) == 2


# Stores ---------------------------------------------------------------------------------


def test_rewind_and_replay_from_a_reopened_file_store(tmp_path: pathlib.Path) -> None:
    flows.CALLS.clear()
    with enact.FileStore(tmp_path):
        inv = enact.invoke(flows.two_sums, (3,))
    # A new store object: nothing cached, every record is read back from disk.
    with enact.FileStore(tmp_path):
        assert inv.successful()
        rewound = inv.rewind_leaves(2)
        flows.CALLS.clear()
        replayed = rewound.replay()
        assert flows.CALLS == {"two_sums": 1, "roll_sum": 1, "roll_die": 2}
        assert replayed.get_child(0) == inv.get_child(0)
        assert replayed.get_output() == sum(c.get_output() for c in replayed.get_children())
    with enact.FileStore(tmp_path):
        assert enact.invocation_summary(replayed).count("->roll_die(6) = ") == 6
