"""The call engine's public interface (docs/engine.md): Run, checkpoints and child slots.

``enact.worker.map`` drives the slots. When the record holds every item and each
returned (or an exception override gives its output), map runs nothing remotely,
so these tests need no cluster; the worker tests run map against real workers.
"""

from __future__ import annotations

from typing import Any, Iterator

import flows
import pytest

import enact
from enact import calls, tree
from enact.errors import EnactError


@pytest.fixture
def store() -> Iterator[enact.Store]:
    with enact.InMemoryStore() as s:
        flows.CALLS.clear()
        yield s
    flows.SQUARE_MODE[0] = "loop"
    flows.SQUARE_INPUTS[0] = [1, 2, 3]


def _program(mode: str, inputs: list[int]) -> None:
    flows.SQUARE_MODE[0] = mode
    flows.SQUARE_INPUTS[0] = inputs


def _diverge(recorded: enact.Invocation, mode: str) -> tuple[str, str]:
    """Replay ``recorded`` strictly with the program in ``mode`` over [1, 5, 3]."""
    _program(mode, [1, 5, 3])
    with pytest.raises(enact.ReplayError) as info:
        enact.invoke(flows.squares, replay_from=recorded.rewind(0))
    invocation = info.value.invocation  # type: ignore[attr-defined]
    return str(info.value), enact.invocation_summary(invocation)


def test_a_divergence_inside_map_raises_the_same_replay_error_as_a_loop(
    store: enact.Store,
) -> None:
    """The issue's reproduction: record square(1), square(2), square(3) in a loop,
    replay with map(square, [1, 5, 3])."""
    _program("loop", [1, 2, 3])
    recorded = enact.invoke(flows.squares)
    loop_error, loop_record = _diverge(recorded, "loop")
    map_error, map_record = _diverge(recorded, "map")
    assert "square(2)" in loop_error and "square(5)" in loop_error
    assert "child call #1 of squares()" in loop_error
    assert map_error == loop_error
    assert map_record == loop_record  # square(1) reused, then the ReplayError
    assert map_record.splitlines()[1] == "  ->square(1) = 1"
    assert len(map_record.splitlines()) == 2


def test_map_reuses_every_recorded_call_like_a_loop(store: enact.Store) -> None:
    _program("loop", [1, 2])
    recorded = enact.invoke(flows.squares)
    flows.CALLS.clear()
    _program("map", [1, 2])
    replayed = enact.invoke(flows.squares, replay_from=recorded.rewind(0))
    assert replayed.get_output() == [1, 4] and flows.CALLS["square"] == 0
    assert replayed.digest == recorded.digest  # the same record as the loop made


def test_map_takes_an_exception_override_exactly_as_a_loop_does(store: enact.Store) -> None:
    """A recorded item that raised is run again on replay (so ``map`` sends it to a
    worker again: tests/worker/test_worker.py), unless the replay's exception
    override gives its output; then it is reused, and recorded as returning it, by
    ``map`` exactly as by a loop."""
    _program("loop", [2, -1])
    with pytest.raises(ValueError, match="no square of -1") as looped:
        enact.invoke(flows.squares)
    recorded = looped.value.invocation  # type: ignore[attr-defined]
    seen: list[Any] = []

    def override(raised: enact.Ref[Any]) -> enact.Ref[Any]:
        seen.append(raised())
        return enact.commit(-1)

    replays = {}
    for mode in ("loop", "map"):
        _program(mode, [2, -1])
        replays[mode] = enact.invoke(
            flows.squares, replay_from=recorded.rewind(0), exception_override=override
        )
    assert flows.CALLS["square"] == 2  # the recorded run only: both replays ran nothing
    assert [str(e) for e in seen] == ["ValueError: no square of -1 today"] * 2
    loop, mapped = replays["loop"], replays["map"]
    assert mapped.get_output() == loop.get_output() == [4, -1]
    assert mapped.digest == loop.digest
    assert enact.invocation_summary(mapped) == enact.invocation_summary(loop)
    assert [c.successful() for c in mapped.get_children()] == [True, True]


def test_map_reuses_an_item_that_raised_when_the_run_does_not_retry(store: enact.Store) -> None:
    """``retry_raised=False`` (a resumed flow): the item that raised is reused, raising
    its exception again, and nothing after it runs, as in a loop."""
    _program("loop", [2, -1])
    with pytest.raises(ValueError, match="no square of -1") as looped:
        enact.invoke(flows.squares)
    recorded = looped.value.invocation  # type: ignore[attr-defined]
    replays = {}
    for mode in ("loop", "map"):
        _program(mode, [2, -1, 3])
        with pytest.raises(ValueError, match="no square of -1") as info:
            enact.invoke(flows.squares, replay_from=recorded.rewind(0), retry_raised=False)
        replays[mode] = info.value.invocation  # type: ignore[attr-defined]
    assert flows.CALLS["square"] == 2  # the recorded run only
    assert replays["map"].digest == replays["loop"].digest == recorded.digest


def test_a_slot_neither_filled_nor_released_keeps_the_parent_from_finishing(
    store: enact.Store,
) -> None:
    @enact.register
    def leaves_a_slot() -> int:
        scope = calls.current()
        assert scope is not None
        reference = flows.square.reference_object()
        spec = calls.prepare(scope, flows.square, reference, calls.args_object((2,), {})[0], True)
        calls.reserve(scope, spec)
        return 0

    with pytest.raises(enact.IncompleteSubinvocationError, match="child call #0"):
        enact.invoke(leaves_a_slot)


def test_reserve_fill_and_release_as_a_remote_runner_uses_them(store: enact.Store) -> None:
    """Children run "elsewhere" (a separate Run, as a worker does) and are filled in."""

    def spec_for(scope: calls.Scope, x: int) -> calls.CallSpec:
        reference = flows.square.reference_object()
        return calls.prepare(scope, flows.square, reference, calls.args_object((x,), {})[0], True)

    def run_elsewhere(x: int) -> tuple[tree.Node, dict[str, bytes]]:
        run = calls.Run(store)
        with run:
            flows.square(x)
        node = run.top()
        assert node is not None
        return node, run.take_objects()

    @enact.register
    def fan_out(xs: list) -> list:
        scope = calls.current()
        assert scope is not None
        slots = [calls.reserve(scope, spec_for(scope, x)) for x in xs]
        released = calls.reserve(scope, spec_for(scope, 100))
        calls.release(released)  # given back: the call after it takes its place
        out = []
        for slot, x in reversed(list(zip(slots, xs))):  # filled out of order
            if slot.recorded is not None:  # on replay: reused, nothing runs
                out.append(calls.outcome(store, slot.recorded, scope=scope))
                continue
            assert slot.replay is None
            node, objects = run_elsewhere(x)
            for digest, data in objects.items():
                calls.stage(scope, digest, data)
            calls.fill(slot, node)
            out.append(calls.outcome(store, node, scope=scope))  # reads the staged output
        calls.step(scope)
        return [flows.square(9), *reversed(out)]

    inv = enact.invoke(fan_out, ([2, 3],))
    assert inv.get_output() == [81, 4, 9]
    assert enact.invocation_summary(inv).splitlines()[1:] == [
        "  ->square(2) = 4",
        "  ->square(3) = 9",
        "  ->square(9) = 81",
    ]
    flows.CALLS.clear()
    replayed = inv.rewind(1).replay()
    assert replayed.get_output() == [81, 4, 9] and flows.CALLS["square"] == 1


def test_checkpoints_record_the_finished_steps_and_resume_from_them(store: enact.Store) -> None:
    checkpoints: list[str] = []

    def on_step(run: calls.Run) -> None:
        checkpoints.append(run.checkpoint())

    enact.invoke(flows.steps, (4,), on_step=on_step)
    assert len(checkpoints) == 4
    second = tree.load(store, checkpoints[1])
    assert not second.complete and len(second.children) == 2
    flows.CALLS.clear()
    resumed = enact.invoke(flows.steps, (4,), replay_from=checkpoints[1])
    assert flows.CALLS["roll_die"] == 2  # two steps were in the checkpoint
    assert [c.get_output() for c in resumed.get_children()[:2]] == [
        store.checkout(tree.load(store, d).output_digest) for d in second.children
    ]


def test_checkpoints_are_written_to_the_store_at_once(tmp_path: Any) -> None:
    written: list[str] = []

    def on_step(run: calls.Run) -> None:
        written.append(run.checkpoint())
        # Another process (a new store on the same directory) can resume from it now.
        other = enact.FileStore(tmp_path)
        node = tree.load(other, written[-1])
        assert len(node.children) == len(written)

    with enact.FileStore(tmp_path):
        enact.invoke(flows.steps, (3,), on_step=on_step)
    assert len(written) == 3


def test_checkpoint_needs_a_running_top_level_call(store: enact.Store) -> None:
    run = calls.Run(store)
    with pytest.raises(EnactError, match="no top-level call is running"):
        run.checkpoint()


def test_run_records_the_calls_made_in_it(store: enact.Store) -> None:
    run = calls.Run(store)
    with run:
        flows.roll_die(6)
        flows.add(1, b=2)
    nodes = run.calls()
    assert len(nodes) == 2 and run.top() is nodes[0]
    assert not store.has(nodes[0].digest)  # not flushed yet
    run.flush()
    assert store.has(nodes[1].digest)
    assert [store.checkout(n.input_digest).args for n in nodes] == [[6], [1]]
    assert calls.current() is None  # the scope was restored


def test_take_objects_hands_the_records_over_instead_of_writing_them(store: enact.Store) -> None:
    run = calls.Run(store)
    with run:
        flows.roll_die(6)
    node = run.top()
    assert node is not None
    objects = run.take_objects()
    assert {node.digest, node.request_digest, node.response_digest} <= set(objects)
    run.flush()  # nothing left to write
    assert not store.has(node.digest)


def test_replay_context_uses_the_engine_api(store: enact.Store) -> None:
    inv = enact.invoke(flows.roll_sum, (3,))
    flows.CALLS.clear()
    with enact.ReplayContext(inv.get_children()) as ctx:
        total = sum(flows.roll_die(6) for _ in range(4))
    assert flows.CALLS["roll_die"] == 1
    assert total == inv.get_output() + ctx.invocations()[3].get_output()
    assert [i.digest for i in ctx.invocations()[:3]] == [c.digest for c in inv.get_children()]
