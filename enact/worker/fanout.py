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

import msgpack
from celery import group

from enact import calls
from enact.calls import CallSpec, args_object
from enact.errors import FlowTimeout
from enact.invocations import Function
from enact.records import Invocation
from enact.replay import call_target
from enact.serialization import unpack_value
from enact.trust import worker_target
from enact.worker import runtime
from enact.worker.tasks import MAP_TTL_S, pull_calls, raised_exception, replay_invocation
from enact.worker.wire import result_message

DEFAULT_PARALLELISM = 128


def _run_remote(
    fn: Function,
    inputs: list[bytes],
    todo: list[int],
    parallelism: int,
    timeout: float | None,
    objects: dict[str, bytes],
) -> dict[int, tuple[calls.Node, bytes | None]]:
    """Run the calls ``todo`` (indices into ``inputs``) on the workers; their nodes and values.

    The records the calls made are added to ``objects`` for the caller to write.
    """
    keys = runtime.state().keys
    client = runtime.redis_bytes()
    map_id = uuid.uuid4().hex
    todo_key, results_key = keys.map_todo(map_id), keys.map_results(map_id)
    pullers = max(1, min(parallelism, len(todo)))
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(todo), 1000):
        pipe.rpush(todo_key, *(msgpack.packb([i, inputs[i]]) for i in todo[start : start + 1000]))
    pipe.expire(todo_key, MAP_TTL_S)
    pipe.execute()
    group(
        pull_calls.si(map_id, fn.function_id, n).set(ignore_result=True) for n in range(pullers)
    ).apply_async()
    deadline = None if timeout is None else time.monotonic() + timeout
    wanted = set(todo)
    rows: dict[int, tuple[calls.Node, bytes | None]] = {}
    try:
        while len(rows) < len(todo):
            if deadline is not None and time.monotonic() > deadline:
                raise FlowTimeout(
                    f"enact.worker.map: {len(todo) - len(rows)} of {len(todo)} calls "
                    f"unfinished after {timeout} s"
                )
            first = client.blpop([results_key], timeout=1)
            if first is None:
                continue
            batch = [first[1], *(client.lpop(results_key, 10_000) or [])]
            for packed in batch:
                index, node, value, records = result_message(packed, len(inputs))
                if index in wanted and index not in rows:  # a redone call may report twice
                    rows[index] = (node, value)
                    objects.update(records)
    finally:
        pipe = client.pipeline(transaction=False)
        pipe.delete(todo_key, results_key)
        pipe.delete(*(keys.map_inflight(map_id, n) for n in range(pullers)))
        pipe.execute()
    return rows


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
    calls run at once; ``FlowTimeout`` after ``timeout`` seconds.
    """
    fn = worker_target(fn)
    if not isinstance(fn, Function):
        raise TypeError(f"enact.worker.map needs a registered function, got {fn!r}")
    items = list(iterable)
    if not items:
        return []
    frame = calls.current_frame()
    invokable_digest, invokable_data = fn.reference_object()
    inputs: list[bytes] = []
    results: list[tuple[calls.Node, bytes | None] | None] = [None] * len(items)
    todo: list[int] = []
    first_slot = len(frame.children) if frame is not None else 0
    for index, item in enumerate(items):
        (input_digest, input_data), immutable = args_object((item,), {})
        inputs.append(input_data)
        if frame is None:
            todo.append(index)
            continue
        frame.session.add(invokable_digest, invokable_data)
        frame.session.add(input_digest, input_data)
        spec = CallSpec(fn, invokable_digest, input_digest, immutable)
        # Match before taking the slot: a strict divergence must not leave a hole.
        recorded = frame.next_recorded(spec)
        frame.children.append(None)
        if recorded is not None and recorded.complete:
            results[index] = (recorded, None)
        else:
            todo.append(index)
    store = frame.session.store if frame is not None else runtime.store()
    if todo:
        records: dict[str, bytes] = {}
        for index, done in _run_remote(fn, inputs, todo, parallelism, timeout, records).items():
            results[index] = done
        if frame is not None:
            for digest, data in records.items():
                frame.session.add(digest, data)
        else:
            store.put_objects(records)
    outputs: list[Any] = []
    for index, result in enumerate(results):
        assert result is not None
        node, value = result
        store.nodes.setdefault(node.digest, node)
        if frame is not None:
            frame.children[first_slot + index] = node
        if node.raised_digest is not None:
            if frame is not None:
                del frame.children[first_slot + index + 1 :]
            data = value if value is not None else store.get_object(node.raised_digest)
            exc = raised_exception(data)
            if frame is not None:
                frame.child_exception = exc
            try:
                exc.__enact_raised__ = node.raised_digest  # type: ignore[attr-defined]
            except AttributeError:
                pass
            raise exc
        if value is not None:
            outputs.append(unpack_value(value))
        else:
            assert node.output_digest is not None
            outputs.append(store.checkout_value(node.output_digest))
    if frame is not None and frame.depth == 1 and frame.session.on_checkpoint is not None:
        frame.session.on_checkpoint(frame)  # a flow's fan-out is one step: checkpoint it
    return outputs


def replay_many(
    invocation: Invocation, n: int, *, strict: bool = True, timeout: float | None = None
) -> list[Invocation]:
    """Replay ``invocation`` ``n`` times in parallel on the workers.

    Typically ``invocation`` is rewound, so each replay samples the removed
    calls afresh: the building block of execution search. The invocation must
    be in the cluster's store. Returns the ``n`` new invocations.
    """
    if n < 1:
        return []
    worker_target(call_target(invocation, runtime.store())[0])
    job = group(replay_invocation.s(invocation.digest, strict) for _ in range(n))
    async_result = job.apply_async()
    try:
        digests = async_result.get(timeout=timeout, disable_sync_subtasks=False)
    finally:
        async_result.forget()
    store = runtime.store()
    return [calls.load_node(store, d).invocation() for d in digests]
