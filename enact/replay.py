"""Rewind and replay: explore other executions of a recorded program.

Calls are addressed by *path*: the child indices from the top-level call down
(``()`` is the top-level call, ``(1, 0)`` the first child of its second child).
Rewinding builds new records that end just before some call; every ancestor of
the cut becomes incomplete, and unchanged subtrees are shared, not copied.
Replaying runs the top-level call again: each child call that matches the next
recorded one (same invokable state, same input) is not run; its recorded output
(or exception) and post-call state are reused. An incomplete recorded child is
re-entered and replayed the same way, and calls past the end of the record run
fresh. So replay costs one match per reused call, whatever the size of the
subtree behind it.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from enact import tree
from enact.calls import Run
from enact.errors import DeserializationError, UnregisteredResource
from enact.invokables import (
    AsyncInvokableBase,
    BoundFunction,
    Function,
    InvokableBase,
    invoke,
    invoke_async,
)
from enact.records import BoundMethod, CallArgs, Invocation
from enact.registry import shown
from enact.store import Store, current_store
from enact.tree import Node, Path
from enact.trust import registered_target


def call_at(invocation: Invocation, path: Sequence[int]) -> Invocation:
    """The invocation at ``path`` below ``invocation``."""
    return tree.call_at(current_store(), invocation.digest, path).invocation()


def walk(invocation: Invocation) -> Iterator[tuple[Path, Invocation]]:
    """Every call in execution (pre-)order as ``(path, invocation)``."""
    for path, node in tree.walk(current_store(), invocation.digest):
        yield path, node.invocation()


def leaf_paths(invocation: Invocation) -> list[Path]:
    """Paths of the calls that made no calls themselves, in execution order."""
    return tree.leaf_paths(current_store(), invocation.digest)


def rewind(invocation: Invocation, num_calls: int = 1) -> Invocation:
    """Drop the output and the last ``num_calls`` top-level child calls."""
    return tree.rewind(current_store(), invocation.digest, num_calls).invocation()


def rewind_to(invocation: Invocation, path: Sequence[int]) -> Invocation:
    """End the record just before the call at ``path``: it and all later calls go."""
    return tree.rewind_to(current_store(), invocation.digest, path).invocation()


def rewind_leaves(invocation: Invocation, num_leaves: int = 1) -> Invocation:
    """Remove the last ``num_leaves`` leaf calls (calls that made no calls), at any depth."""
    return tree.rewind_leaves(current_store(), invocation.digest, num_leaves).invocation()


def replace_calls(
    invocation: Invocation, replacements: dict[Path, Node], write: bool = True
) -> Invocation:
    """New records where each call at a path is replaced; its ancestors become incomplete.

    With ``write=False`` the records are staged (see ``Store.stage``), not written.
    """
    return tree.replace(current_store(), invocation.digest, replacements, write).invocation()


def call_target(invocation: Invocation, store: Store | None = None) -> tuple[Any, tuple, dict]:
    """The callable, args and kwargs that re-run the recorded top-level call."""
    store = store or current_store()
    node = tree.load(store, invocation.digest)
    return call_for(store.checkout(node.invokable_digest), store.checkout(node.input_digest))


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
    """Re-run the recorded call, reusing every recorded child call that matches."""
    target, args, kwargs = call_target(invocation)
    return invoke(target, args, kwargs, replay_from=invocation.digest, strict=strict, **options)


async def replay_async(invocation: Invocation, strict: bool = True, **options: Any) -> Invocation:
    target, args, kwargs = call_target(invocation)
    return await invoke_async(
        target, args, kwargs, replay_from=invocation.digest, strict=strict, **options
    )


class ReplayContext:
    """Replay recorded calls for plain code, outside of ``invoke``.

    Registered calls made inside the ``with`` block are matched, in order,
    against ``recorded``; matching ones are reused instead of run. Afterwards
    ``invocations()`` lists what the block called (reused or fresh)::

        with enact.ReplayContext(invocation.get_children()) as ctx:
            total = sum(roll_die(6) for _ in range(3))
    """

    def __init__(self, recorded: Sequence[Invocation] = (), strict: bool = True) -> None:
        self._recorded = [inv.digest for inv in recorded]
        self._strict = strict
        self._run: Run | None = None

    def __enter__(self) -> ReplayContext:
        self._run = Run(current_store(), replay=self._recorded, strict=self._strict).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._run is not None
        self._run.stop()
        self._run.flush()

    def invocations(self) -> list[Invocation]:
        assert self._run is not None
        return [node.invocation() for node in self._run.calls()]
