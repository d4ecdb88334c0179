"""Flows from the client's side: submit, watch, answer, cancel, retry, fork.

A flow is a top-level invocation run by the workers, paused and resumed at
will. Its state lives in Redis (``enact.worker.flowstate``, the only module that
changes it) and in the object store (its start request, checkpoints and
invocations), never only in a worker's memory, so any machine with the same
``ENACT_*`` settings can follow it. Tasks are sent by name (``RUN_FLOW``); the
task itself is in ``enact.worker.tasks``.

Anything that also needs the broker is recorded in Redis first (the flow is
queued with its task due), then sent; if the send fails the flow stays queued
and the recovery loop of any worker sends it again (``enact.worker.recovery``).
"""

from __future__ import annotations

import logging
import time
import types
from typing import Any, Iterable, Mapping, Sequence

from enact import tree
from enact.calls import value_object
from enact.errors import (
    ConflictError,
    FlowCancelled,
    FlowFailed,
    FlowTimeout,
    FlowWaiting,
    InputError,
    RequestNotPending,
    UnknownFlow,
    UnknownInputRequest,
    UnregisteredResource,
)
from enact.invokables import BoundFunction, Function
from enact.printing import invocation_summary
from enact.records import BoundMethod, CallArgs, Invocation, Request, checkout_record
from enact.replay import call_for, located
from enact.requests import InputRequest, RequestInput, check_answer, pending_input_requests
from enact.store import Store
from enact.trust import worker_target
from enact.worker import runtime
from enact.worker.app import app
from enact.worker.flowstate import (
    FINAL,
    FlowRecord,
    FlowState,
    FlowStatus,
    PendingInput,
    new_flow_id,
    request_id,
)

log = logging.getLogger(__name__)

# The task that runs a flow (enact.worker.tasks.run_flow), sent by name.
RUN_FLOW = "enact.run_flow"

STATUSES = tuple(s.value for s in FlowStatus)
UNTIL = (FlowStatus.WAITING, *FINAL)


def dispatch(state: FlowState, flow_id: str) -> bool:
    """Send the task that runs a queued flow; ``False`` if the broker refused it.

    The flow is already queued with its task due in Redis, so a failed send only
    delays it: the recovery loop sends it again (``ENACT_FLOW_REDISPATCH_S``).
    """
    try:
        app.send_task(RUN_FLOW, (flow_id,))
        return True
    except Exception as exc:  # the broker is down or does not answer
        log.warning("could not send the task of flow %s (%s); it is sent again later", flow_id, exc)
        try:
            state.dispatch_failed(flow_id)
        except Exception:
            pass  # its first due time stands
        return False


def call_parts(target: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """The invokable and input values to record for calling ``target`` on a worker.

    ``UnregisteredResource`` if a worker could not run it (see ``enact.trust``).
    """
    _check_importable(target)
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


def _check_importable(target: Any) -> None:
    """Refuse, saying why, a plain function no worker can import (before any other check)."""
    fn = target.__func__ if isinstance(target, types.MethodType) else target
    if not isinstance(fn, types.FunctionType):
        return
    name = f"{fn.__module__}.{fn.__qualname__}"
    if fn.__name__ == "<lambda>":
        why = "a lambda has no name a worker can import"
    elif "<locals>" in fn.__qualname__:
        why = "it is defined inside a function, so a worker cannot import it"
    elif fn.__module__ == "__main__":
        why = "it is defined in __main__, which workers do not import (theirs is Celery's)"
    else:
        return
    raise UnregisteredResource(
        f"cannot submit {name}: {why}; define it at module level in a module the workers "
        "import (listed in ENACT_IMPORTS) and register it with @enact.register"
    )


def _name(target: Any) -> str:
    return getattr(target, "__qualname__", None) or type(target).__qualname__


def start_target(store: Store, start: str) -> tuple[Any, tuple, dict]:
    """The callable, args and kwargs recorded in a flow's start request."""
    request = checkout_record(store, start, Request)
    return call_for(store.checkout(request.invokable), store.checkout(request.input))


class Flow:
    """A handle on a flow: poll it, wait for it, read its invocation and result."""

    def __init__(
        self, flow_id: str, state: FlowState | None = None, store: Store | None = None
    ) -> None:
        self.id = flow_id
        self._state = state or runtime.flow_state()
        self._store = store or runtime.store()

    def record(self) -> FlowRecord:
        """The flow's record; ``UnknownFlow`` if there is none (or it expired)."""
        return self._state.get(self.id)

    def status(self) -> FlowStatus:
        """queued, running, lapsed, waiting, done, failed or cancelled."""
        return self.record().status

    def wait(self, timeout: float | None = None, until: Iterable[str] = UNTIL) -> FlowStatus:
        """Block until the flow is waiting for input or finished; return that status.

        ``FlowTimeout`` if that takes more than ``timeout`` seconds.
        """
        wanted = {FlowStatus(str(s)) for s in until}
        deadline = None if timeout is None else time.monotonic() + timeout
        # Subscribe first, then read: a change between the two is not missed.
        with self._state.watch(self.id) as watch:
            while True:
                status = self.status()
                if status in wanted:
                    return status
                left = 1.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise FlowTimeout(f"flow {self.id} is still {status} after {timeout} s")
                # Wake on the next published change; re-read at least every second.
                watch.next(min(left, 1.0))

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
        """The output; waits up to ``timeout`` s. ``FlowFailed``, ``FlowCancelled``
        or ``FlowWaiting`` otherwise."""
        status = self.wait(timeout) if timeout is not None else self.status()
        record = self.record()
        if status == FlowStatus.DONE and record.output:
            with self._store:
                return self._store.checkout(record.output)
        if status == FlowStatus.CANCELLED:
            raise FlowCancelled(f"flow {self.id} ({record.name}) was cancelled")
        if status == FlowStatus.FAILED:
            raise FlowFailed(f"flow {self.id} ({record.name}) failed: {record.error}")
        if status == FlowStatus.WAITING:
            raise FlowWaiting(f"flow {self.id} is waiting for input: {self.pending_inputs()}")
        raise FlowWaiting(f"flow {self.id} is {status}; it has no result yet")

    def pending_inputs(self) -> list[PendingInput]:
        return self._state.pending_inputs(self.id)

    def summary(self) -> str:
        invocation = self.invocation()
        with self._store:
            return invocation_summary(invocation)

    def cancel(self) -> Flow:
        return cancel(self)

    def retry(self) -> Flow:
        return retry(self)

    def fork(
        self,
        at: Sequence[int] | None = None,
        answers: Mapping[Sequence[int], Any] | None = None,
    ) -> Flow:
        return fork(self, at=at, answers=answers)

    def __repr__(self) -> str:
        return f"Flow({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flow) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def _flow(flow: Flow | str) -> Flow:
    return flow if isinstance(flow, Flow) else Flow(flow)


def _start_flow(
    start: str,
    name: str,
    *,
    head: str | None = None,
    parent: str | None = None,
    retry: bool = False,
) -> Flow:
    state = runtime.flow_state()
    flow_id = new_flow_id()
    state.create(flow_id, start, name, head=head, parent=parent, retry=retry)
    dispatch(state, flow_id)
    return Flow(flow_id, state, runtime.store())


def submit(target: Any, *args: Any, **kwargs: Any) -> Flow:
    """Run ``target(*args, **kwargs)`` as a flow on the workers; returns its handle.

    ``target`` must be registered in a module the workers import
    (``ENACT_IMPORTS``): a lambda, a function defined inside another or in
    ``__main__`` is refused here, before anything is sent
    (``UnregisteredResource``, saying why). The call's request is committed to
    the store first, so the flow can be started, resumed or inspected from any
    machine. If the broker is down the flow is still accepted (queued), and the
    workers' recovery loop sends its task when it is back.
    """
    store = runtime.store()
    invokable, call_input = call_parts(target, args, kwargs)
    with store:
        request = Request(store.commit(invokable), store.commit(call_input))
        start = store.commit(request).digest
    return _start_flow(start, _name(target))


def submit_invocation(invocation: Invocation, *, retry: bool = True) -> Flow:
    """Continue a recorded (typically rewound) invocation as a new flow.

    The flow replays the invocation: recorded calls that returned are reused,
    removed ones run afresh (with ``retry``, calls recorded as raising run again,
    as in ``replay``). A flow that asks for input shows up in ``pending_inputs``.
    The invocation's store must be the cluster's.
    """
    store, digest = located(invocation, runtime.store())
    node = tree.load(store, digest)
    with store:
        target, _, _ = call_for(
            store.checkout(node.invokable_digest), store.checkout(node.input_digest)
        )
        worker_target(target)
    name = _name(target)
    head = None if node.complete and not node.children and node.output_digest is None else digest
    return _start_flow(node.request_digest, name, head=head, retry=retry)


def get_flow(flow_id: str) -> Flow:
    """The handle of an existing flow; ``UnknownFlow`` if there is none."""
    flow = Flow(flow_id)
    flow.record()
    return flow


def list_flows(
    status: str | Iterable[str] | None = None, since: float | None = None, limit: int = 100
) -> list[FlowRecord]:
    """Flow records, newest first: of the given statuses (``lapsed`` included), created
    at or after ``since`` (unix seconds). ``to_json()`` gives each as a dict."""
    return runtime.flow_state().list_flows(status, since, limit)


def pending_inputs(flow_id: str | None = None) -> list[PendingInput]:
    """Input requests waiting for an answer (of one flow, or all), oldest first."""
    return runtime.flow_state().pending_inputs(flow_id)


def answer(request_id: str, value: Any) -> Flow:
    """Answer an input request and resume its flow on any worker.

    The value is checked against the requested type first: ``AnswerTypeError``
    (a ``TypeError``) leaves the request pending. The answer and the flow's
    move to ``queued`` are one atomic step: of two racing answers exactly one
    wins and the other gets ``ConflictError`` (as does answering again).
    """
    state = runtime.flow_state()
    store = runtime.store()
    try:
        pending = state.get_input_request(request_id)
    except UnknownInputRequest:
        _refuse_spent_request(state, request_id)
        raise
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
    try:
        _, queued = state.answer(request_id, answer_digest, data)
    except UnknownInputRequest:
        _refuse_spent_request(state, request_id)
        raise
    if queued:
        dispatch(state, pending.flow_id)
    return Flow(pending.flow_id, state, store)


def _refuse_spent_request(state: FlowState, request_id: str) -> None:
    """``RequestNotPending`` if ``request_id`` names a request of a flow that still exists.

    A request is removed once the resumed flow has used its answer (or the flow was
    cancelled), so an answer arriving after that finds no request; it lost the race
    as surely as one that arrived a moment earlier, and gets a conflict too.
    """
    flow_id, sep, _ = request_id.rpartition(":")
    if not sep or not flow_id:
        return
    try:
        record = state.get(flow_id)
    except UnknownFlow:
        return
    why = (
        "its flow was cancelled"
        if record.status == FlowStatus.CANCELLED
        else "it was answered and the flow has moved on"
    )
    raise RequestNotPending(f"input request {request_id} is not pending: {why}")


def cancel(flow: Flow | str) -> Flow:
    """Cancel a flow: it stops at its next tracked call and its requests are withdrawn.

    A queued, waiting or lapsed flow is cancelled at once; a running one when
    its worker reaches its next step (``flow.wait()`` returns ``cancelled``).
    ``ConflictError`` if the flow already finished.
    """
    handle = _flow(flow)
    outcome = handle._state.cancel(handle.id)
    if outcome in ("cancelled", "requested"):
        return handle
    if outcome == "unknown":
        handle.record()  # raises UnknownFlow
    status = outcome.removeprefix("final:")
    raise ConflictError(f"flow {handle.id} is {status} already; it cannot be cancelled")


def retry(flow: Flow | str) -> Flow:
    """Continue a failed, cancelled or lapsed flow from its last checkpoint.

    A failed flow replays its record: the calls that raised run again. A
    cancelled or lapsed one resumes where it stopped. ``ConflictError`` for a
    flow in any other state.
    """
    handle = _flow(flow)
    outcome = handle._state.retry(handle.id)
    if outcome == "retried":
        dispatch(handle._state, handle.id)
        return handle
    if outcome == "unknown":
        handle.record()
    raise ConflictError(f"flow {handle.id} is {outcome}; only a failed, cancelled or lapsed "
                        "flow can be retried")  # fmt: skip


def fork(
    flow: Flow | str,
    at: Sequence[int] | None = None,
    answers: Mapping[Sequence[int], Any] | None = None,
) -> Flow:
    """A new flow that continues the flow's record, sharing every object.

    ``at``: rewind first, to just before the call at that path (``()``: start
    over). ``answers``: path of an input request (answered or pending) -> the
    value to answer it with instead (type-checked: ``AnswerTypeError``); the
    record is cut just after the last of them, so everything that followed the
    old answers runs again. The new flow's ``parent`` is the forked flow.
    """
    source = _flow(flow)
    record = source.record()
    store = source._store
    head = record.head
    with store:
        if at is not None and head is not None:
            head = tree.rewind_to(store, head, tuple(at)).digest if tuple(at) else None
        if answers:
            if head is None:
                raise InputError(f"flow {source.id} has recorded no input request to answer")
            head = _with_answers(store, head, answers)
    return _start_flow(record.start, record.name, head=head, parent=record.id)


def _with_answers(store: Store, digest: str, answers: Mapping[Sequence[int], Any]) -> str:
    """The record with each input request at a path answered anew, cut after the last."""
    objects: dict[str, bytes] = {}
    replacements: dict[tuple[int, ...], tree.Node] = {}
    for raw_path, value in answers.items():
        path = tuple(raw_path)
        try:
            node = tree.call_at(store, digest, path)
        except IndexError as exc:
            raise UnknownInputRequest(f"no call at path {path} to answer: {exc}") from None
        invokable = store.checkout(node.invokable_digest)
        if not path or not isinstance(invokable, RequestInput):
            raise UnknownInputRequest(f"the call at path {path} is not an input request")
        asked = store.checkout(node.input_digest)
        if isinstance(asked, CallArgs):
            asked = asked.args[0] if asked.args else None
        check_answer(InputRequest(invokable.requested_type, asked, invokable.context), value)
        output, data = value_object(value)
        objects[output] = data
        replacements[path] = tree.answered(objects, node, output)
    last = max(replacements)

    def rebuild(node: tree.Node, prefix: tuple[int, ...]) -> tree.Node:
        if prefix in replacements:
            return replacements[prefix]
        depth = len(prefix)
        children = list(node.children)
        if last[:depth] == prefix:
            children = children[: last[depth] + 1]  # keep through the last answer
        for index in range(len(children)):
            path = prefix + (index,)
            if any(p[: depth + 1] == path for p in replacements):
                children[index] = rebuild(tree.load(store, children[index]), path).digest
        return tree.incomplete(objects, node, children)

    return tree.commit(store, objects, rebuild(tree.load(store, digest), ())).digest


__all__ = [
    "RUN_FLOW",
    "STATUSES",
    "Flow",
    "FlowRecord",
    "FlowStatus",
    "answer",
    "call_parts",
    "cancel",
    "dispatch",
    "fork",
    "get_flow",
    "list_flows",
    "pending_inputs",
    "request_id",
    "retry",
    "start_target",
    "submit",
    "submit_invocation",
]
