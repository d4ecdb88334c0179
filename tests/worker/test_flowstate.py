"""FlowState against a real Redis: every transition, input requests, races, outages.

No Celery here: these drive the Lua transitions directly (the worker tests drive
them through real workers)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Iterator

import pytest

from enact.config import Settings
from enact.errors import ConflictError, StoreUnavailable, UnknownFlow, UnknownInputRequest

pytest.importorskip("redis")

from enact.worker.flowstate import (  # noqa: E402
    FlowState,
    FlowStatus,
    NewRequest,
    PendingInput,
    new_flow_id,
    request_id,
)
from tests.worker.conftest import outcome_of  # noqa: E402

D1, D2, D3 = ("1" * 64), ("2" * 64), ("3" * 64)


def _state(url: str, prefix: str, **changes: Any) -> FlowState:
    settings = Settings(redis_url=url, redis_prefix=prefix).replace(**changes)
    return FlowState.from_settings(settings)


@pytest.fixture
def state(redis_url: str, redis_prefix: str) -> Iterator[FlowState]:
    yield _state(redis_url, redis_prefix, flow_lock_ttl_s=1.0, flow_redispatch_s=0.3)


def _request(state: FlowState, **fields: Any) -> PendingInput:
    values: dict[str, Any] = {
        "flow_id": "flow-1",
        "requested_type": "int",
        "for_value": "Please roll a die.",
        "invocation": D1,
        "path": [0, 2],
    }
    values.update(fields)
    return state.add_input_request(**values)


def _waiting_flow(state: FlowState, path: tuple[int, ...] = (0,)) -> tuple[str, str]:
    """A flow that ran and now waits on one request; returns (flow id, request id)."""
    flow_id = new_flow_id()
    state.create(flow_id, D1, "f")
    outcome, lease = state.start(flow_id, "w1")
    assert outcome == "ok" and lease is not None
    rid = request_id(flow_id, path)
    status = lease.settle(
        FlowStatus.WAITING,
        head=D2,
        requests=[NewRequest(rid, "int", "How many?", None, D2, path)],
    )
    assert status == "waiting"
    return flow_id, rid


# -- flows ---------------------------------------------------------------------------


def test_a_flow_runs_once_and_a_second_delivery_ends_at_once(state: FlowState) -> None:
    flow_id = new_flow_id()
    state.create(flow_id, D1, "job")
    assert state.get(flow_id).status == FlowStatus.QUEUED == "queued"
    assert state.due() == []  # its task was just sent: not due yet
    outcome, lease = state.start(flow_id, "w1")
    assert outcome == "ok" and lease is not None
    assert state.start(flow_id, "w2") == ("busy", None)
    assert lease.checkpoint(D2) == "ok"
    record = state.get(flow_id)
    assert (record.status, record.head, record.worker) == ("running", D2, "w1")
    assert lease.settle(FlowStatus.DONE, head=D3, output=D1) == "done"
    assert state.start(flow_id, "w2") == ("done", None)
    record = state.get(flow_id)
    assert (record.status, record.output, record.lease_expires) == ("done", D1, None)
    assert record.to_json()["status"] == "done"
    assert state.start("nope", "w2") == ("unknown", None)


def test_a_lapsed_lease_is_requeued_exactly_once(state: FlowState) -> None:
    flow_id = new_flow_id()
    state.create(flow_id, D1, "job")
    _, lease = state.start(flow_id, "doomed")
    assert lease is not None
    lease.stop()  # the worker "dies": nobody renews
    deadline = time.monotonic() + 10
    while state.get(flow_id).status != FlowStatus.LAPSED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state.get(flow_id).status == "lapsed"
    assert flow_id in state.lapsed()
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(state.requeue(flow_id))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("requeued") == 1, outcomes
    assert state.get(flow_id).status == "queued"
    # The old owner comes back: its lease is gone, it writes nothing.
    assert lease.checkpoint(D3) == "lost"
    assert lease.settle(FlowStatus.DONE, head=D3, output=D3) == "lost"
    assert state.get(flow_id).head is None


def test_a_queued_flow_whose_task_never_started_is_sent_again_with_backoff(
    state: FlowState,
) -> None:
    flow_id = new_flow_id()
    state.create(flow_id, D1, "job")
    deadline = time.monotonic() + 10
    while flow_id not in state.due() and time.monotonic() < deadline:
        time.sleep(0.05)
    claims = [state.claim_dispatch(flow_id) for _ in range(5)]
    assert claims.count(True) == 1  # one recovery loop sends it; the next send is later
    assert flow_id not in state.due()
    state.dispatch_failed(flow_id, retry_s=0.1)
    time.sleep(0.3)
    assert flow_id in state.due()
    _, lease = state.start(flow_id, "w")
    assert lease is not None
    assert flow_id not in state.due()  # started: nothing left to send
    lease.stop()


def test_racing_answers_leave_exactly_one_whole(state: FlowState) -> None:
    for _ in range(20):
        flow_id, rid = _waiting_flow(state)
        results: dict[str, Any] = {}
        barrier = threading.Barrier(2)

        def answer(
            name: str,
            digest: str,
            data: bytes,
            barrier: threading.Barrier = barrier,
            rid: str = rid,
            results: dict[str, Any] = results,
        ) -> None:
            barrier.wait()
            try:
                results[name] = state.answer(rid, digest, data)
            except ConflictError as exc:
                results[name] = exc

        threads = [
            threading.Thread(target=answer, args=("a", D2, b"answer-a")),
            threading.Thread(target=answer, args=("b", D3, b"answer-b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = {n: r for n, r in results.items() if not isinstance(r, Exception)}
        assert len(winners) == 1, results
        [(name, (request, queued))] = winners.items()
        assert queued
        expected = {"a": (D2, b"answer-a"), "b": (D3, b"answer-b")}[name]
        assert request.answer == expected[0]
        assert state.answer_bytes(flow_id, rid) == expected[1]
        assert state.get(flow_id).status == "queued"
        assert state.pending_inputs(flow_id) == []


def test_waiting_settle_consumes_answers_and_requeues_if_answered_meanwhile(
    state: FlowState,
) -> None:
    flow_id, first = _waiting_flow(state)
    state.answer(first, D3, b"x")
    _, lease = state.start(flow_id, "w")
    assert lease is not None
    second = request_id(flow_id, (1,))
    # The next run ends on a second request, consuming the first answer.
    assert (
        lease.settle(
            FlowStatus.WAITING,
            head=D2,
            requests=[NewRequest(second, "int", "again?", "ctx", D2, (1,))],
            consumed=[first],
        )
        == "waiting"
    )
    with pytest.raises(UnknownInputRequest):
        state.get_input_request(first)
    assert state.answer_bytes(flow_id, first) is None
    [pending] = state.pending_inputs(flow_id)
    assert (pending.id, pending.context, pending.path) == (second, "ctx", [1])
    # Answered while a (duplicate) run was going: settling as waiting requeues.
    state.answer(second, D1, b"y")
    state.requeue(flow_id)  # (not running: no change)
    _, lease = state.start(flow_id, "w")
    assert lease is not None
    status = lease.settle(
        FlowStatus.WAITING,
        head=D2,
        requests=[NewRequest(second, "int", "again?", "ctx", D2, (1,))],
    )
    assert status == "queued"


def test_cancel_and_retry(state: FlowState) -> None:
    flow_id, rid = _waiting_flow(state)
    assert state.cancel(flow_id) == "cancelled"
    assert state.pending_inputs(flow_id) == []
    with pytest.raises(UnknownInputRequest):
        state.get_input_request(rid)
    assert state.get(flow_id).status == "cancelled"
    assert state.cancel(flow_id) == "final:cancelled"  # final: nothing changes
    assert state.retry(flow_id) == "retried"
    _, lease = state.start(flow_id, "w")
    assert lease is not None and not lease.retry
    # A running flow is only marked; its owner learns at its next step.
    assert state.cancel(flow_id) == "requested"
    assert state.get(flow_id).cancel_requested
    assert lease.checkpoint(D3) == "cancel"
    assert lease.settle(FlowStatus.CANCELLED, error="cancelled") == "cancelled"
    assert state.retry(flow_id) == "retried"
    _, lease = state.start(flow_id, "w")
    assert lease is not None
    assert lease.settle(FlowStatus.FAILED, error="ValueError: no") == "failed"
    assert state.retry(flow_id) == "retried"
    _, lease = state.start(flow_id, "w")
    assert lease is not None and lease.retry  # a failed flow's calls that raised run again
    assert state.retry(flow_id) == "running"
    assert lease.settle(FlowStatus.DONE, head=D1, output=D2) == "done"
    assert state.retry(flow_id) == "done"
    with pytest.raises(UnknownFlow):
        state.cancel("nope")


def test_finished_flows_expire_and_are_pruned(redis_url: str, redis_prefix: str) -> None:
    state = _state(redis_url, redis_prefix, flow_retention_s=1.0)
    flow_id = new_flow_id()
    state.create(flow_id, D1, "short-lived")
    _, lease = state.start(flow_id, "w")
    assert lease is not None
    lease.settle(FlowStatus.DONE, head=D2, output=D3)
    assert [r.id for r in state.list_flows("done")] == [flow_id]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state.get(flow_id)
        except UnknownFlow:
            break
        time.sleep(0.2)
    with pytest.raises(UnknownFlow):
        state.get(flow_id)
    assert state.list_flows() == []
    assert state.prune() == 1
    assert state.ids() == []


def test_list_flows_filters_by_status_and_time(state: FlowState) -> None:
    first = new_flow_id()
    state.create(first, D1, "a")
    time.sleep(0.05)
    since = float(state.client.time()[0]) + state.client.time()[1] / 1e6
    second, _ = _waiting_flow(state)
    assert [r.id for r in state.list_flows()] == [second, first]
    assert [r.id for r in state.list_flows(since=since)] == [second]
    assert [r.id for r in state.list_flows(status=["waiting"])] == [second]
    assert [r.id for r in state.list_flows(status="queued")] == [first]
    assert [r.id for r in state.list_flows(limit=1)] == [second]
    record = state.list_flows(status="waiting")[0].to_json()
    assert record["created"] <= record["updated"] and record["requests"]


def test_roots_name_every_digest_a_flow_needs(state: FlowState) -> None:
    flow_id, rid = _waiting_flow(state)
    roots = dict(state.roots())
    assert roots[D1] == f"flow {flow_id} start"
    assert roots[D2] in (f"flow {flow_id} head", f"input request {rid}")


# -- input requests (moved here from RedisState) ---------------------------------------


def test_input_request_lifecycle(state: FlowState) -> None:
    request = _request(state)
    assert request.status == "pending" and request.path == [0, 2]
    assert state.get_input_request(request.id) == request
    assert state.pending_inputs() == [request]
    assert state.pending_inputs("flow-1") == [request]
    assert state.pending_inputs("other-flow") == []
    claimed = state.claim_input_request(request.id, "alice", lease_s=30)
    assert claimed.status == "claimed" and claimed.claimed_by == "alice"
    with pytest.raises(ConflictError, match="claimed by 'alice'"):
        state.claim_input_request(request.id, "bob", lease_s=30)
    with pytest.raises(ConflictError):
        state.answer(request.id, D2, claimer="bob")
    assert state.pending_inputs(include_claimed=False) == []
    answered, queued = state.answer(request.id, D2, claimer="alice")
    assert answered.status == "answered" and answered.answer == D2 and not queued
    assert state.pending_inputs() == []
    assert state.answer(request.id, D2, claimer="alice")[0].answer == D2  # same answer again
    with pytest.raises(ConflictError, match="already answered"):
        state.answer(request.id, D3, claimer="alice")
    assert state.remove_input_request(request.id) is True
    assert state.remove_input_request(request.id) is False
    with pytest.raises(UnknownInputRequest):
        state.get_input_request(request.id)
    with pytest.raises(UnknownInputRequest):
        state.answer("nope", D1)


def test_add_is_idempotent_and_expiry_removes_old_requests(state: FlowState) -> None:
    first = _request(state, id="req-1", created=1000.0)
    again = _request(state, id="req-1", for_value="something else")
    assert again == first
    fresh = _request(state, id="fresh")
    assert sorted(state.expire_input_requests(older_than_s=50)) == ["req-1"]
    assert [r.id for r in state.pending_inputs()] == [fresh.id]


def test_every_key_is_under_the_prefix(redis_server: Any) -> None:
    import redis

    state = _state(redis_server.url, "only-here", flow_lock_ttl_s=1.0)
    flow_id, rid = _waiting_flow(state)
    state.answer(rid, D3, b"x")
    state.map_push("m1", [b"a", b"b"], 60)
    assert state.map_take("m1", 0) == b"a"
    keys = redis.Redis.from_url(redis_server.url, decode_responses=True).keys("*")
    assert keys and all(k.startswith("only-here:") for k in keys), keys


def test_a_restart_between_two_operations_is_transparent(redis_server: Any) -> None:
    state = _state(redis_server.url, "restart", flow_lock_ttl_s=5.0)
    flow_id, rid = _waiting_flow(state)
    redis_server.restart(kill=True)  # appendonly + fsync always: nothing acknowledged is lost
    assert state.get(flow_id).status == "waiting"
    assert state.answer(rid, D3, b"x")[1]
    assert state.get(flow_id).status == "queued"


# -- outages: StoreUnavailable, never a hang or a raw redis error ----------------------


def _every_call(state: FlowState) -> dict[str, Any]:
    return {
        "get": lambda: state.get("f"),
        "list_flows": lambda: state.list_flows(),
        "create": lambda: state.create(new_flow_id(), D1, "x"),
        "start": lambda: state.start("f", "w"),
        "answer": lambda: state.answer("f:0", D1, b"x"),
        "cancel": lambda: state.cancel("f"),
        "retry": lambda: state.retry("f"),
        "pending_inputs": lambda: state.pending_inputs(),
        "lapsed": lambda: state.lapsed(),
        "roots": lambda: list(state.roots()),
        "map_results": lambda: state.map_results("m", 0.1),
    }


def test_a_server_that_is_down_raises_store_unavailable(unused_port: int) -> None:
    state = _state(f"redis://:hunter2@127.0.0.1:{unused_port}/0", "p")
    for name, call in _every_call(state).items():
        error = outcome_of(call)
        assert isinstance(error, StoreUnavailable), (name, error)
        assert f"127.0.0.1:{unused_port}" in str(error) and "hunter2" not in str(error)


def test_a_server_that_accepts_and_never_answers_raises_store_unavailable() -> None:
    from tests.worker.conftest import free_port

    silent = socket.socket()
    port = free_port()
    silent.bind(("127.0.0.1", port))
    silent.listen(64)  # accepts (the kernel completes handshakes), never answers
    try:
        state = _state(f"redis://127.0.0.1:{port}/0", "p", redis_timeout_s=1.0)
        for name, call in list(_every_call(state).items())[:4]:
            error = outcome_of(call)
            assert isinstance(error, StoreUnavailable), (name, error)
    finally:
        silent.close()
