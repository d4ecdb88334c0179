"""The Celery tasks: run or resume a flow, run a batch of calls, replay an invocation.

Every task is idempotent: a flow that is already done is left alone, a resume
with no new answers changes nothing, and a batch or replay that runs twice
records the same kind of result twice (content addressing deduplicates equal
objects). Tasks exchange digests and packed bytes only (msgpack), never pickles.
"""

from __future__ import annotations

import time
from typing import Any

from enact import calls, tree
from enact.digests import verify
from enact.errors import UnknownInputRequest
from enact.invokables import Function, invoke
from enact.redaction import redact
from enact.registry import Registry
from enact.replay import replay
from enact.requests import answer_inputs, pending_input_requests, type_name
from enact.serialization import unpack_value
from enact.store import Store
from enact.trust import registered_target
from enact.worker import runtime, wire
from enact.worker.app import app
from enact.worker.flows import RUN_FLOW, FlowTable, request_id, start_target

# Flows ----------------------------------------------------------------------


@app.task(name=RUN_FLOW, bind=True, max_retries=None)
def run_flow(self: Any, flow_id: str) -> str:
    """Start, resume or continue a flow; returns its status when this run ends."""
    flow_id = wire.task_id(flow_id, "a flow id")
    table = FlowTable(runtime.state())
    lock = table.lock(flow_id, runtime.settings().flow_lock_ttl_s)
    if not lock.acquire():
        # Another worker runs this flow (or died holding it: the lock lapses).
        raise self.retry(countdown=0.25)
    try:
        return _run_flow(table, flow_id, self.request.hostname or "")
    finally:
        lock.release()


def _run_flow(table: FlowTable, flow_id: str, worker: str) -> str:
    record = table.get(flow_id)
    if record.status in ("done", "failed"):
        return record.status
    state = table.state
    store = runtime.store()
    with store:
        head = record.head
        consumed: list[str] = []
        if head is not None:
            answered = _apply_answers(table, store, flow_id, head, record.requests)
            if answered is None:
                table.update(flow_id, status="waiting")
                return "waiting"
            head, consumed = answered
        table.update(flow_id, status="running", worker=worker)
        try:
            target, args, kwargs = start_target(store, record.start)
            if head is not None:
                tree.prefetch_children(store, head)
            invocation = invoke(
                target,
                args,
                kwargs,
                replay_from=head,
                # Resuming continues the execution where it stopped: a call that
                # raised (and was caught) is reused, not run again.
                retry_raised=False,
                wrap_exceptions=True,
                on_step=_checkpointer(table, flow_id),
            )
        except Exception as exc:  # the flow cannot run at all (unregistered, diverged...)
            table.update(flow_id, status="failed", error=f"{type(exc).__name__}: {redact(exc)}")
            return "failed"
        status = _settle(table, state, store, flow_id, invocation)
        # Only now, with the resumed records written, are the answers spent: a
        # worker that died before this point leaves them for the next delivery.
        for rid in consumed:
            state.remove_input_request(rid)
        table.drop_answers(flow_id, consumed)
        return status


def _apply_answers(
    table: FlowTable, store: Store, flow_id: str, head: str, request_ids: list[str]
) -> tuple[str, list[str]] | None:
    """The head with every answered request applied (staged, not yet written),
    and the ids of those requests; ``None`` if nothing is answered.

    A head that is a checkpoint (not waiting for input) is returned as it is.
    """
    state = table.state
    invocation = tree.load(store, head).invocation()
    pending = dict(pending_input_requests(invocation))
    if not pending:
        return head, []
    answers: dict[tuple[int, ...], Any] = {}
    consumed: list[str] = []
    for rid in request_ids:
        try:
            request = state.get_input_request(rid)
        except UnknownInputRequest:
            continue
        if request.status != "answered":
            continue
        consumed.append(rid)
        if tuple(request.path) in pending:
            answers[tuple(request.path)] = _answer_value(table, store, flow_id, rid, request.answer)
    if not answers:
        return None
    return answer_inputs(invocation, answers, write=False).digest, consumed


def _answer_value(table: FlowTable, store: Store, flow_id: str, rid: str, digest: str) -> Any:
    """An answer kept with the flow in Redis (verified), else from the store."""
    data = table.answer_bytes(flow_id, rid)
    if data is None:
        return store.checkout(digest)
    verify(digest, data, f"the answer to {rid} in Redis")
    store.stage({digest: data})
    return unpack_value(data)


def _checkpointer(table: FlowTable, flow_id: str) -> Any:
    """The flow's ``on_step``: a checkpoint as the new head, at most every interval."""
    interval = runtime.settings().checkpoint_interval_s
    last = [0.0]

    def on_step(run: calls.Run) -> None:
        now = time.monotonic()
        if now - last[0] < interval:
            return
        last[0] = now
        table.update(flow_id, head=run.checkpoint())

    return on_step


def _settle(table: FlowTable, state: Any, store: Store, flow_id: str, invocation: Any) -> str:
    pending = pending_input_requests(invocation)
    if pending:
        ids = []
        answered_already = False
        for path, request in pending:
            rid = request_id(flow_id, path)
            stored = state.add_input_request(
                id=rid,
                flow_id=flow_id,
                requested_type=type_name(request.requested_type),
                for_value=str(request.requested_for),
                context=None if request.context is None else str(request.context),
                invocation=invocation.digest,
                path=list(path),
            )
            # Registering is idempotent and returns the request as stored: one
            # registered by an earlier run may have been answered meanwhile.
            answered_already = answered_already or stored.status == "answered"
            ids.append(rid)
        table.update(flow_id, status="waiting", head=invocation.digest, requests=ids)
        # Resume again rather than wait for an answer that is already there.
        if answered_already:
            table.update(flow_id, status="queued")
            run_flow.apply_async((flow_id,))
            return "queued"
        return "waiting"
    node = tree.load(store, invocation.digest)
    if node.output_digest is not None:
        table.update(
            flow_id, status="done", head=invocation.digest, output=node.output_digest, error=None
        )
        return "done"
    raised = store.checkout(node.raised_digest) if node.raised_digest else None
    error = redact(raised) if raised is not None else "the flow ended without output"
    table.update(flow_id, status="failed", head=invocation.digest, error=error)
    return "failed"


# Fan-out ---------------------------------------------------------------------

PULL_REPORT_S = 0.02
PULL_REPORT_ROWS = 64
MAP_TTL_S = 24 * 3600


@app.task(name="enact.pull_calls")
def pull_calls(map_id: str, function_id: str, puller: int) -> int:
    """Take calls from a map's work list until it is empty; report each result.

    Each item moves atomically into this puller's in-flight list before it
    runs, and leaves it only when its result is reported, so if this worker
    dies the redelivered task (same ``puller``) runs exactly those items again.
    A result carries the records of its call; the caller writes them with its
    own, so pullers cost the object store nothing.
    """
    map_id, puller = wire.task_id(map_id, "a map id"), wire.count(puller, "a puller number")
    function = _registered(function_id)
    keys = runtime.state().keys
    client = runtime.redis_bytes()
    todo, inflight, results = (
        keys.map_todo(map_id),
        keys.map_inflight(map_id, puller),
        keys.map_results(map_id),
    )
    store = runtime.store()
    done = 0
    with store:
        redo = list(client.lrange(inflight, 0, -1))
        reports: list[bytes] = []
        taken: list[bytes] = []
        last_report = time.monotonic()

        def report() -> None:
            nonlocal last_report
            pipe = client.pipeline(transaction=False)
            pipe.rpush(results, *reports)
            pipe.expire(results, MAP_TTL_S)
            for item in taken:
                pipe.lrem(inflight, 1, item)
            pipe.execute()
            reports.clear()
            taken.clear()
            last_report = time.monotonic()

        while True:
            item = redo.pop(0) if redo else client.lmove(todo, inflight, "LEFT", "RIGHT")
            if item is None:
                break
            work = wire.work_item(item)
            row, objects = _run_one(store, function, work)
            reports.append(wire.pack_result(work["index"], row, objects))
            taken.append(item)
            done += 1
            if len(reports) >= PULL_REPORT_ROWS or time.monotonic() - last_report >= PULL_REPORT_S:
                report()
        if reports:
            report()
    return done


def _registered(function_id: str) -> Function:
    """The registered function a map names; ``UnregisteredResource`` if there is none."""
    function = registered_target(Registry.get().function(function_id))
    assert isinstance(function, Function)
    return function


def _run_one(
    store: Store, function: Function, work: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run one call of a map as a top-level run: its row and its records (not written)."""
    replay_from = work["replay"]
    run = calls.Run(
        store,
        replay=(replay_from,) if replay_from else (),
        strict=work["strict"],
        retry_raised=work["retry"],
    )
    with run:
        call_args = wire.call_args(work["input"])
        try:
            function(*call_args.args, **call_args.kwargs)
        except Exception:
            pass  # recorded in the node
    node = run.top()
    if node is None:
        raise LookupError(f"the call of {function.function_id} could not be recorded")
    objects = run.take_objects()
    value_digest = node.output_digest or node.raised_digest
    assert value_digest is not None
    value = objects.get(value_digest)
    if value is None:
        value = store.get_object(value_digest)
    return tree.to_row(node, value), objects


@app.task(name="enact.replay")
def replay_invocation(digest: str, strict: bool = True) -> str:
    """Replay a recorded invocation; returns the new invocation's digest."""
    digest = wire.digest(digest, "the invocation to replay")
    strict = wire.flag(strict, "strict")
    store = runtime.store()
    with store:
        tree.prefetch_children(store, digest)
        invocation = tree.load(store, digest).invocation()
        return replay(invocation, strict=strict, wrap_exceptions=True).digest
