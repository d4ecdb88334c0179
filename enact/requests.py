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

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from enact import calls, tree
from enact.calls import value_object
from enact.context import store_for
from enact.errors import (
    AnswerTypeError,
    InputError,
    InputRequestOutsideInvocation,
    RequestedTypeUndetermined,
    UnknownInputRequest,
)
from enact.invokables import Invokable, invoke, output_type_of
from enact.records import ExceptionResource, Invocation
from enact.refs import Ref
from enact.registry import register
from enact.replay import call_target, replace_calls, replay, replay_async
from enact.store import InMemoryStore
from enact.tree import Node, Path
from enact.typecheck import matches_type, type_name

__all__ = [
    "InputRequest",
    "InvocationGenerator",
    "RequestInput",
    "answer_inputs",
    "check_answer",
    "continue_invocation",
    "continue_invocation_async",
    "matches_type",
    "pending_input_requests",
    "request_input",
    "type_name",
]


@register
@dataclass
class InputRequest(ExceptionResource):
    """Raised by ``request_input``: a flow waits for a value from outside."""

    requested_type: Any
    requested_for: Any = None
    context: Any = None

    @property
    def for_value(self) -> Ref[Any]:
        """A ref to what the input is for (the prompt): ``for_value()`` gives the value.

        A ``Ref``, as in enact 0.4; it holds the value itself, so it works with any
        store or none. (``requested_for`` is the value.)
        """
        ref = self.__dict__.get("_for_value_ref")
        if ref is None:
            ref = InMemoryStore().commit(self.requested_for)
            self.__dict__["_for_value_ref"] = ref
        return ref  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return (
            f"input of type {type_name(self.requested_type)} requested for {self.requested_for!r}"
        )

    def continue_invocation(
        self, invocation: Invocation, value: Any, strict: bool = True
    ) -> Invocation:
        """Answer the first pending request of ``invocation`` with ``value`` and replay."""
        return continue_invocation(invocation, value, strict=strict)

    async def continue_invocation_async(
        self, invocation: Invocation, value: Any, strict: bool = True
    ) -> Invocation:
        return await continue_invocation_async(invocation, value, strict=strict)


@register
@dataclass
class RequestInput(Invokable[Any, Any]):
    """The invokable behind ``request_input``; its call always asks for input."""

    requested_type: Any
    context: Any = None

    def call(self, for_value: Any = None) -> Any:
        if calls.current() is None:
            raise InputRequestOutsideInvocation(
                f"input for {for_value!r} was requested outside a tracked invocation; call "
                "request_input from a registered function run with enact.invoke or an "
                "InvocationGenerator"
            )
        raise InputRequest(self.requested_type, for_value, self.context)


def request_input(requested_type: Any = None, for_value: Any = None, context: Any = None) -> Any:
    """Ask for a value of ``requested_type``; returns it once answered.

    Without a type, the output type of the calling function or invokable is used;
    ``RequestedTypeUndetermined`` if it has none.
    """
    scope = calls.current()
    if scope is None:
        raise InputRequestOutsideInvocation(
            f"request_input(for_value={for_value!r}) was called outside a tracked invocation; "
            "call it from a registered function run with enact.invoke or an InvocationGenerator"
        )
    if requested_type is None:
        spec = calls.running(scope)
        requested_type = None if spec is None else output_type_of(spec.live or spec.invokable)
        if requested_type is None:
            raise RequestedTypeUndetermined(
                f"request_input(for_value={for_value!r}) names no requested_type and the "
                "calling function declares no return type"
            )
    return RequestInput(requested_type, context)(for_value)


def check_answer(request: InputRequest, value: Any) -> None:
    """Raise ``AnswerTypeError`` if ``value`` does not answer ``request``."""
    if not matches_type(value, request.requested_type):
        raise AnswerTypeError(
            f"the answer {value!r} (type {type(value).__qualname__}) does not match the requested "
            f"type {type_name(request.requested_type)} for {request.requested_for!r}; "
            "the request is still pending"
        )


def pending_input_requests(invocation: Invocation) -> list[tuple[Path, InputRequest]]:
    """Unanswered requests as ``(path, request)``, in execution order.

    Only calls that ended with an input request are entered, so finding the
    requests of a long flow does not walk its completed parts.
    """
    store = store_for(invocation)
    requests: dict[str, InputRequest | None] = {}

    def raised_request(node: Node) -> InputRequest | None:
        digest = node.raised_digest
        if digest is None:
            return None
        if digest not in requests:
            raised = store.checkout(digest)
            requests[digest] = raised if isinstance(raised, InputRequest) else None
        return requests[digest]

    out: list[tuple[Path, InputRequest]] = []
    entered = lambda path, node: raised_request(node) is not None  # noqa: E731
    for path, node in tree.walk(store, invocation.digest, enter=entered):
        request = raised_request(node)
        if request is not None and node.raised_here:
            out.append((path, request))
    return out


def answer_inputs(
    invocation: Invocation, answers: Mapping[Path, Any], write: bool = True
) -> Invocation:
    """New records where each pending request at a path returned its answer.

    Every answer is type-checked first; on any error nothing changes. The result
    is incomplete: replay it (``continue_invocation`` does both). With
    ``write=False`` the new records are staged, to go out with the replay's.
    """
    pending = dict(pending_input_requests(invocation))
    store = store_for(invocation)
    objects: dict[str, bytes] = {}
    replacements: dict[Path, Node] = {}
    for raw_path, value in answers.items():
        path = tuple(raw_path)
        request = pending.get(path)
        if request is None:
            raise UnknownInputRequest(
                f"no pending input request at path {path}; pending: {sorted(pending)}"
            )
        check_answer(request, value)
        output_digest, data = value_object(value)
        objects[output_digest] = data
        node = tree.call_at(store, invocation.digest, path)
        replacements[path] = tree.answered(objects, node, output_digest)
    if write:
        tree.write_records(store, objects)
    else:
        store.stage(objects)
    for node in replacements.values():
        tree.remember(store, node)
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
        """Answer the current request and advance to the next one.

        As with Python generators, the first ``send`` (before any ``next``) must
        send ``None``, and then starts the flow; ``StopIteration`` when it completes.
        """
        if self.invocation is None:
            if value is not None:
                raise TypeError(
                    "can't send a non-None value to a just-started InvocationGenerator: "
                    "call next() (or send(None)) first"
                )
            return next(self)
        if self.complete:
            raise StopIteration
        self.set_input(value)
        return next(self)
