"""Flow lifecycle on real workers (default settings): cancel, retry, fork, flows from
invocations, listing, expiry, racing answers, fail-fast map and submit, Redis down."""

from __future__ import annotations

import collections
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import enact
import enact.worker
from enact import tree
from enact.config import Settings
from enact.errors import (
    AnswerTypeError,
    ConflictError,
    FlowCancelled,
    StoreUnavailable,
    UnknownFlow,
    UnregisteredResource,
)
from enact.worker import runtime
from tests.worker import flows, unimported
from tests.worker.conftest import outcome_of


def _runs(side_channel: Path) -> collections.Counter[str]:
    lines = side_channel.read_text().splitlines() if side_channel.exists() else []
    return collections.Counter(line.split()[0] for line in lines)


def _answer_next(flow: enact.worker.Flow, value: Any) -> None:
    assert flow.wait(60) == "waiting", flow.record()
    [request] = enact.worker.pending_inputs(flow.id)
    enact.worker.answer(request.id, value)


# -- cancel and retry --------------------------------------------------------------


def test_cancel_a_waiting_flow_withdraws_its_requests(workers):
    workers.start("w")
    flow = enact.worker.submit(flows.roll_dice_user_flow)
    assert flow.wait(60) == "waiting"
    [request] = flow.pending_inputs()
    assert flow.cancel() == flow
    assert flow.status() == "cancelled"
    assert enact.worker.pending_inputs(flow.id) == []
    with pytest.raises(enact.errors.UnknownInputRequest):
        enact.worker.answer(request.id, 3)
    with pytest.raises(FlowCancelled):
        flow.result()
    with pytest.raises(ConflictError, match="cancelled already"):
        enact.worker.cancel(flow.id)


def test_a_flow_cancelled_while_running_that_then_asks_for_input_ends_cancelled(workers):
    workers.start("w")
    flow = enact.worker.submit(flows.nap_then_ask, 3.0)
    deadline = time.monotonic() + 60
    while flow.status() != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    enact.worker.cancel(flow)  # during the nap: the flow stops before it waits
    assert flow.wait(60) == "cancelled"
    assert enact.worker.pending_inputs(flow.id) == []
    with pytest.raises(FlowCancelled):
        flow.result()


def test_cancel_a_running_flow_stops_it_at_its_next_step_and_retry_continues(
    workers, cluster_env, tmp_path: Path
):
    side_channel = tmp_path / "executions.txt"
    workers.env = dict(cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel))
    workers.start("w")
    flow = enact.worker.submit(flows.long_flow, 40, 0.1)
    deadline = time.monotonic() + 60
    while sum(_runs(side_channel).values()) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    enact.worker.cancel(flow)
    assert flow.wait(60) == "cancelled"
    ran = sum(_runs(side_channel).values())
    assert 5 <= ran < 40
    time.sleep(0.5)
    assert sum(_runs(side_channel).values()) == ran  # nothing runs after the cancel
    head = flow.invocation()
    with runtime.store():
        kept = len(head.get_children())
    assert kept >= ran - 1  # checkpointed up to the step it stopped at

    flow.retry()
    assert flow.wait(60) == "done"
    assert flow.result() == sum(range(40))
    counts = _runs(side_channel)
    assert set(counts) == {f"step{i}" for i in range(40)}
    assert [s for s, n in counts.items() if n > 1] == []  # retry continued, re-ran nothing
    with pytest.raises(ConflictError, match="only a failed, cancelled or lapsed"):
        flow.retry()


def test_retry_a_failed_flow_runs_the_failed_call_again(workers, cluster_env, tmp_path: Path):
    side_channel = tmp_path / "executions.txt"
    fail_file = tmp_path / "fail.txt"
    fail_file.write_text("2")
    workers.env = dict(
        cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel), ENACT_TEST_FAIL_FILE=str(fail_file)
    )
    workers.start("w")
    flow = enact.worker.submit(flows.flaky_flow, 2)
    assert flow.wait(60) == "failed"
    assert "item 2 failed" in flow.record().error
    fail_file.write_text("")
    enact.worker.retry(flow.id)
    assert flow.wait(60) == "done"
    roll = _runs(side_channel)
    assert roll == {"flaky_item2": 2, "marked_roll": 1}  # the failed call ran, its roll reused
    with runtime.store():
        [item] = flow.invocation().get_children()
        assert flow.result() == 20 + item.get_children()[0].get_output()


# -- fork and flows from invocations --------------------------------------------------


def test_fork_with_a_different_answer_asks_for_input_and_shares_the_record(workers):
    workers.start("w")
    flow = enact.worker.submit(flows.roll_dice_user_flow)
    _answer_next(flow, 1)
    _answer_next(flow, 4)
    assert flow.wait(60) == "done" and flow.result() == 4

    fork = enact.worker.fork(flow, answers={(0,): 2})
    assert fork.id != flow.id and fork.record().parent == flow.id
    assert fork.wait(60) == "waiting"
    [request] = enact.worker.pending_inputs(fork.id)
    assert request.for_value == "Please roll a die." and request.path == [1, 0]
    assert request in enact.worker.pending_inputs()
    enact.worker.answer(request.id, 3)
    _answer_next(fork, 5)
    assert fork.wait(60) == "done" and fork.result() == 8
    assert flow.result() == 4  # the original is untouched
    with runtime.store():
        old, new = flow.invocation().get_children(), fork.invocation().get_children()
        assert old[0].get_output() == 1 and new[0].get_output() == 2
        assert new[0].get_input() == old[0].get_input()

    with pytest.raises(AnswerTypeError):
        enact.worker.fork(flow, answers={(0,): "two"})
    with pytest.raises(enact.errors.UnknownInputRequest, match="not an input request"):
        enact.worker.fork(flow, answers={(1,): 2})


def test_fork_at_an_earlier_call_reruns_from_there(workers):
    workers.start("w")
    flow = enact.worker.submit(flows.roll_dice_user_flow)
    _answer_next(flow, 1)
    _answer_next(flow, 4)
    assert flow.wait(60) == "done"
    fork = flow.fork(at=(1,))  # before the first die roll: the count (1) is kept
    _answer_next(fork, 6)
    assert fork.wait(60) == "done" and fork.result() == 6
    again = flow.fork(at=())  # from the very start
    _answer_next(again, 0)
    assert again.wait(60) == "done" and again.result() == 0


def test_replay_many_as_flows_and_submit_invocation_wait_for_input(workers):
    workers.start("w", concurrency=4)
    flow = enact.worker.submit(flows.roll_dice_user_flow)
    _answer_next(flow, 2)
    _answer_next(flow, 1)
    _answer_next(flow, 1)
    assert flow.wait(60) == "done"
    with runtime.store():
        rewound = flow.invocation().rewind(1)  # the last die roll goes
    replays = enact.worker.replay_many(rewound, 3, as_flows=True)
    assert len({f.id for f in replays}) == 3
    for replay, value in zip(replays, (4, 5, 6)):
        _answer_next(replay, value)
    assert sorted(r.wait(60) and r.result() for r in replays) == [5, 6, 7]
    single = enact.worker.submit_invocation(rewound)
    _answer_next(single, 3)
    assert single.result(60) == 4


# -- listing and expiry -----------------------------------------------------------------


def test_list_flows_as_json_by_status_and_time(workers):
    workers.start("w")
    before = enact.worker.submit(flows.roll_sum, 1)
    assert before.wait(60) == "done"
    since = before.record().updated + 0.001
    waiting = enact.worker.submit(flows.roll_dice_user_flow)
    done = enact.worker.submit(flows.roll_sum, 2)
    assert waiting.wait(60) == "waiting" and done.wait(60) == "done"
    listed = [r.id for r in enact.worker.list_flows(since=since)]
    assert listed[:2] == [done.id, waiting.id] and before.id not in listed
    assert [r.id for r in enact.worker.list_flows("waiting", since=since)] == [waiting.id]
    rows = json.loads(json.dumps([r.to_json() for r in enact.worker.list_flows(since=since)]))
    row = {r["id"]: r for r in rows}[done.id]
    assert row["status"] == "done" and row["name"] == "roll_sum"
    assert since <= row["created"] <= row["updated"] and row["output"]


def test_finished_flows_expire_after_the_retention(workers, cluster_env):
    workers.env = dict(cluster_env, ENACT_FLOW_RETENTION_S="2")
    workers.start("w")
    flow = enact.worker.submit(flows.roll_sum, 2)
    assert flow.wait(60) == "done"
    head = flow.record().head
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            flow.record()
        except UnknownFlow:
            break
        time.sleep(0.5)
    with pytest.raises(UnknownFlow, match="ENACT_FLOW_RETENTION_S"):
        enact.worker.get_flow(flow.id)
    assert flow.id not in [r.id for r in enact.worker.list_flows()]
    store = runtime.store()
    with store:  # its records stay in the object store
        assert enact.invocation_summary(tree.load(store, head).invocation()).startswith(
            "->roll_sum(2) ="
        )


# -- racing answers from two processes --------------------------------------------------


def test_two_processes_answering_one_request_at_once_50_times(workers, cluster_env):
    workers.start("w", concurrency=4)
    answerers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.worker.answerer"],
            env=cluster_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    try:
        for process in answerers:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        rounds = 50
        flow = enact.worker.submit(flows.ask_many, rounds)
        winners = []
        for i in range(rounds):
            assert flow.wait(60) == "waiting"
            [request] = enact.worker.pending_inputs(flow.id)
            at = time.time() + 0.3
            for value, process in zip((100 + i, 200 + i), answerers):
                assert process.stdin is not None
                process.stdin.write(f"{request.id} {value} {at}\n")
                process.stdin.flush()
            replies = [process.stdout.readline().strip() for process in answerers]  # type: ignore[union-attr]
            assert sorted(replies) == ["conflict", "ok"], replies
            winners.append((100 + i, 200 + i)[replies.index("ok")])
        assert flow.wait(120) == "done"
        assert flow.result() == sum(winners)  # every winning answer, intact
        with runtime.store():
            outputs = [c.get_output() for c in flow.invocation().get_children()]
        assert outputs == winners
    finally:
        for process in answerers:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(30)


# -- fail fast ---------------------------------------------------------------------------


def test_map_of_a_function_the_workers_do_not_import_raises_their_error(workers):
    workers.start("w")
    before = len(enact.worker.list_flows(limit=1000))
    with pytest.raises(UnregisteredResource, match="ENACT_IMPORTS") as info:
        enact.worker.map(unimported.cube, [1, 2, 3])
    assert "tests.worker.unimported.cube" in str(info.value)
    assert len(enact.worker.list_flows(limit=1000)) == before
    assert enact.worker.map(flows.square, [1, 2, 3]) == [1, 4, 9]  # the worker is fine


def _local() -> Any:
    @enact.register
    def inner(x: int) -> int:
        return x

    return inner


def test_submit_refuses_what_no_worker_can_import_before_sending(cluster_env):
    def in_main(x: int) -> int:
        return x

    in_main.__module__, in_main.__qualname__ = "__main__", "in_main"
    before = len(enact.worker.list_flows(limit=1000))
    cases = {
        "a lambda": lambda x: x,
        "defined inside a function": _local(),
        "__main__": in_main,
    }
    for why, target in cases.items():
        with pytest.raises(UnregisteredResource, match=why) as info:
            enact.worker.submit(target, 1)
        assert "ENACT_IMPORTS" in str(info.value)
    assert len(enact.worker.list_flows(limit=1000)) == before  # nothing was sent


# -- Redis down: every client call raises StoreUnavailable, in seconds --------------------


def _client_calls(flow_id: str) -> dict[str, Any]:
    flow = enact.worker.Flow(flow_id)
    return {
        "submit": lambda: enact.worker.submit(flows.roll_sum, 1),
        "get_flow": lambda: enact.worker.get_flow(flow_id),
        "status": flow.status,
        "wait": lambda: flow.wait(5),
        "list_flows": enact.worker.list_flows,
        "pending_inputs": enact.worker.pending_inputs,
        "answer": lambda: enact.worker.answer(f"{flow_id}:0", 1),
        "cancel": lambda: enact.worker.cancel(flow_id),
        "retry": lambda: enact.worker.retry(flow_id),
        "fork": lambda: enact.worker.fork(flow_id),
    }


@pytest.mark.parametrize("server", ["down", "silent"])
def test_every_client_call_raises_store_unavailable_when_redis_is_away(cluster_env, server):
    from tests.worker.conftest import free_port

    port = free_port()
    silent = socket.socket()
    if server == "silent":  # accepts connections, never answers
        silent.bind(("127.0.0.1", port))
        silent.listen(64)
    saved = runtime.settings()
    runtime.configure(
        Settings.from_env(dict(cluster_env, ENACT_REDIS_URL=f"redis://127.0.0.1:{port}/0"))
    )
    try:
        for name, call in _client_calls("f0000000000000000000").items():
            error = outcome_of(call)
            assert isinstance(error, StoreUnavailable), (name, error)
            assert f"127.0.0.1:{port}" in str(error)
    finally:
        runtime.configure(saved)
        silent.close()
