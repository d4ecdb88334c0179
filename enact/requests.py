"""Input from outside: a human (or any external system) is one more distribution.

``request_input`` inside a tracked call raises ``InputRequest``; the partial
invocation is recorded like any other. Answering it builds new records in which
that one ``RequestInput`` call returned the answer, then replays: every call
recorded before the request is reused, not run again. Each pending request is
addressed by its path in the call tree, so two identical requests get their own
answers, and every answer is checked against the requested type before anything
changes.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from enact import calls
from enact.calls import Node, build_node, load_node, value_object
from enact.errors import (
    AnswerTypeError,
    InputError,
    InputRequestOutsideInvocation,
    RequestedTypeUndetermined,
    UnknownInputRequest,
)
from enact.invocations import Invokable, invoke, output_type_of
from enact.records import ExceptionResource, Invocation
from enact.registry import register
from enact.replay import call_target, replace_calls, replay, replay_async
from enact.store import current_store


@register
@dataclass
class InputRequest(ExceptionResource):
    """Raised by ``request_input``: a flow waits for a value from outside."""

    requested_type: Any
    requested_for: Any = None
    context: Any = None

    def for_value(self) -> Any:
        """What the input is for (the prompt shown to whoever answers)."""
        return self.requested_for

    def __str__(self) -> str:
        return (
            f"input of type {type_name(self.requested_type)} requested for {self.requested_for!r}"
        )

    def continue_invocation(self, invocation: Invocation, value: Any) -> Invocation:
        return continue_invocation(invocation, value)

    async def continue_invocation_async(self, invocation: Invocation, value: Any) -> Invocation:
        return await continue_invocation_async(invocation, value)


@register
@dataclass
class RequestInput(Invokable[Any, Any]):
    """The invokable behind ``request_input``; its call always asks for input."""

    requested_type: Any
    context: Any = None

    def call(self, for_value: Any = None) -> Any:
        raise InputRequest(self.requested_type, for_value, self.context)


def request_input(requested_type: Any = None, for_value: Any = None, context: Any = None) -> Any:
    """Ask for a value of ``requested_type``; returns it once answered.

    Without a type, the output type of the calling function or invokable is used;
    ``RequestedTypeUndetermined`` if it has none.
    """
    frame = calls.current_frame()
    if frame is None:
        raise InputRequestOutsideInvocation(
            f"request_input(for_value={for_value!r}) was called outside a tracked invocation; "
            "call it from a registered function run with enact.invoke or an InvocationGenerator"
        )
    if requested_type is None:
        spec = frame.spec
        requested_type = None if spec is None else output_type_of(spec.live or spec.invokable)
        if requested_type is None:
            raise RequestedTypeUndetermined(
                f"request_input(for_value={for_value!r}) names no requested_type and the "
                "calling function declares no return type"
            )
    return RequestInput(requested_type, context)(for_value)


def type_name(t: Any) -> str:
    return t.__qualname__ if isinstance(t, type) else repr(t)


def matches_type(value: Any, expected: Any) -> bool:
    """Whether ``value`` is a valid ``expected`` (classes and common typing forms).

    ``bool`` is not accepted where ``int`` is asked for; ``int`` is accepted for
    ``float``.
    """
    if expected is Any or expected is object:
        return True
    if expected is None or expected is type(None):
        return value is None
    origin = typing.get_origin(expected)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return any(matches_type(value, arg) for arg in typing.get_args(expected))
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(expected))
    if origin is not None:
        if not isinstance(value, origin):
            return False
        args = typing.get_args(expected)
        if origin in (list, set, frozenset) and args:
            return all(matches_type(v, args[0]) for v in value)
        if origin is tuple and args:
            if len(args) == 2 and args[1] is Ellipsis:
                return all(matches_type(v, args[0]) for v in value)
            return len(args) == len(value) and all(map(matches_type, value, args))
        if origin is dict and len(args) == 2:
            return all(
                matches_type(k, args[0]) and matches_type(v, args[1]) for k, v in value.items()
            )
        return True
    if not isinstance(expected, type):
        return True  # an annotation we cannot check (a TypeVar, a string)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int or expected is complex:
        return isinstance(value, expected) and not isinstance(value, bool)
    return isinstance(value, expected)


def check_answer(request: InputRequest, value: Any) -> None:
    """Raise ``AnswerTypeError`` if ``value`` does not answer ``request``."""
    if not matches_type(value, request.requested_type):
        raise AnswerTypeError(
            f"the answer {value!r} (type {type(value).__qualname__}) does not match the requested "
            f"type {type_name(request.requested_type)} for {request.requested_for!r}; "
            "the request is still pending"
        )


def pending_input_requests(invocation: Invocation) -> list[tuple[tuple[int, ...], InputRequest]]:
    """Unanswered requests as ``(path, request)``, in execution order.

    Only calls that ended with an input request are searched, so finding the
    requests of a long flow does not walk its completed parts.
    """
    store = current_store()
    root = load_node(store, invocation.digest)
    out: list[tuple[tuple[int, ...], InputRequest]] = []

    def raised_request(node: Node) -> InputRequest | None:
        if node.raised_digest is None:
            return None
        raised = store.checkout_record(node.raised_digest)
        return raised if isinstance(raised, InputRequest) else None

    if raised_request(root) is None:
        return out
    stack: list[tuple[tuple[int, ...], Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        request = raised_request(node)
        if request is None:
            continue
        if node.raised_here:
            out.append((path, request))
        for index in range(len(node.children) - 1, -1, -1):
            stack.append((path + (index,), load_node(store, node.children[index])))
    return out


def answer_inputs(
    invocation: Invocation, answers: Mapping[tuple[int, ...], Any], write: bool = True
) -> Invocation:
    """New records where each pending request at a path returned its answer.

    Every answer is type-checked first; on any error nothing changes. The result
    is incomplete: replay it (``continue_invocation`` does both). With
    ``write=False`` the new records are staged, to go out with the replay's.
    """
    pending = dict(pending_input_requests(invocation))
    store = current_store()
    objects: dict[str, bytes] = {}
    replacements: dict[tuple[int, ...], Node] = {}
    for raw_path, value in answers.items():
        path = tuple(raw_path)
        request = pending.get(path)
        if request is None:
            raise UnknownInputRequest(
                f"no pending input request at path {path}; pending: {sorted(pending)}"
            )
        check_answer(request, value)
        node = load_node(store, invocation.digest)
        for index in path:
            node = load_node(store, node.children[index])
        output_digest, data = value_object(value)
        objects[output_digest] = data
        replacements[path] = build_node(
            objects,
            node.request_digest,
            node.invokable_digest,
            node.input_digest,
            node.post_invokable_digest,
            output_digest,
            None,
            False,
            list(node.children),
        )
    if write:
        store.put_objects(objects)
    else:
        store.stage(objects)
    for node in replacements.values():
        store.nodes[node.digest] = node
    return replace_calls(invocation, replacements, write)


def _first_path(invocation: Invocation, path: Sequence[int] | None) -> tuple[int, ...]:
    if path is not None:
        return tuple(path)
    pending = pending_input_requests(invocation)
    if not pending:
        raise InputError("the invocation has no pending input request to answer")
    return pending[0][0]


def continue_invocation(
    invocation: Invocation, value: Any, path: Sequence[int] | None = None, strict: bool = True
) -> Invocation:
    """Answer a pending request (the first one, or the one at ``path``) and replay."""
    answered = answer_inputs(invocation, {_first_path(invocation, path): value})
    return replay(answered, strict=strict, raise_on_errors=True)


async def continue_invocation_async(
    invocation: Invocation, value: Any, path: Sequence[int] | None = None, strict: bool = True
) -> Invocation:
    answered = answer_inputs(invocation, {_first_path(invocation, path): value})
    return await replay_async(answered, strict=strict)


_UNSET = object()


class InvocationGenerator:
    """Drive a flow through its input requests, one at a time.

    Iterating yields each pending ``InputRequest``; ``set_input(value)`` answers
    it (checked against its type) and the next iteration resumes the flow,
    reusing every call recorded so far. ``send(value)`` does both.
    """

    def __init__(
        self,
        invokable: Any,
        input_ref: Any = None,
        *,
        args: tuple = (),
        kwargs: dict | None = None,
    ) -> None:
        from enact.refs import Ref

        if isinstance(invokable, Ref):
            invokable = invokable.checkout()
        if isinstance(input_ref, Ref):
            input_ref = input_ref.checkout()
        self._target = invokable
        self._args = args if input_ref is None else (input_ref,)
        self._kwargs = dict(kwargs or {})
        self.invocation: Invocation | None = None
        self.input_request: InputRequest | None = None
        self.complete = False
        self._path: tuple[int, ...] | None = None
        self._answer: Any = _UNSET

    @classmethod
    def from_callable(
        cls, fn: Any, args: tuple = (), kwargs: dict | None = None
    ) -> InvocationGenerator:
        return cls(fn, None, args=tuple(args), kwargs=kwargs)

    @classmethod
    def from_invocation(cls, invocation: Invocation) -> InvocationGenerator:
        target, args, kwargs = call_target(invocation)
        generator = cls(target, None, args=args, kwargs=kwargs)
        generator.invocation = invocation
        return generator

    def __iter__(self) -> InvocationGenerator:
        return self

    def __next__(self) -> InputRequest:
        if self.complete:
            raise StopIteration
        if self.invocation is None:
            self.invocation = invoke(self._target, self._args, self._kwargs)
        elif self._answer is not _UNSET:
            answer, self._answer = self._answer, _UNSET
            self.invocation = continue_invocation(self.invocation, answer, self._path)
        elif self.input_request is not None:
            raise InputError(
                f"input request {self.input_request.for_value()!r} is still unanswered; "
                "call set_input(value) before advancing"
            )
        pending = pending_input_requests(self.invocation)
        if not pending:
            self.complete = True
            self.input_request = None
            self._path = None
            raise StopIteration
        self._path, self.input_request = pending[0]
        return self.input_request

    def set_input(self, value: Any) -> None:
        """Answer the current request; ``AnswerTypeError`` (a ``TypeError``) if mistyped."""
        if self.input_request is None:
            raise InputError("there is no pending input request to answer; iterate first")
        check_answer(self.input_request, value)
        self._answer = value

    def send(self, value: Any) -> InputRequest:
        """Answer the current request and advance to the next one."""
        self.set_input(value)
        return next(self)
