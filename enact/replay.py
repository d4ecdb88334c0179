"""Rewind and replay: explore other executions of a recorded program.

Calls are addressed by *path*: the child indices from the top-level call down
(``()`` is the top-level call, ``(1, 0)`` the first child of its second child).
Rewinding builds new records that end just before some call; every ancestor of
the cut becomes incomplete, and unchanged subtrees are shared, not copied.
Replaying runs the top-level call again: each child call that matches the next
recorded one (same invokable state, same input) and returned is not run; its
recorded output and post-call state are reused. A recorded child that raised, or
is incomplete, is re-entered and replayed the same way (so exceptions are
retried, as in enact 0.4, unless ``exception_override`` turns one into an
output), and calls past the end of the record run fresh. So replay costs one
match per reused call, whatever the size of the subtree behind it.

Every function here works in the active store, else in the store the invocation
came from (``context.store_for``), and returns invocations that remember it.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from enact import tree
from enact.calls import ExceptionOverride, Run
from enact.context import active_store, current_store, store_for
from enact.errors import (
    DeserializationError,
    ObjectMissing,
    UnregisteredResource,
    UnreplayableCall,
)
from enact.invokables import (
    AsyncInvokableBase,
    BoundFunction,
    Function,
    InvokableBase,
    invoke,
    invoke_async,
)
from enact.records import BoundMethod, CallArgs, Invocation
from enact.refs import Ref
from enact.registry import shown
from enact.store import Store
from enact.tree import Node, Path
from enact.trust import registered_target


def located(invocation: Invocation, store: Store | None = None) -> tuple[Store, str]:
    """The store to work in for ``invocation`` and its digest, stored there.

    An invocation whose refs were re-pointed (``response.modify()``) and not
    committed since is committed first, as enact 0.4 did when replaying it.
    """
    store = store or store_for(invocation)
    digest = invocation.digest
    try:
        tree.load(store, digest)
    except ObjectMissing:
        store.commit(invocation)
    return store, digest


def call_at(invocation: Invocation, path: Sequence[int]) -> Invocation:
    """The invocation at ``path`` below ``invocation``."""
    store, digest = located(invocation)
    return tree.call_at(store, digest, path).invocation(store)


def walk(invocation: Invocation) -> Iterator[tuple[Path, Invocation]]:
    """Every call in execution (pre-)order as ``(path, invocation)``."""
    store, digest = located(invocation)
    for path, node in tree.walk(store, digest):
        yield path, node.invocation(store)


def leaf_paths(invocation: Invocation) -> list[Path]:
    """Paths of the calls that made no calls themselves, in execution order."""
    return tree.leaf_paths(*located(invocation))


def rewind(invocation: Invocation, num_calls: int = 1) -> Invocation:
    """Drop the output and the last ``num_calls`` top-level child calls."""
    store, digest = located(invocation)
    return tree.rewind(store, digest, num_calls).invocation(store)


def rewind_to(invocation: Invocation, path: Sequence[int]) -> Invocation:
    """End the record just before the call at ``path``: it and all later calls go."""
    store, digest = located(invocation)
    return tree.rewind_to(store, digest, path).invocation(store)


def rewind_leaves(invocation: Invocation, num_leaves: int = 1) -> Invocation:
    """Remove the last ``num_leaves`` leaf calls (calls that made no calls), at any depth."""
    store, digest = located(invocation)
    return tree.rewind_leaves(store, digest, num_leaves).invocation(store)


def replace_calls(
    invocation: Invocation, replacements: dict[Path, Node], write: bool = True
) -> Invocation:
    """New records where each call at a path is replaced; its ancestors become incomplete.

    With ``write=False`` the records are staged (see ``Store.stage``), not written.
    """
    store, digest = located(invocation)
    return tree.replace(store, digest, replacements, write).invocation(store)


def call_target(invocation: Invocation, store: Store | None = None) -> tuple[Any, tuple, dict]:
    """The callable, args and kwargs that re-run the recorded top-level call.

    ``UnreplayableCall`` (an ``UnregisteredResource``) naming the invocation if
    the record names code that is not registered here.
    """
    store, digest = located(invocation, store)
    node = tree.load(store, digest)
    try:
        return call_for(store.checkout(node.invokable_digest), store.checkout(node.input_digest))
    except UnregisteredResource as exc:
        raise UnreplayableCall(f"cannot replay the invocation {digest[:12]}: {exc}") from exc


def call_for(invokable: Any, call_input: Any) -> tuple[Any, tuple, dict]:
    """The callable, args and kwargs for a recorded invokable and input.

    The callable must be registered code (``enact.trust``): a record cannot make
    this process run anything else. ``UnregisteredResource`` otherwise.
    """
    if isinstance(invokable, BoundMethod):
        function = invokable.function
        if not isinstance(function, Function):
            raise UnregisteredResource(
                f"the recorded method names {shown(function)}, not a registered function"
            )
        target: Any = registered_target(BoundFunction(function, invokable.instance))
    elif callable(invokable):
        target = registered_target(invokable)
    else:
        raise DeserializationError(
            f"the recorded invokable is a {type(invokable).__qualname__}, which cannot be called"
        )
    if isinstance(call_input, CallArgs) and not isinstance(
        target, (InvokableBase, AsyncInvokableBase)
    ):
        return target, tuple(call_input.args), dict(call_input.kwargs)
    if call_input is None and getattr(type(target), "_enact_input_type", None) is type(None):
        return target, (), {}
    return target, (call_input,), {}


def replay(invocation: Invocation, strict: bool = True, **options: Any) -> Invocation:
    """Re-run the recorded call, reusing every recorded child call that returned.

    Runs in the active store, else in the store the invocation came from.
    """
    store, digest = located(invocation)
    target, args, kwargs = call_target(invocation, store)
    if active_store() is store:
        return invoke(target, args, kwargs, replay_from=digest, strict=strict, **options)
    with store:
        return invoke(target, args, kwargs, replay_from=digest, strict=strict, **options)


async def replay_async(invocation: Invocation, strict: bool = True, **options: Any) -> Invocation:
    store, digest = located(invocation)
    target, args, kwargs = call_target(invocation, store)
    if active_store() is store:
        return await invoke_async(
            target, args, kwargs, replay_from=digest, strict=strict, **options
        )
    with store:
        return await invoke_async(
            target, args, kwargs, replay_from=digest, strict=strict, **options
        )


class ReplayContext:
    """Replay recorded calls for plain code, outside of ``invoke``.

    Registered calls made inside the ``with`` block are matched, in order,
    against ``subinvocations``; those that returned are reused instead of run
    (those that raised run again, unless ``exception_override`` gives their
    output). Afterwards ``invocations()`` lists what the block called (reused or
    fresh)::

        with enact.ReplayContext(invocation.get_children()) as ctx:
            total = sum(roll_die(6) for _ in range(3))
    """

    def __init__(
        self,
        subinvocations: Sequence[Invocation | Ref[Any]] = (),
        exception_override: ExceptionOverride | None = None,
        strict: bool = True,
    ) -> None:
        # Invocations or refs to them (as enact 0.4 took): both have the digest.
        self._recorded = [inv.digest for inv in subinvocations]
        self._exception_override = exception_override
        self._strict = strict
        self._run: Run | None = None

    def __enter__(self) -> ReplayContext:
        self._run = Run(
            current_store(),
            replay=self._recorded,
            strict=self._strict,
            exception_override=self._exception_override,
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._run is not None
        self._run.stop()
        self._run.flush()

    def invocations(self) -> list[Invocation]:
        assert self._run is not None
        return [node.invocation(self._run.store) for node in self._run.calls()]
