"""Context classes: a ``with`` block makes an object current for the code inside it.

A context class is registered once (``@register``), which gives it a context
variable of its own; ``with obj:`` makes ``obj`` the class's current object until
the block ends, in threads and ``asyncio`` tasks alike (context variables follow
tasks). A subclass can share its superclass's slot
(``@register_to_superclass(Base)``), so ``Base.get_current()`` sees either.

Threads start with empty context variables. A class whose
``permissive_initialization()`` is true (the default) starts such a thread with
no current object; one that returns false refuses, so that code never runs
outside a context by accident: wrap the thread's function with
``with_current_contexts`` (inherit the caller's objects) or
``with_new_contexts`` (start with none).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator, TypeVar

from enact.errors import ContextError, ContextTypeError, InvalidContextRegistration, NoActiveContext

__all__ = [
    "AsyncContext",
    "Context",
    "ContextError",
    "ContextTypeError",
    "NoActiveContext",
    "register",
    "register_to_superclass",
    "with_current_contexts",
    "with_new_contexts",
]

C = TypeVar("C", bound="_ContextBase")
T = TypeVar("T")

# One variable per registered class; subclasses registered to a superclass share it.
_variables: dict[type, contextvars.ContextVar[Any]] = {}


class _ContextBase:
    """What ``Context`` and ``AsyncContext`` share: finding the current object."""

    def __init__(self) -> None:
        self._token: contextvars.Token[Any] | None = None

    @classmethod
    def _variable(cls) -> contextvars.ContextVar[Any]:
        try:
            return _variables[cls]
        except KeyError:
            raise ContextError(
                f"context class {cls.__qualname__} is not registered; decorate it with "
                "@enact.contexts.register (or @register_to_superclass(Base))"
            ) from None

    @classmethod
    def permissive_initialization(cls) -> bool:
        """Whether a thread that never entered this context may start with none current."""
        return True

    @classmethod
    def get_current(cls: type[C]) -> C | None:
        """The current object of this class, or ``None``.

        ``ContextTypeError`` if the current object of a shared slot is of a
        sibling class; ``ContextError`` in a fresh thread of a non-permissive class.
        """
        variable = cls._variable()
        try:
            current = variable.get()
        except LookupError:
            if not cls.permissive_initialization():
                raise ContextError(
                    f"context {cls.__qualname__} is not initialized in this thread: wrap the "
                    "thread's function with enact.contexts.with_current_contexts or "
                    "with_new_contexts"
                ) from None
            variable.set(None)
            return None
        if current is not None and not isinstance(current, cls):
            raise ContextTypeError(
                f"the current context {current!r} is not of type {cls.__qualname__}"
            )
        return current  # type: ignore[no-any-return]

    @classmethod
    def current(cls: type[C]) -> C:
        """The current object of this class; ``NoActiveContext`` if there is none."""
        current = cls.get_current()
        if current is None:
            raise NoActiveContext(f"no {cls.__qualname__} context is active")
        return current

    @classmethod
    @contextlib.contextmanager
    def top_level(cls) -> Iterator[None]:
        """Run the block with no current object of this class."""
        variable = cls._variable()
        token = variable.set(None)
        try:
            yield
        finally:
            variable.reset(token)

    def _activate(self) -> None:
        try:
            type(self).get_current()  # refuses an uninitialized, non-permissive thread
        except ContextTypeError:
            pass  # a sibling in the shared slot is fine: we replace it for the block
        self._token = type(self)._variable().set(self)

    def _deactivate(self) -> None:
        if self._token is None:
            raise ContextError(f"{self!r} was exited without being entered")
        type(self)._variable().reset(self._token)
        self._token = None


class Context(_ContextBase):
    """A context entered with ``with``; override ``enter``/``exit`` for side effects."""

    def __enter__(self: C) -> C:
        type(self)._variable()  # unregistered classes fail before enter() runs
        self.enter()  # type: ignore[attr-defined]
        self._activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._deactivate()
        self.exit()

    def enter(self) -> None:
        """Called before the object becomes current."""

    def exit(self) -> None:
        """Called after the object stopped being current."""


class AsyncContext(_ContextBase):
    """A context entered with ``async with``; override ``aenter``/``aexit``."""

    async def __aenter__(self: C) -> C:
        type(self)._variable()
        await self.aenter()  # type: ignore[attr-defined]
        self._activate()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._deactivate()
        await self.aexit()

    async def aenter(self) -> None:
        """Awaited before the object becomes current."""

    async def aexit(self) -> None:
        """Awaited after the object stopped being current."""


def register(cls: type[C]) -> type[C]:
    """Give a context class its own slot (a context variable)."""
    if cls in _variables:
        raise InvalidContextRegistration(f"context class {cls.__qualname__} is already registered")
    variable: contextvars.ContextVar[Any] = contextvars.ContextVar(
        f"enact_context_{cls.__module__}.{cls.__qualname__}"
    )
    variable.set(None)
    _variables[cls] = variable
    return cls


def register_to_superclass(superclass: type) -> Callable[[type[C]], type[C]]:
    """Register a subclass to share ``superclass``'s slot."""

    def decorate(cls: type[C]) -> type[C]:
        if cls in _variables:
            raise InvalidContextRegistration(
                f"context class {cls.__qualname__} is already registered"
            )
        if superclass not in _variables:
            raise InvalidContextRegistration(
                f"Superclass {superclass.__qualname__} is not registered"
            )
        if not issubclass(cls, superclass):
            raise InvalidContextRegistration(
                f"context class {cls.__qualname__} must be a subclass of "
                f"{superclass.__qualname__}"
            )
        _variables[cls] = _variables[superclass]
        return cls

    return decorate


def _run_with(values: dict[contextvars.ContextVar[Any], Any], fn: Callable[..., T],
              *args: Any, **kwargs: Any) -> T:
    # Only the registered variables are set: other context variables of the
    # calling thread (a store, an asyncio loop's) keep their own propagation.
    tokens = [(variable, variable.set(value)) for variable, value in values.items()]
    try:
        return fn(*args, **kwargs)
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


def with_current_contexts(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap ``fn`` to run with the context objects current where it was wrapped."""
    snapshot = contextvars.copy_context()
    values = {v: snapshot.get(v) for v in set(_variables.values())}
    return lambda *args, **kwargs: _run_with(values, fn, *args, **kwargs)


def with_new_contexts(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap ``fn`` to run with no current object in any registered context."""
    values = {v: None for v in set(_variables.values())}
    return lambda *args, **kwargs: _run_with(values, fn, *args, **kwargs)
