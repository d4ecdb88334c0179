"""Which code may run: registered code only.

The trust boundary of a cluster: a worker runs a call only if its target is
registered code (a function or method decorated with ``@enact.register``, or an
instance of a registered ``Invokable`` class) in a module the worker imported
through ``ENACT_IMPORTS``, just as Celery runs only registered tasks. Stored
data and messages can choose *which* registered target runs and with which
arguments; they cannot name anything else (``enact.registry`` resolves names
only among registered code), and this module checks the resolved target once
more before it runs.

Two checks, one per side:

* ``registered_target``: the target is registered code in this process. Replay
  (local or on a worker) and the worker tasks call it on what they resolved
  from stored data, before running it.
* ``worker_target``: the caller-side check of ``submit``, ``map`` and
  ``replay_many``. Besides being registered, the target must be nameable from
  another process: not a lambda, not defined inside a function, not in
  ``__main__`` (a worker's ``__main__`` is Celery's).
"""

from __future__ import annotations

import types
from typing import Any

from enact.errors import UnregisteredResource
from enact.invokables import AsyncInvokableBase, BoundFunction, Function, InvokableBase
from enact.registry import Registry
from enact.resources import ResourceBase

_REGISTER_HINT = (
    "register it with @enact.register in a module the workers import "
    "(list the module in ENACT_IMPORTS)"
)


def registered_target(target: Any) -> Any:
    """``target`` as a tracked callable, if it is registered code; else
    ``UnregisteredResource`` naming it (``TypeError`` if it is not callable at all).

    A plain function that was registered is accepted and its tracked version
    returned, so ``registered_target(f)`` works whether ``f`` was decorated or
    registered with ``enact.register(f)`` elsewhere.
    """
    registry = Registry.get()
    if isinstance(target, BoundFunction):
        _check_function(target.function, registry)
        return target
    if isinstance(target, Function):
        _check_function(target, registry)
        return target
    if isinstance(target, (InvokableBase, AsyncInvokableBase)):
        if not registry.is_registered(type(target)):
            raise UnregisteredResource(
                f"{_describe(target)} is not registered, so it cannot run from stored data or "
                f"on a worker: {_REGISTER_HINT}"
            )
        return target
    if isinstance(target, (types.FunctionType, types.BuiltinFunctionType)):
        tracked = registry.lookup_function(f"{target.__module__}.{target.__qualname__}")
        if isinstance(tracked, Function) and tracked.fn is target:
            return tracked
    if isinstance(target, types.MethodType) or callable(target):
        raise UnregisteredResource(
            f"{_describe(target)} is not registered code, so it cannot run from stored data "
            f"or on a worker: {_REGISTER_HINT}"
        )
    raise TypeError(
        f"cannot run {type(target).__qualname__} {target!r}: expected a registered function "
        "or method, or an Invokable"
    )


def worker_target(target: Any) -> Any:
    """``target`` as a tracked callable, if a worker can run it; ``UnregisteredResource``
    naming it and saying what to do otherwise.

    Registered, and nameable from another process: not a lambda, not defined
    inside a function, not in ``__main__``.
    """
    checked = registered_target(target)
    if isinstance(checked, BoundFunction):
        _check_nameable(checked.function.function_id, _describe(checked))
        instance = checked.instance
        if isinstance(instance, ResourceBase):
            _check_nameable(type(instance).type_id(), f"the class of {_describe(checked)}")
    elif isinstance(checked, Function):
        _check_nameable(checked.function_id, _describe(checked))
    else:
        _check_nameable(type(checked).type_id(), _describe(checked))
    return checked


def _check_function(function: Function, registry: Registry) -> None:
    if registry.lookup_function(function.function_id) is not function:
        raise UnregisteredResource(
            f"{_describe(function)} is not registered, so it cannot run from stored data or "
            f"on a worker: {_REGISTER_HINT}"
        )


def _check_nameable(name: str, what: str) -> None:
    if "<lambda>" in name:
        problem = "a lambda, which has no name a worker can resolve"
    elif "<locals>" in name:
        problem = "defined inside a function, so a worker cannot import it"
    elif name.startswith("__main__."):
        problem = "defined in __main__, which workers do not import (theirs is Celery's)"
    else:
        return
    raise UnregisteredResource(
        f"{what} cannot run on a worker: it is {problem}; define it at module level in a "
        "module the workers import (listed in ENACT_IMPORTS) and register it with @enact.register"
    )


def _describe(target: Any) -> str:
    if isinstance(target, BoundFunction):
        return f"method {target.function.function_id}"
    if isinstance(target, Function):
        return f"function {target.function_id}"
    if isinstance(target, (InvokableBase, AsyncInvokableBase)):
        return f"invokable {type(target).type_id()}"
    if isinstance(target, types.MethodType):
        func = target.__func__
        return f"method {getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
    module = getattr(target, "__module__", None) or "builtins"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{qualname}"
