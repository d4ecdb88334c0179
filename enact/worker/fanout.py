"""Fan-out: run many calls on the workers, recorded as if they had run locally.

``map`` sends calls in batches (one message and one store write per batch, not
per call), and inside a tracked flow attaches every call's invocation as the
next child of the caller, in input order: the flow's record is the same as if
the loop had run locally, so it can be rewound and replayed, and on replay the
recorded calls are reused instead of being sent again.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from celery import group

from enact import calls
from enact.calls import CallSpec, args_object
from enact.invocations import Function
from enact.records import Invocation
from enact.serialization import unpack_value
from enact.worker import runtime
from enact.worker.tasks import raised_exception, replay_invocation, row_node, run_batch

DEFAULT_BATCHES = 256


def _batches(indices: Sequence[int], batch_size: int | None) -> list[list[int]]:
    if batch_size is None:
        batch_size = max(1, math.ceil(len(indices) / DEFAULT_BATCHES))
    return [list(indices[i : i + batch_size]) for i in range(0, len(indices), batch_size)]


def map(  # noqa: A001  (mirrors the builtin on purpose)
    fn: Any, iterable: Iterable[Any], *, batch_size: int | None = None, timeout: float | None = None
) -> list[Any]:
    """``[fn(x) for x in iterable]``, with the calls run in parallel on the workers.

    ``fn`` must be a registered function the workers import. Outputs come back
    in input order. If a call raised, the calls before it are recorded and its
    exception is raised here, as a local loop would. ``batch_size`` calls go in
    one message (default: the calls split into about 256 batches).
    """
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
        frame.children.append(None)
        recorded = frame.next_recorded(spec)
        if recorded is not None and recorded.complete:
            results[index] = (recorded, None)
        else:
            todo.append(index)
    if todo:
        batches = _batches(todo, batch_size)
        job = group(run_batch.s(fn.function_id, [inputs[i] for i in b]) for b in batches)
        async_result = job.apply_async()
        try:
            rows = async_result.get(timeout=timeout, disable_sync_subtasks=False)
        finally:
            async_result.forget()
        for batch, batch_rows in zip(batches, rows):
            for index, row in zip(batch, batch_rows):
                results[index] = row_node(row)
    store = frame.session.store if frame is not None else runtime.store()
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
    job = group(replay_invocation.s(invocation.digest, strict) for _ in range(n))
    async_result = job.apply_async()
    try:
        digests = async_result.get(timeout=timeout, disable_sync_subtasks=False)
    finally:
        async_result.forget()
    store = runtime.store()
    return [calls.load_node(store, d).invocation() for d in digests]
