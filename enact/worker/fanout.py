"""Fan-out: run many calls on the workers, recorded as if they had run locally.

``map`` puts the calls in a Redis work list and sends a bounded number of
puller tasks (``parallelism``) that take calls until the list is empty: cheap
calls cost a Redis pop each, not a Celery message each, and slow calls spread
over every free worker thread. Results stream back through a Redis list.

Inside a tracked flow, ``map`` attaches every call's invocation as the next
child of the caller, in input order: the flow's record is the same as if the
loop had run locally, so it can be rewound and replayed, and on replay the
recorded calls are reused instead of being sent again.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterable

from celery import group

from enact import calls, tree
from enact.calls import args_object
from enact.errors import FlowTimeout, ReplayError, UnregisteredResource, WorkerError
from enact.invokables import Function
from enact.records import Invocation
from enact.replay import call_target
from enact.store import Store
from enact.tree import Node
from enact.trust import worker_target
from enact.worker import runtime, wire
from enact.worker.flows import submit_invocation
from enact.worker.tasks import MAP_TTL_S, pull_calls, replay_invocation

DEFAULT_PARALLELISM = 128


def _run_remote(
    fn: Function,
    work: dict[int, bytes],
    parallelism: int,
    timeout: float | None,
    objects: dict[str, bytes],
) -> dict[int, tuple[Node, bytes | None]]:
    """Run work items (index -> ``wire.pack_work_item``) on the workers; their nodes
    and values by index. A result for an index not asked for is refused.

    The records the calls made are added to ``objects`` for the caller to write.
    A worker that cannot run the calls at all reports why, and that is raised
    here at once: ``UnregisteredResource`` (naming ``ENACT_IMPORTS``) for a
    function the workers do not import, ``WorkerError`` otherwise.
    """
    items = list(work.values())
    size = max(work) + 1
    state = runtime.flow_state()
    if timeout is None:
        timeout = runtime.settings().map_timeout_s
    map_id = uuid.uuid4().hex
    pullers = max(1, min(parallelism, len(items)))
    state.map_push(map_id, items, MAP_TTL_S)
    try:
        group(
            pull_calls.si(map_id, fn.function_id, n).set(ignore_result=True) for n in range(pullers)
        ).apply_async()
        deadline = time.monotonic() + timeout
        results: dict[int, tuple[Node, bytes | None]] = {}
        progress = checked = time.monotonic()
        while len(results) < len(items):
            now = time.monotonic()
            if now - progress > 2 * state.lease_s and now - checked > state.lease_s:
                # No result for two leases: send again the task of each puller that
                # died holding items (a Redis broker redelivers only after an hour).
                checked = now
                for n in state.map_stalled(map_id, pullers):
                    pull_calls.si(map_id, fn.function_id, n).set(ignore_result=True).apply_async()
            if time.monotonic() > deadline:
                raise FlowTimeout(
                    f"enact.worker.map: {len(items) - len(results)} of {len(items)} calls "
                    f"unfinished after {timeout} s (ENACT_MAP_TIMEOUT_S, or pass timeout=); "
                    "are workers running and reading the queue?"
                )
            for packed in state.map_results(map_id, 1):
                report = wire.error_report(packed)
                if report is not None:
                    _raise_worker_error(fn, *report)
                index, node, value, records = wire.result_message(packed, size)
                if index in work and index not in results:  # a redone call may report twice
                    results[index] = (node, value)
                    objects.update(records)
                    progress = time.monotonic()
    finally:
        state.map_drop(map_id, pullers)
    return results


def _raise_worker_error(fn: Function, kind: str, message: str) -> None:
    text = f"the workers could not run {fn.function_id}: {message}"
    if kind.endswith(("UnregisteredResource", "UnreplayableCall")):
        if "ENACT_IMPORTS" not in text:
            text += " (list its module in the workers' ENACT_IMPORTS)"
        raise UnregisteredResource(text)
    raise WorkerError(f"{text} ({kind})")


def map(  # noqa: A001  (mirrors the builtin on purpose)
    fn: Any,
    iterable: Iterable[Any],
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    timeout: float | None = None,
) -> list[Any]:
    """``[fn(x) for x in iterable]``, with the calls run in parallel on the workers.

    ``fn`` must be a registered function the workers import. Outputs come back
    in input order. If a call raised, the calls before it are recorded and its
    exception is raised here, as a local loop would. At most ``parallelism``
    calls run at once; ``FlowTimeout`` after ``timeout`` seconds (default
    ``ENACT_MAP_TIMEOUT_S``, one hour). If the workers cannot run ``fn`` at all
    (they do not import it), their error is raised here within seconds.
    """
    fn = worker_target(fn)
    if not isinstance(fn, Function):
        raise TypeError(f"enact.worker.map needs a registered function, got {fn!r}")
    items = list(iterable)
    if not items:
        return []
    scope = calls.current()
    if scope is None:
        return _map_untracked(fn, items, parallelism, timeout)
    return _map_tracked(scope, fn, items, parallelism, timeout)


def _map_untracked(
    fn: Function, items: list[Any], parallelism: int, timeout: float | None
) -> list[Any]:
    """Outside a tracked call: run every item; their records go straight to the store."""
    work = {
        index: wire.pack_work_item(index, args_object((item,), {})[0][1], None, True)
        for index, item in enumerate(items)
    }
    objects: dict[str, bytes] = {}
    results = _run_remote(fn, work, parallelism, timeout, objects)
    store = runtime.store()
    store.put_objects(objects)
    return _outputs(store, [results[i] for i in range(len(items))], None, None)


def _map_tracked(
    scope: calls.Scope, fn: Function, items: list[Any], parallelism: int, timeout: float | None
) -> list[Any]:
    """Inside a tracked call: each item is the next child, matched and recorded as in a loop.

    Every item is matched against the record first (a slot each): a recorded
    item that returned is reused, one that raised is sent again (replaying its
    own recorded children), as a loop's replay runs it again; in a run that does
    not retry (a resumed flow) it is reused, and nothing after it runs, as in a
    loop. At a strict divergence the items before it still run and are recorded,
    then the ``ReplayError`` is raised, exactly as a loop would.
    """
    reference = fn.reference_object()
    slots: list[calls.Slot] = []
    diverged: ReplayError | None = None
    work: dict[int, bytes] = {}
    for item in items:
        input_object, immutable = args_object((item,), {})
        spec = calls.prepare(scope, fn, reference, input_object, immutable)
        try:
            slot = calls.reserve(scope, spec)
        except ReplayError as exc:
            diverged = exc
            break
        if slot.recorded is None:
            index = len(slots)
            work[index] = wire.pack_work_item(
                index, input_object[1], slot.replay, slot.strict, slot.retry_raised
            )
        slots.append(slot)
        if slot.recorded is not None and slot.recorded.raised_digest is not None:
            break  # reused as raising (a resumed run): a loop would stop here too
    results: dict[int, tuple[Node, bytes | None]] = {}
    if work:
        objects: dict[str, bytes] = {}
        try:
            results = _run_remote(fn, work, parallelism, timeout, objects)
        except BaseException:
            calls.release(slots[0])  # the map itself failed (a timeout): no child was made
            raise
        for digest, data in objects.items():
            calls.stage(scope, digest, data)
    done: list[tuple[Node, bytes | None]] = []
    for index, slot in enumerate(slots):
        if slot.recorded is not None:
            done.append((slot.recorded, None))
        else:
            node, value = results[index]
            calls.fill(slot, node)
            done.append((node, value))
    try:
        outputs = _outputs(calls.store_of(scope), done, scope, slots)
    finally:
        calls.step(scope)  # a flow's fan-out is one step: it may checkpoint here
    if diverged is not None:
        raise diverged
    return outputs


def _outputs(
    store: Store,
    done: list[tuple[Node, bytes | None]],
    scope: calls.Scope | None,
    slots: list[calls.Slot] | None,
) -> list[Any]:
    """The outputs in order; at the first call that raised, release the later slots and raise."""
    outputs: list[Any] = []
    for index, (node, value) in enumerate(done):
        if node.raised_digest is not None and slots is not None and index + 1 < len(slots):
            calls.release(slots[index + 1])
        outputs.append(calls.outcome(store, node, value, scope))
    return outputs


def replay_many(
    invocation: Invocation,
    n: int,
    *,
    strict: bool = True,
    timeout: float | None = None,
    as_flows: bool = False,
) -> list[Any]:
    """Replay ``invocation`` ``n`` times in parallel on the workers.

    Typically ``invocation`` is rewound, so each replay samples the removed
    calls afresh: the building block of execution search. The invocation must
    be in the cluster's store. Returns the ``n`` new invocations (``FlowTimeout``
    after ``timeout`` s, default ``ENACT_MAP_TIMEOUT_S``).

    With ``as_flows=True`` each replay runs as a flow instead, and the ``n``
    ``Flow`` handles are returned at once: a replay that asks for input waits
    for an answer (``enact.worker.pending_inputs``) instead of ending there.
    """
    if n < 1:
        return []
    worker_target(call_target(invocation, runtime.store())[0])
    if as_flows:
        return [submit_invocation(invocation) for _ in range(n)]
    if timeout is None:
        timeout = runtime.settings().map_timeout_s
    job = group(replay_invocation.s(invocation.digest, strict) for _ in range(n))
    async_result = job.apply_async()
    try:
        digests = async_result.get(timeout=timeout, disable_sync_subtasks=False)
    finally:
        async_result.forget()
    store = runtime.store()
    return [tree.load(store, d).invocation(store) for d in digests]
