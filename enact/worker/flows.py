"""Flows: top-level invocations run by the workers, paused and resumed at will.

A flow's state lives in Redis (a hash per flow, see ``enact.stores._keys``) and
in the object store (its request, checkpoints and invocations), never only in a
worker's memory. Its life::

    queued -> running -> done | failed
                  \\-> waiting (input requests registered) -> queued (answered) -> running ...

While a worker runs a flow it holds the flow's lock, a Redis key with a short
expiry that a background thread renews; a second delivery of the same task (a
redelivery after a crash, a duplicate resume) waits until the lock is free or
lapses, so two workers never run one flow at once.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from enact import tree
from enact.calls import value_object
from enact.errors import (
    ConflictError,
    FlowFailed,
    FlowTimeout,
    FlowWaiting,
    UnknownFlow,
)
from enact.invokables import BoundFunction, Function
from enact.printing import invocation_summary
from enact.records import BoundMethod, CallArgs, Invocation, Request, checkout_record
from enact.replay import call_for
from enact.requests import check_answer, pending_input_requests
from enact.store import Store
from enact.trust import worker_target
from enact.worker import runtime
from enact.worker.app import app

# The task that runs a flow (enact.worker.tasks.run_flow), sent by name.
RUN_FLOW = "enact.run_flow"

STATUSES = ("queued", "running", "waiting", "done", "failed")
FINAL = ("done", "failed")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass
class FlowRecord:
    """A flow as stored in Redis."""

    id: str
    status: str
    start: str
    name: str = ""
    head: str | None = None
    output: str | None = None
    error: str | None = None
    requests: list[str] = field(default_factory=list)
    created: float = 0.0
    updated: float = 0.0
    worker: str | None = None


class FlowTable:
    """Reads and writes flow records and locks."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.client = state.client
        self.keys = state.keys
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)

    def create(self, flow_id: str, start: str, name: str) -> None:
        now = time.time()
        pipe = self.client.pipeline()
        pipe.hset(
            self.keys.flow(flow_id),
            mapping={
                "status": "queued",
                "start": start,
                "name": name,
                "created": now,
                "updated": now,
            },
        )
        pipe.zadd(self.keys.flows(), {flow_id: now})
        pipe.execute()

    def get(self, flow_id: str) -> FlowRecord:
        raw = self.client.hgetall(self.keys.flow(flow_id))
        if not raw:
            raise UnknownFlow(
                f"no flow with id {flow_id!r} under Redis prefix {self.keys.prefix!r}"
            )
        return FlowRecord(
            id=flow_id,
            status=raw["status"],
            start=raw["start"],
            name=raw.get("name", ""),
            head=raw.get("head") or None,
            output=raw.get("output") or None,
            error=raw.get("error") or None,
            requests=json.loads(raw.get("requests") or "[]"),
            created=float(raw.get("created", 0)),
            updated=float(raw.get("updated", 0)),
            worker=raw.get("worker") or None,
        )

    def update(self, flow_id: str, **fields: Any) -> None:
        """Set fields of a flow; a new status is also published to its waiters."""
        mapping = {
            k: ("" if v is None else json.dumps(v) if isinstance(v, list) else v)
            for k, v in fields.items()
        }
        mapping["updated"] = time.time()
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.keys.flow(flow_id), mapping=mapping)
        if "status" in fields:
            pipe.publish(self.keys.flow_events(flow_id), fields["status"])
        pipe.execute()

    def set_answer(self, flow_id: str, request_id: str, data: bytes) -> None:
        """Keep the packed answer to a request with the flow until a worker consumes it."""
        encoded = base64.b64encode(data).decode()
        self.client.hset(self.keys.flow(flow_id), f"answer:{request_id}", encoded)

    def answer_bytes(self, flow_id: str, request_id: str) -> bytes | None:
        raw = self.client.hget(self.keys.flow(flow_id), f"answer:{request_id}")
        return None if raw is None else base64.b64decode(raw)

    def drop_answers(self, flow_id: str, request_ids: list[str]) -> None:
        if request_ids:
            self.client.hdel(self.keys.flow(flow_id), *(f"answer:{r}" for r in request_ids))

    def ids(self, limit: int = 100) -> list[str]:
        return list(self.client.zrevrange(self.keys.flows(), 0, limit - 1))

    def lock(self, flow_id: str, ttl_s: float) -> FlowLock:
        return FlowLock(self, flow_id, ttl_s)


class FlowLock:
    """A renewed Redis lock on one flow; it lapses ``ttl_s`` after its holder dies."""

    def __init__(self, table: FlowTable, flow_id: str, ttl_s: float) -> None:
        self.table = table
        self.key = table.keys.flow_lock(flow_id)
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self.table.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._thread = threading.Thread(
            target=self._keep_alive, name="enact-flow-lock", daemon=True
        )
        self._thread.start()
        return True

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not self.table._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
                    return  # lost it (expired while Redis was away): stop renewing
            except Exception:
                continue  # Redis briefly unreachable: try again next period

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.table._release(keys=[self.key], args=[self.token])
        except Exception:
            pass  # it expires on its own


def request_id(flow_id: str, path: tuple[int, ...]) -> str:
    """The id of the input request at ``path`` of a flow: stable across resumes."""
    return f"{flow_id}:{'.'.join(map(str, path))}"


def call_parts(target: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """The invokable and input values to record for calling ``target`` on a worker.

    ``UnregisteredResource`` if a worker could not run it (see ``enact.trust``).
    """
    callable_ = worker_target(target)
    if isinstance(callable_, Function):
        return callable_, CallArgs(list(args), dict(kwargs))
    if isinstance(callable_, BoundFunction):
        return BoundMethod(callable_.instance, callable_.function), CallArgs(
            list(args), dict(kwargs)
        )
    if kwargs or len(args) > 1:
        raise TypeError(f"{target!r} takes at most one positional argument (its input)")
    return callable_, args[0] if args else None


def _name(target: Any) -> str:
    return getattr(target, "__qualname__", None) or type(target).__qualname__


class Flow:
    """A handle on a flow: poll it, wait for it, read its invocation and result."""

    def __init__(
        self, flow_id: str, table: FlowTable | None = None, store: Store | None = None
    ) -> None:
        self.id = flow_id
        self._table = table or FlowTable(runtime.state())
        self._store = store or runtime.store()

    def record(self) -> FlowRecord:
        return self._table.get(self.id)

    def status(self) -> str:
        """``queued``, ``running``, ``waiting``, ``done`` or ``failed``."""
        return self.record().status

    def wait(
        self, timeout: float | None = None, until: tuple[str, ...] = ("waiting", *FINAL)
    ) -> str:
        """Block until the flow is done, failed or waiting for input; return that status.

        ``FlowTimeout`` if that takes more than ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Subscribe first, then read: a change between the two is not missed.
        pubsub = self._table.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self._table.keys.flow_events(self.id))
        try:
            while True:
                status = self.status()
                if status in until:
                    return status
                left = 1.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise FlowTimeout(f"flow {self.id} is still {status} after {timeout} s")
                # Wake on the next published change; re-read at least every second.
                pubsub.get_message(timeout=min(left, 1.0))
        finally:
            pubsub.close()

    def invocation(self) -> Invocation:
        """The latest invocation: complete, waiting for input, or a checkpoint."""
        record = self.record()
        if record.head is None:
            raise FlowWaiting(
                f"flow {self.id} has not recorded anything yet (status {record.status})"
            )
        # The invocation remembers the flow's store: it works with no store active.
        with self._store:
            return tree.load(self._store, record.head).invocation(self._store)

    def result(self, timeout: float | None = None) -> Any:
        """The output; waits up to ``timeout`` s. ``FlowFailed``/``FlowWaiting`` otherwise."""
        status = self.wait(timeout) if timeout is not None else self.status()
        record = self.record()
        if status == "done" and record.output:
            with self._store:
                return self._store.checkout(record.output)
        if status == "failed":
            raise FlowFailed(f"flow {self.id} ({record.name}) failed: {record.error}")
        if status == "waiting":
            raise FlowWaiting(f"flow {self.id} is waiting for input: {self.pending_inputs()}")
        raise FlowWaiting(f"flow {self.id} is {status}; it has no result yet")

    def pending_inputs(self) -> list[Any]:
        return pending_inputs(self.id)

    def summary(self) -> str:
        invocation = self.invocation()
        with self._store:
            return invocation_summary(invocation)

    def __repr__(self) -> str:
        return f"Flow({self.id!r})"


def submit(target: Any, *args: Any, **kwargs: Any) -> Flow:
    """Run ``target(*args, **kwargs)`` as a flow on the workers; returns its handle.

    ``target`` must be registered in a module the workers import
    (``ENACT_IMPORTS``). The call's request is committed to the store first, so
    the flow can be started, resumed or inspected from any machine.
    """
    store = runtime.store()
    invokable, call_input = call_parts(target, args, kwargs)
    with store:
        request = Request(store.commit(invokable), store.commit(call_input))
        start = store.commit(request).digest
    table = FlowTable(runtime.state())
    flow_id = uuid.uuid4().hex[:20]
    table.create(flow_id, start, _name(target))
    app.send_task(RUN_FLOW, (flow_id,))
    return Flow(flow_id, table, store)


def get_flow(flow_id: str) -> Flow:
    """The handle of an existing flow; ``UnknownFlow`` if there is none."""
    flow = Flow(flow_id)
    flow.record()
    return flow


def pending_inputs(flow_id: str | None = None) -> list[Any]:
    """Input requests waiting for an answer (of one flow, or all), oldest first."""
    return runtime.state().pending_inputs(flow_id)  # type: ignore[no-any-return]


def answer(request_id: str, value: Any) -> Flow:
    """Answer an input request and resume its flow on any worker.

    The value is checked against the requested type first: ``AnswerTypeError``
    (a ``TypeError``) leaves the request pending. ``ConflictError`` if it was
    already answered.
    """
    state = runtime.state()
    store = runtime.store()
    pending = state.get_input_request(request_id)
    if pending.status == "answered":
        raise ConflictError(f"input request {request_id} was already answered")
    with store:
        invocation = tree.load(store, pending.invocation).invocation()
        requests = dict(pending_input_requests(invocation))
        request = requests.get(tuple(pending.path))
        if request is None:
            raise ConflictError(
                f"input request {request_id} is no longer pending in flow {pending.flow_id}"
            )
        check_answer(request, value)
        answer_digest, data = value_object(value)
    # The answer waits in Redis (durable with AOF) until a worker writes it to
    # the store with the resumed flow's records: one object-store write, not two.
    table = FlowTable(state)
    table.set_answer(pending.flow_id, request_id, data)
    state.answer_input_request(request_id, answer_digest)
    table.update(pending.flow_id, status="queued")
    app.send_task(RUN_FLOW, (pending.flow_id,))
    return Flow(pending.flow_id, table, store)


def start_target(store: Store, start: str) -> tuple[Any, tuple, dict]:
    """The callable, args and kwargs recorded in a flow's start request."""
    request = checkout_record(store, start, Request)
    return call_for(store.checkout(request.invokable), store.checkout(request.input))


__all__ = [
    "STATUSES",
    "Flow",
    "FlowRecord",
    "FlowTable",
    "answer",
    "get_flow",
    "pending_inputs",
    "request_id",
    "submit",
]
