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

from enact import calls
from enact.calls import Node, Session, build_node, load_node
from enact.errors import DeserializationError, UnregisteredResource
from enact.invocations import (
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
from enact.trust import registered_target


def _node(invocation: Invocation | str, store: Store | None = None) -> Node:
    digest = invocation if isinstance(invocation, str) else invocation.digest
    return load_node(store or current_store(), digest)


def _check_path(node: Node, path: Sequence[int], depth: int) -> int:
    index = path[depth]
    if not 0 <= index < len(node.children):
        raise IndexError(
            f"path {tuple(path)} is out of range: the call at {tuple(path[:depth])} has "
            f"{len(node.children)} child calls"
        )
    return index


def call_at(invocation: Invocation, path: Sequence[int]) -> Invocation:
    """The invocation at ``path`` below ``invocation``."""
    store = current_store()
    node = _node(invocation, store)
    for depth in range(len(path)):
        node = load_node(store, node.children[_check_path(node, path, depth)])
    return node.invocation()


def walk(invocation: Invocation) -> Iterator[tuple[tuple[int, ...], Invocation]]:
    """Every call in execution (pre-)order as ``(path, invocation)``."""
    store = current_store()
    stack: list[tuple[tuple[int, ...], Node]] = [((), _node(invocation, store))]
    while stack:
        path, node = stack.pop()
        yield path, node.invocation()
        for index in range(len(node.children) - 1, -1, -1):
            stack.append((path + (index,), load_node(store, node.children[index])))


def leaf_paths(invocation: Invocation) -> list[tuple[int, ...]]:
    """Paths of the calls that made no calls themselves, in execution order."""
    store = current_store()
    out: list[tuple[int, ...]] = []
    stack: list[tuple[tuple[int, ...], Node]] = [((), _node(invocation, store))]
    while stack:
        path, node = stack.pop()
        if not node.children:
            out.append(path)
        for index in range(len(node.children) - 1, -1, -1):
            stack.append((path + (index,), load_node(store, node.children[index])))
    return out


def incomplete(objects: dict[str, bytes], node: Node, children: list[str]) -> Node:
    """An incomplete copy of ``node`` with the given children (for replay)."""
    return build_node(
        objects,
        node.request_digest,
        node.invokable_digest,
        node.input_digest,
        node.invokable_digest,
        None,
        None,
        False,
        children,
    )


def _commit(store: Store, objects: dict[str, bytes], node: Node, write: bool = True) -> Invocation:
    if write:
        store.put_objects(objects)
    else:
        store.stage(objects)
    store.known_digests.update(objects)
    store.nodes[node.digest] = node
    return node.invocation()


def rewind(invocation: Invocation, num_calls: int = 1) -> Invocation:
    """Drop the output and the last ``num_calls`` top-level child calls."""
    store = current_store()
    node = _node(invocation, store)
    if num_calls < 0 or num_calls > len(node.children):
        raise ValueError(
            f"cannot rewind {num_calls} calls: the invocation has {len(node.children)} child calls"
        )
    objects: dict[str, bytes] = {}
    kept = node.children[: len(node.children) - num_calls]
    return _commit(store, objects, incomplete(objects, node, kept))


def _truncate(
    store: Store, objects: dict[str, bytes], node: Node, path: Sequence[int], depth: int
) -> Node:
    index = _check_path(node, path, depth)
    kept = node.children[:index]
    if depth + 1 < len(path):
        child = load_node(store, node.children[index])
        kept.append(_truncate(store, objects, child, path, depth + 1).digest)
    return incomplete(objects, node, kept)


def rewind_to(invocation: Invocation, path: Sequence[int]) -> Invocation:
    """End the record just before the call at ``path``: it and all later calls go."""
    if not path:
        raise ValueError("path () is the top-level call itself; use rewind(len(children))")
    store = current_store()
    objects: dict[str, bytes] = {}
    node = _truncate(store, objects, _node(invocation, store), tuple(path), 0)
    return _commit(store, objects, node)


def rewind_leaves(invocation: Invocation, num_leaves: int = 1) -> Invocation:
    """Remove the last ``num_leaves`` leaf calls (calls that made no calls), at any depth.

    Walks the tree from the end and stops at the ``num_leaves``-th leaf, so the
    cost follows what is rewound, not the size of the record.
    """
    if num_leaves < 1:
        raise ValueError(f"cannot rewind {num_leaves} leaf calls: give a positive number")
    store = current_store()
    found: list[tuple[int, ...]] = []
    root = _node(invocation, store)
    # (path, node, how many of its children are still to visit, from the last).
    stack: list[tuple[tuple[int, ...], Node, int]] = [((), root, len(root.children))]
    while stack and len(found) < num_leaves:
        path, node, remaining = stack.pop()
        if remaining == 0:
            continue
        stack.append((path, node, remaining - 1))
        child_path = path + (remaining - 1,)
        child = load_node(store, node.children[remaining - 1])
        if child.children:
            stack.append((child_path, child, len(child.children)))
        else:
            found.append(child_path)
    if len(found) < num_leaves:
        raise ValueError(
            f"cannot rewind {num_leaves} leaf calls: the invocation has {len(found)}"
        )
    return rewind_to(invocation, found[-1])


def replace_calls(
    invocation: Invocation, replacements: dict[tuple[int, ...], Node], write: bool = True
) -> Invocation:
    """New records where each call at a path is replaced; its ancestors become incomplete.

    With ``write=False`` the records are staged (see ``Store.stage``), not written.
    """
    store = current_store()
    objects: dict[str, bytes] = {}

    def rebuild(node: Node, prefix: tuple[int, ...]) -> Node:
        if prefix in replacements:
            return replacements[prefix]
        children = list(node.children)
        depth = len(prefix)
        touched = {p[depth] for p in replacements if p[:depth] == prefix and len(p) > depth}
        for index in sorted(touched):
            if not 0 <= index < len(children):
                raise IndexError(f"no call at path {prefix + (index,)}")
            child = load_node(store, children[index])
            children[index] = rebuild(child, prefix + (index,)).digest
        return incomplete(objects, node, children)

    return _commit(store, objects, rebuild(_node(invocation, store), ()), write)


def call_target(invocation: Invocation, store: Store | None = None) -> tuple[Any, tuple, dict]:
    """The callable, args and kwargs that re-run the recorded top-level call."""
    store = store or current_store()
    node = _node(invocation, store)
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
        self._frame: calls.Frame | None = None
        self._token: Any = None

    def __enter__(self) -> ReplayContext:
        session = Session(current_store(), self._strict)
        self._frame = calls.Frame(session, self._recorded, 1, None)
        self._token = calls.enter_frame(self._frame)
        return self

    def __exit__(self, *exc_info: object) -> None:
        calls.exit_frame(self._token)
        assert self._frame is not None
        self._frame.session.flush()

    def invocations(self) -> list[Invocation]:
        assert self._frame is not None
        return [
            c.invocation()
            for c in self._frame.children
            if c is not None and c is not calls.UNRECORDED
        ]
