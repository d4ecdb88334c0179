"""The current store: a stack of active stores in a context variable.

It sits at the bottom of the core, below the values it serves: a ``Ref`` or an
``Invocation`` finds the store to read from here without importing ``Store`` (which
sits above them, since it encodes them). ``with store:`` pushes and pops; being a
context variable, the stack follows ``asyncio`` tasks, and a thread you start yourself
needs it passed along (``contextvars.copy_context().run``).

Objects obtained from a store remember it (a ``Ref`` holds it, an ``Invocation``
through its refs), so that they keep working after the ``with store:`` block, as
in enact 0.4: ``store_for`` picks the active store, else the remembered one.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from enact.errors import NoActiveStore

if TYPE_CHECKING:
    from enact.store import Store

_stores: contextvars.ContextVar[tuple[Store, ...]] = contextvars.ContextVar(
    "enact_stores", default=()
)


#: What to do when no store is active; ``{what}`` names the object used. It never
#: advises a particular store class: a cluster user's store comes from a URL.
NO_STORE_HELP = (
    "no store is active and {what} does not come from a store: run it inside "
    "`with store:` (for example `with enact.Store(url):`), or use a ref or invocation "
    "obtained from a store"
)


def current_store() -> Store:
    """The innermost active store; ``NoActiveStore`` (a ``StoreError``) if none is active."""
    stack = _stores.get()
    if not stack:
        raise NoActiveStore(
            "no store is active: run this inside `with store:` (for example "
            "`with enact.Store(url):`)"
        )
    return stack[-1]


def store_for(obj: Any) -> Store:
    """The store to use for ``obj``: the active one, else the one ``obj`` came from.

    ``obj`` is a ``Ref`` or anything holding refs in ``response``/``request`` (an
    ``Invocation``). An active store that does not hold ``obj`` gives way to the
    store ``obj`` came from. ``NoActiveStore`` if there is neither.
    """
    remembered: Store | None = None
    for ref in (obj, getattr(obj, "response", None), getattr(obj, "request", None)):
        remembered = getattr(ref, "_store", None)
        if remembered is not None:
            break
    stack = _stores.get()
    if stack:
        active = stack[-1]
        if remembered is None or remembered is active or active.has(obj.digest):
            return active
        return remembered
    if remembered is not None:
        return remembered
    raise NoActiveStore(NO_STORE_HELP.format(what=f"the {type(obj).__name__}"))


def active_store() -> Store | None:
    """The innermost active store, or ``None``."""
    stack = _stores.get()
    return stack[-1] if stack else None


def push(store: Store) -> None:
    """Make ``store`` the current store (``Store.__enter__``)."""
    _stores.set(_stores.get() + (store,))


def pop(store: Store) -> None:
    """Remove the innermost entry of ``store`` (``Store.__exit__``; also out of order)."""
    stack = _stores.get()
    if stack and stack[-1] is store:
        _stores.set(stack[:-1])
    elif store in stack:
        index = len(stack) - 1 - stack[::-1].index(store)
        _stores.set(stack[:index] + stack[index + 1 :])
