"""The Celery tasks: run or resume a flow, run a batch of calls, replay an invocation.

Every task is idempotent: a flow that runs elsewhere (a live lease) or is
finished is left alone at once, a resume with no new answers changes nothing,
and a batch or replay that runs twice records the same kind of result twice
(content addressing deduplicates equal objects). Tasks exchange digests and
packed bytes only (msgpack), never pickles.

A flow's run owns the flow through a lease (``enact.worker.flowstate``). It
stops at its next step, without recording anything more, when the flow is
cancelled (settled as ``cancelled``), when the lease is lost (another worker
took the flow over), or when Redis or the store cannot be reached: then the
flow goes back to ``queued`` from its last checkpoint, never ``failed`` for it.
The workers' recovery loop (``enact.worker.recovery``) starts with the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery import signals

from enact import calls, tree
from enact.digests import verify
from enact.errors import StoreUnavailable, UnknownInputRequest
from enact.invokables import Function, invoke
from enact.records import NativeException
from enact.redaction import redact
from enact.registry import Registry
from enact.replay import replay
from enact.requests import answer_inputs, pending_input_requests, type_name
from enact.serialization import unpack_value
from enact.store import Store
from enact.trust import registered_target
from enact.worker import recovery, runtime, wire
from enact.worker.app import app
from enact.worker.flows import RUN_FLOW, dispatch, start_target
from enact.worker.flowstate import FlowState, FlowStatus, Lease, NewRequest, request_id

log = logging.getLogger(__name__)

# Errors that mean "the cluster's storage is away", not "the flow failed".
OUTAGES = (StoreUnavailable, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
OUTAGE_TYPES = frozenset(
    {"enact.errors.StoreUnavailable", "redis.exceptions.ConnectionError",
     "redis.exceptions.TimeoutError"}
)  # fmt: skip


class _Stop(BaseException):
    """Raised in a flow's ``on_step`` to end its run at once, recording nothing more.

    A ``BaseException``, so the flow's own ``except Exception`` cannot catch it.
    ``reason``: ``cancel``, ``lost`` or ``outage``.
    """

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


# Flows ----------------------------------------------------------------------


# Not acknowledged late: a flow's recovery is ours (leases and the outbox), not
# the broker's; an early ack also keeps a worker from acknowledging on a broker
# connection that died meanwhile (Celery then exits: see docs/engine.md).
@app.task(name=RUN_FLOW, bind=True, acks_late=False)
def run_flow(self: Any, flow_id: str) -> str:
    """Start, resume or continue a flow; returns its status when this run ends.

    A flow that runs elsewhere under a live lease ends this task at once (``busy``).
    """
    flow_id = wire.task_id(flow_id, "a flow id")
    state = runtime.flow_state()
    outcome, lease = state.start(flow_id, self.request.hostname or "")
    if lease is None:
        if outcome == "cancel":  # cancelled while its lease had lapsed
            return state.cancel(flow_id)
        return outcome
    try:
        return _run_flow(state, lease, flow_id)
    except _Stop as stop:
        return _stopped(state, lease, flow_id, stop)
    except OUTAGES as exc:
        log.warning("flow %s met an outage (%s); back to queued", flow_id, exc)
        return _requeue(state, lease, flow_id)
    except Exception as exc:  # its records cannot be read (damaged, collected...)
        log.exception("flow %s cannot continue", flow_id)
        return _final(lease, FlowStatus.FAILED, error=f"{type(exc).__name__}: {redact(exc)}")
    finally:
        lease.stop()


def _run_flow(state: FlowState, lease: Lease, flow_id: str) -> str:
    record = state.get(flow_id)
    log.info(
        "flow %s (%s): %s", flow_id, record.name,
        f"resuming from {record.head}" if record.head else "starting",
    )  # fmt: skip
    store = runtime.store()
    with store:
        head = record.head
        consumed: list[str] = []
        if head is not None:
            head, consumed, waiting = _apply_answers(state, store, flow_id, head, record.requests)
            if waiting:  # nothing answered yet: (re)register its requests and wait
                return _settle(
                    state, lease, store, flow_id, tree.load(store, head).invocation(), []
                )
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
                # raised (and was caught) is reused, not run again; a retried
                # (failed) flow or a replay runs it again.
                retry_raised=lease.retry,
                wrap_exceptions=True,
                on_step=_checkpointer(lease),
            )
        except OUTAGES:
            raise
        except Exception as exc:  # the flow cannot run at all (unregistered, diverged...)
            return _final(lease, FlowStatus.FAILED, error=f"{type(exc).__name__}: {redact(exc)}")
        return _settle(state, lease, store, flow_id, invocation, consumed)


def _apply_answers(
    state: FlowState, store: Store, flow_id: str, head: str, request_ids: list[str]
) -> tuple[str, list[str], bool]:
    """The head with every answered request applied (staged, not written), the ids
    of those requests, and whether the head waits on requests none of which is
    answered. A head that is a checkpoint (not waiting for input) is returned as is.
    """
    invocation = tree.load(store, head).invocation()
    pending = dict(pending_input_requests(invocation))
    if not pending:
        return head, [], False
    answers: dict[tuple[int, ...], Any] = {}
    consumed: list[str] = []
    for rid in request_ids:
        try:
            request = state.get_input_request(rid)
        except UnknownInputRequest:
            continue
        if request.status != "answered" or request.answer is None:
            continue
        consumed.append(rid)
        if tuple(request.path) in pending:
            answers[tuple(request.path)] = _answer_value(state, store, flow_id, rid, request.answer)
    if not answers:
        return head, consumed, True
    return answer_inputs(invocation, answers, write=False).digest, consumed, False


def _answer_value(state: FlowState, store: Store, flow_id: str, rid: str, digest: str) -> Any:
    """An answer kept with the flow in Redis (verified), else from the store."""
    data = state.answer_bytes(flow_id, rid)
    if data is None:
        return store.checkout(digest)
    verify(digest, data, f"the answer to {rid} in Redis")
    store.stage({digest: data})
    return unpack_value(data)


def _checkpointer(lease: Lease) -> Any:
    """The flow's ``on_step``: stop if cancelled or lost; else a checkpoint as the
    new head (at most every ``ENACT_CHECKPOINT_INTERVAL_S``), which renews the lease."""
    interval = runtime.settings().checkpoint_interval_s
    last = [0.0]

    def on_step(run: calls.Run) -> None:
        if lease.cancelled.is_set():
            raise _Stop("cancel")
        if lease.lost.is_set():
            raise _Stop("lost")
        now = time.monotonic()
        if interval and now - last[0] < interval:
            return
        last[0] = now
        try:
            outcome = lease.checkpoint(run.checkpoint())
        except Exception as exc:  # the store or Redis is away: requeue, do not fail
            raise _Stop("outage", exc) from exc
        if outcome in ("cancel", "lost"):
            raise _Stop(outcome)

    return on_step


def _settle(
    state: FlowState, lease: Lease, store: Store, flow_id: str, invocation: Any, consumed: list[str]
) -> str:
    log.info("flow %s: run ended at %s", flow_id, invocation.digest)
    pending = pending_input_requests(invocation)
    if pending:
        requests = [
            NewRequest(
                id=request_id(flow_id, path),
                requested_type=type_name(request.requested_type),
                for_value=str(request.requested_for),
                context=None if request.context is None else str(request.context),
                invocation=invocation.digest,
                path=tuple(path),
            )
            for path, request in pending
        ]
        status = lease.settle(
            FlowStatus.WAITING, head=invocation.digest, requests=requests, consumed=consumed
        )
        if status == "queued":  # a request was answered while the flow ran
            dispatch(state, flow_id)
        return status
    node = tree.load(store, invocation.digest)
    if node.output_digest is not None:
        return _final(
            lease, FlowStatus.DONE, head=invocation.digest, output=node.output_digest,
            consumed=consumed,
        )  # fmt: skip
    raised = store.checkout(node.raised_digest) if node.raised_digest else None
    if isinstance(raised, NativeException) and raised.type_name in OUTAGE_TYPES:
        log.warning("flow %s raised %s; back to queued from its checkpoint", flow_id, raised)
        return _requeue(state, lease, flow_id)
    error = redact(raised) if raised is not None else "the flow ended without output"
    return _final(lease, FlowStatus.FAILED, head=invocation.digest, error=error, consumed=consumed)


def _final(lease: Lease, status: FlowStatus, **fields: Any) -> str:
    return lease.settle(status, **fields)


def _stopped(state: FlowState, lease: Lease, flow_id: str, stop: _Stop) -> str:
    if stop.reason == "cancel":
        record = state.get(flow_id)
        withdrawn = [r.id for r in state.pending_inputs(flow_id)]
        withdrawn += [r for r in record.requests if r not in withdrawn]
        return lease.settle(FlowStatus.CANCELLED, error="cancelled", consumed=withdrawn)
    if stop.reason == "lost":
        lease.stop()
        return "lost"
    log.warning("flow %s met an outage (%s); back to queued", flow_id, stop.cause)
    return _requeue(state, lease, flow_id)


def _requeue(state: FlowState, lease: Lease, flow_id: str) -> str:
    """Put the flow back in the queue from its checkpoint, trying for about two
    leases; if Redis stays away, the lease lapses and the recovery loop does it."""
    deadline = time.monotonic() + 2 * state.lease_s
    pause = 0.2
    while True:
        try:
            outcome = lease.requeue()
            if outcome == "cancel":
                return state.cancel(flow_id)
            if outcome == "requeued":
                dispatch(state, flow_id)
                return "queued"
            return outcome
        except Exception as exc:
            if time.monotonic() > deadline:
                log.warning("flow %s: could not requeue (%s); its lease will lapse", flow_id, exc)
                return "lapsing"
        time.sleep(pause)
        pause = min(2.0, pause * 2)


# The recovery loop runs in every worker process that consumes tasks.


@signals.worker_ready.connect
def _start_recovery(**_: Any) -> None:
    recovery.start(runtime.settings().recovery_interval_s)


@signals.worker_shutdown.connect
def _stop_recovery(**_: Any) -> None:
    recovery.stop()


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
    own, so pullers cost the object store nothing. A live puller renews a
    heartbeat; the caller sends the task of a dead one again (same ``puller``).
    A puller that cannot run the calls (the function is not registered here, a
    malformed item) reports why, so the caller raises it at once.
    """
    map_id, puller = wire.task_id(map_id, "a map id"), wire.count(puller, "a puller number")
    state = runtime.flow_state()
    try:
        return _pull(state, map_id, _registered(function_id), puller)
    except OUTAGES:
        raise  # the caller sends this puller's task again; its items are still there
    except Exception as exc:  # the caller raises this at once instead of waiting
        try:
            state.map_report(map_id, puller, [wire.pack_error(exc)], [], MAP_TTL_S)
        except Exception:
            pass
        raise


def _pull(state: FlowState, map_id: str, function: Function, puller: int) -> int:
    store = runtime.store()
    done = 0
    alive = _Heartbeat(lambda: state.map_alive(map_id, puller), state.lease_s / 3)
    with store, alive:
        redo = state.map_inflight(map_id, puller)
        reports: list[bytes] = []
        taken: list[bytes] = []
        last_report = time.monotonic()

        def report() -> None:
            nonlocal last_report
            state.map_report(map_id, puller, reports, taken, MAP_TTL_S)
            reports.clear()
            taken.clear()
            last_report = time.monotonic()

        while True:
            item = redo.pop(0) if redo else state.map_take(map_id, puller)
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


class _Heartbeat:
    """Calls ``beat`` now and then every ``period_s`` from a thread, until the block ends."""

    def __init__(self, beat: Any, period_s: float) -> None:
        self.beat = beat
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="enact-puller", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.beat()
            except Exception:
                continue  # Redis briefly away

    def __enter__(self) -> _Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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
