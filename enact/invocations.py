"""enact 0.4's ``enact.invocations``: invokables, invocation records, replay, input requests.

A compatibility module over ``enact.invokables``, ``enact.records``,
``enact.replay`` and ``enact.requests``; ``Builder`` is the one class it adds.
"""

from __future__ import annotations

from typing import Any

from enact.calls import ExceptionOverride
from enact.errors import (
    IncompleteSubinvocationError,
    InputChanged,
    InputRequestOutsideInvocation,
    InvocationBuildFailure,
    InvocationError,
    InvokableTypeError,
    ReplayError,
    RequestedTypeUndetermined,
)
from enact.invokables import (
    AnyInvokable,
    AsyncInvokable,
    AsyncInvokableBase,
    Invokable,
    InvokableBase,
    typed_invokable,
)
from enact.records import ExceptionResource, Invocation, NativeException, Request, Response
from enact.refs import Ref
from enact.replay import ReplayContext
from enact.requests import InputRequest, RequestInput, request_input

_InvokableBase = AnyInvokable


class Builder:
    """Records one call (0.4's builder): calls made inside ``with builder:`` are
    recorded as its children, and ``call()`` runs the invokable on its input."""

    def __init__(self, invokable: AnyInvokable[Any, Any], input_resource: Ref[Any]) -> None:
        self.invokable = invokable
        self.input_ref = input_resource
        self._context: ReplayContext | None = None
        self._invocation: Invocation | None = None

    def __enter__(self) -> Builder:
        self._context = ReplayContext()
        self._context.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._context is not None
        self._context.__exit__(*exc_info)

    @property
    def _children(self) -> list[Invocation] | None:
        children = [] if self._context is None else self._context.invocations()
        return children or None

    @property
    def completed(self) -> bool:
        return self._invocation is not None

    @property
    def invocation(self) -> Invocation:
        if self._invocation is None:
            raise InvocationError("call() must run before the invocation exists")
        return self._invocation

    def call(self) -> Any:
        """Invoke the invokable on the input; returns its output (``invocation`` has all)."""
        self._invocation = self.invokable.invoke(self.input_ref)  # type: ignore[attr-defined]
        return self._invocation.get_output()


__all__ = [
    "AsyncInvokable",
    "AsyncInvokableBase",
    "Builder",
    "ExceptionOverride",
    "ExceptionResource",
    "IncompleteSubinvocationError",
    "InputChanged",
    "InputRequest",
    "InputRequestOutsideInvocation",
    "Invocation",
    "InvocationBuildFailure",
    "InvocationError",
    "InvokableBase",
    "InvokableTypeError",
    "Invokable",
    "NativeException",
    "ReplayContext",
    "ReplayError",
    "Request",
    "RequestInput",
    "RequestedTypeUndetermined",
    "Response",
    "request_input",
    "typed_invokable",
]
