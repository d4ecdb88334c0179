"""Rollouts: run a program once more from a recorded prefix, with fresh samples, and score it.

A rollout is one tracked call, ``rollout(spec)``, with two children: ``execute(spec)``
(whose one child is the program's call) and the scorer's call. The program's call
replays a *prefix* (a record of the program rewound just before one of its sampled
calls, or a record that stopped on ``BudgetExhausted``): every recorded call before the
cut is reused, the sampled calls after it draw afresh (``enact.search.sampling``) up to
the rollout's cap. Then the registered scorer judges the finished invocation. The
rollout returns a ``Rollout``: the invocation, its score, what it drew and what it
reused, and where its sampled calls are (the nodes the search can branch from next).

Because the program's call is recorded below the rollout (its slot is reserved in
``execute``'s record and filled with the run that replays the prefix), a rollout that
is replayed or resumed (say, after the scorer asked a human) reuses its program
call and what ``execute`` found out about it: a sample is never drawn twice.

``run_rollouts`` runs a batch of rollouts as children of the calling tracked call,
in order: on the cluster through ``enact.worker.map`` (workers pull them from a
Redis work list), or locally in threads through the same engine operations
(``calls.reserve`` / ``fill``). The records are the same either way.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from enact import calls, tree
from enact.invokables import AnyInvokable, Function
from enact.records import Invocation
from enact.registry import register
from enact.replay import rewind_to
from enact.resources import Resource
from enact.search.sampling import sampling
from enact.serialization import packed_links
from enact.store import Store
from enact.tree import Node

__all__ = ["Execution", "Rollout", "RolloutSpec", "execute", "footprint", "rollout", "run_rollouts"]


@register
@dataclass
class RolloutSpec(Resource):
    """What one rollout runs: the program, where it starts from, its key and its cap.

    ``source`` is the digest of a recorded invocation of the program (``None``: run
    it from the start); ``cut`` the path of the sampled call to rewind it to (``None``:
    replay ``source`` as it is, retrying the call that ran out of samples); ``depth``
    the number of sampled calls in that prefix.
    """

    program: Any
    args: list[Any]
    scorer: Any
    key: str
    cap: int
    source: str | None = None
    cut: list[int] | None = None
    depth: int = 0
    sampled: list[str] = field(default_factory=list)


@register
@dataclass
class Rollout(Resource):
    """The outcome of one rollout.

    ``samples`` are the paths of the sampled calls of ``invocation`` that returned, in
    the order they ran, and ``outputs`` their output digests (the search tree's edges);
    ``drawn`` samples were drawn fresh, ``reused_samples`` of ``samples`` came from
    the prefix, as did ``reused_calls`` calls in all. ``score`` is ``None`` when the
    program did not return (it ran out of samples, or raised).
    """

    invocation: Invocation
    finished: bool
    score: float | None
    drawn: int
    reused_samples: int
    reused_calls: int
    samples: list[list[int]]
    outputs: list[str]
    sampled: list[str]


def _program_spec(scope: calls.Scope, program: Any, args: tuple) -> calls.CallSpec:
    """The ``CallSpec`` of calling ``program(*args)`` as a child of ``scope``."""
    if isinstance(program, Function):
        input_object, immutable = calls.args_object(args, {})
        return calls.prepare(scope, program, program.reference_object(), input_object, immutable)
    if isinstance(program, AnyInvokable):
        if len(args) > 1:
            raise TypeError(f"{program!r} takes at most one argument (its input), got {args!r}")
        value = args[0] if args else None
        input_object = calls.value_object(value)
        immutable = type(value) in calls.MEMO_TYPES
        return calls.prepare(
            scope, type(program), calls.packed(program), input_object, immutable, program
        )
    raise TypeError(
        f"a search needs a registered function or an Invokable as its program, got {program!r}"
    )


def _run_program(
    scope: calls.Scope, store: Store, spec: RolloutSpec
) -> tuple[Node, int, int, set[str]]:
    """Run (or reuse) the program's call as the rollout's first child.

    Returns its node, the samples drawn, the calls reused from the prefix and the
    invokables known to sample.
    """
    args = tuple(spec.args)
    slot = calls.reserve(scope, _program_spec(scope, spec.program, args))
    if slot.recorded is not None:  # the rollout itself is replayed or resumed
        return slot.recorded, -1, 0, set(spec.sampled)
    reused = 0
    # Exploring from a prefix retries what raised there (the call that ran out of
    # samples), even in a run that resumes; re-entering our own record follows the run.
    strict, retry_raised = True, True
    if slot.replay is not None:
        replay: tuple[str, ...] = (slot.replay,)
        strict, retry_raised = slot.strict, slot.retry_raised
    elif spec.source is None:
        replay = ()
    else:
        prefix = spec.source
        if spec.cut is not None:
            source = tree.load(store, spec.source).invocation(store)
            prefix = rewind_to(source, spec.cut).digest
        reused = sum(1 for _, n in tree.walk(store, prefix) if n.output_digest is not None)
        replay = (prefix,)
    run = calls.Run(store, replay=replay, strict=strict, retry_raised=retry_raised)
    with sampling(spec.key, spec.cap) as sampler, run:
        try:
            spec.program(*args)
        except Exception:
            pass  # recorded in the node: a failed rollout scores nothing
    node = run.top()
    if node is None:
        calls.release(slot)
        raise LookupError(f"the program call of the rollout {spec.key!r} could not be recorded")
    # The scorer reads the invocation: write its records now (idempotent).
    store.put_objects(run.take_objects())
    calls.fill(slot, node)
    return node, sampler.drawn, reused, set(spec.sampled) | sampler.sampled


@register
@dataclass
class Execution(Resource):
    """The program's run in a rollout, before scoring (see ``Rollout`` for the fields).

    A child call of its own, so a rollout that is re-entered (its scorer asked for
    input) reuses it whole, with what it drew and which calls sampled.
    """

    invocation: Invocation
    finished: bool
    drawn: int
    reused_samples: int
    reused_calls: int
    samples: list[list[int]]
    outputs: list[str]
    sampled: list[str]


@register
def execute(spec: RolloutSpec) -> Execution:
    """Replay the program from ``spec``'s prefix with fresh samples (a rollout's first child)."""
    scope = calls.current()
    if scope is None:
        raise RuntimeError("a rollout runs as a tracked call (invoke it, or run a search)")
    store = calls.store_of(scope)
    node, drawn, reused_calls, sampled = _run_program(scope, store, spec)
    samples: list[list[int]] = []
    outputs: list[str] = []
    for path, call in tree.walk(store, node.digest):
        if path and call.invokable_digest in sampled and call.output_digest is not None:
            samples.append(list(path))
            outputs.append(call.output_digest)
    if drawn < 0:  # recorded earlier (this call is replayed): what that run drew
        drawn = max(0, len(samples) - spec.depth)
    return Execution(
        invocation=node.invocation(store),
        finished=node.output_digest is not None,
        drawn=drawn,
        reused_samples=min(spec.depth, len(samples)),
        reused_calls=reused_calls,
        samples=samples,
        outputs=outputs,
        sampled=sorted(sampled),
    )


@register
def rollout(spec: RolloutSpec) -> Rollout:
    """Replay the program from ``spec``'s prefix with fresh samples, then score it."""
    run = execute(spec)
    score = float(spec.scorer(run.invocation)) if run.finished else None
    return Rollout(
        invocation=run.invocation,
        finished=run.finished,
        score=score,
        drawn=run.drawn,
        reused_samples=run.reused_samples,
        reused_calls=run.reused_calls,
        samples=run.samples,
        outputs=run.outputs,
        sampled=run.sampled,
    )


# Running a batch -----------------------------------------------------------------------


def run_rollouts(
    specs: Sequence[RolloutSpec], *, parallelism: int, cluster: bool
) -> list[Rollout]:
    """Run ``specs`` as the next children of the current tracked call, in order.

    At most ``parallelism`` at once: on the cluster's workers, or in local threads.
    An exception a rollout raised (an input request from the scorer) is raised
    here after the rollouts before it are recorded, as a loop would.
    """
    if not specs:
        return []
    if cluster:
        import enact.worker

        return list(enact.worker.map(rollout, specs, parallelism=parallelism))
    scope = calls.current()
    if scope is None:
        raise RuntimeError("run_rollouts runs inside a tracked call (the search)")
    return _map_local(scope, rollout, list(specs), parallelism)  # type: ignore[arg-type]


def _map_local(
    scope: calls.Scope, fn: Function, items: list[Any], parallelism: int
) -> list[Any]:
    """``enact.worker.map``'s contract, with threads of this process as the workers."""
    reference = fn.reference_object()
    slots: list[calls.Slot] = []
    work: dict[int, calls.Slot] = {}
    for item in items:
        input_object, immutable = calls.args_object((item,), {})
        slot = calls.reserve(scope, calls.prepare(scope, fn, reference, input_object, immutable))
        if slot.recorded is None:
            work[len(slots)] = slot
        slots.append(slot)
        if slot.recorded is not None and slot.recorded.raised_digest is not None:
            break  # reused as raising (a resumed run): a loop would stop here too
    store = calls.store_of(scope)

    def one(index: int) -> tuple[int, Node, dict[str, bytes]]:
        slot = work[index]
        run = calls.Run(
            store,
            replay=(slot.replay,) if slot.replay else (),
            strict=slot.strict,
            retry_raised=slot.retry_raised,
        )
        with run:
            try:
                fn(items[index])
            except Exception:
                pass  # recorded in the node
        node = run.top()
        if node is None:
            raise LookupError(f"the call of {fn.function_id} could not be recorded")
        return index, node, run.take_objects()

    done: dict[int, tuple[Node, bytes | None]] = {}
    if work:
        workers = max(1, min(parallelism, len(work)))
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="enact-search") as pool:
                # Each task runs in a copy of this context: the current store, no frame.
                futures = [
                    pool.submit(contextvars.copy_context().run, one, i) for i in sorted(work)
                ]
                finished = [f.result() for f in futures]
        except BaseException:
            calls.release(slots[0])
            raise
        for index, node, objects in finished:
            for digest, data in objects.items():
                calls.stage(scope, digest, data)
            calls.fill(work[index], node)
            done[index] = (node, objects.get(node.output_digest or node.raised_digest or ""))
    outputs: list[Any] = []
    try:
        for index, slot in enumerate(slots):
            node, value = done.get(index) or (slot.recorded, None)  # type: ignore[assignment]
            if node.raised_digest is not None and index + 1 < len(slots):
                calls.release(slots[index + 1])
            outputs.append(calls.outcome(store, node, value, scope))
    finally:
        calls.step(scope)
    return outputs


# Storage -----------------------------------------------------------------------------


def footprint(store: Store, digests: Iterable[str]) -> tuple[int, int, int, int]:
    """What the records reachable from ``digests`` take, stored and copied.

    Returns the distinct objects and their bytes (what the store holds), the bytes
    of a full copy of each root's records (each root's reachable objects, summed
    over the roots), and the bytes of each root's record written out as a tree (an
    object counted once per reference to it, as a nested document would repeat it).
    """
    sizes: dict[str, int] = {}
    links: dict[str, list[str]] = {}
    copied = 0
    for root in digests:
        # Walk from the root, reading only objects no earlier root reached.
        reached: set[str] = set()
        frontier = [root]
        while frontier:
            new = [d for d in dict.fromkeys(frontier) if d not in reached]
            reached.update(new)
            unknown = [d for d in new if d not in sizes]
            for digest, data in zip(unknown, store.get_objects(unknown)):
                sizes[digest] = len(data)
                links[digest] = packed_links(data)
            frontier = [link for d in new for link in links[d]]
        copied += sum(sizes[d] for d in reached)
    expanded: dict[str, int] = {}

    def tree_size(digest: str) -> int:
        size = expanded.get(digest)
        if size is None:  # records form a DAG of small depth: recursion is bounded
            size = sizes[digest] + sum(tree_size(d) for d in links[digest])
            expanded[digest] = size
        return size

    as_trees = sum(tree_size(root) for root in digests)
    return len(sizes), sum(sizes.values()), copied, as_trees
