"""The current store: a stack of active stores in a context variable.

It sits at the bottom of the core, below the values it serves: a ``Ref`` or an
``Invocation`` finds the store to read from here without importing ``Store`` (which
sits above them, since it encodes them). ``with store:`` pushes and pops; being a
context variable, the stack follows ``asyncio`` tasks, and a thread you start yourself
needs it passed along (``contextvars.copy_context().run``).
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

from enact.errors import StoreError

if TYPE_CHECKING:
    from enact.store import Store

_stores: contextvars.ContextVar[tuple[Store, ...]] = contextvars.ContextVar(
    "enact_stores", default=()
)


def current_store() -> Store:
    """The innermost active store; ``StoreError`` if none is active."""
    stack = _stores.get()
    if not stack:
        raise StoreError(
            "no store is active: wrap the code in `with enact.InMemoryStore():`, "
            "`with enact.FileStore(path):` or `with enact.Store(backend):`"
        )
    return stack[-1]


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
