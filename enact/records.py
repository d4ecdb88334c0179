"""The stored records of an execution: requests, responses and invocations.

An ``Invocation`` pairs a ``Request`` (what was called: the invokable's state
before the call, and the input) with a ``Response`` (the invokable's state after
the call, the output or the exception, and the child invocations in call
order). All three are frozen: a recorded execution never changes; rewinding or
answering an input request builds new records that share the unchanged subtrees.

A response with neither output nor exception is *incomplete*: the call was
rewound, or is waiting to be replayed.
"""

from __future__ import annotations

import traceback as traceback_module
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, Sequence, TypeVar

from enact.context import current_store
from enact.digests import digest_bytes
from enact.errors import DeserializationError, EnactError
from enact.refs import Ref
from enact.registry import BUILTIN_TYPES, register
from enact.resources import ImmutableResource, Resource, check_fields
from enact.serialization import pack_value

if TYPE_CHECKING:
    from enact.requests import InputRequest
    from enact.store import Store

R = TypeVar("R")
_OPTIONAL_REF = (Ref, type(None))
_RESPONSE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "invokable": Ref,
    "output": _OPTIONAL_REF,
    "raised": _OPTIONAL_REF,
    "raised_here": bool,
    "children": list,
}


@register
@dataclass(frozen=True)
class CallArgs(ImmutableResource):
    """The input of a function call: positional and keyword arguments."""

    args: list
    kwargs: dict = field(default_factory=dict)

    _enact_field_types = {"args": list, "kwargs": dict}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> CallArgs:
        call_args = super().from_fields(fields)
        if not all(type(name) is str for name in call_args.kwargs):
            raise DeserializationError("stored CallArgs.kwargs must have str keys")
        return call_args

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args]
        parts.extend(f"{k}={v!r}" for k, v in self.kwargs.items())
        return ", ".join(parts)


@register
@dataclass(frozen=True)
class BoundMethod(ImmutableResource):
    """A method call's invokable: the instance (its state) and the function."""

    instance: Any
    function: Any

    _enact_field_types = {"instance": object, "function": object}

    def __repr__(self) -> str:
        return f"{self.instance!r}.{getattr(self.function, '__name__', self.function)}"


def _two_refs(cls: type, fields: Mapping[str, Any], first: str, second: str) -> tuple[Ref, Ref]:
    """The two ref fields of a stored Request or Invocation, checked (a hot path:
    the common case costs two lookups and three comparisons)."""
    a, b = fields.get(first), fields.get(second)
    if len(fields) != 2 or type(a) is not Ref or type(b) is not Ref:
        check_fields(cls, fields, {first: Ref, second: Ref})  # raises, naming why
    return a, b  # type: ignore[return-value]


@register
@dataclass(frozen=True)
class Request(ImmutableResource):
    """What was called: the invokable's state before the call, and the input."""

    invokable: Ref
    input: Ref

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Request:
        return cls(*_two_refs(cls, fields, "invokable", "input"))


@register
@dataclass(frozen=True, eq=True)
class Response(ImmutableResource):
    """How a call ended: state after it, output or exception, children in order."""

    invokable: Ref
    output: Ref | None
    raised: Ref | None
    raised_here: bool
    children: list

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Response:
        get = fields.get
        invokable, output, raised = get("invokable"), get("output"), get("raised")
        raised_here, children = get("raised_here"), get("children")
        if (
            len(fields) != 5
            or type(invokable) is not Ref
            or (output is not None and type(output) is not Ref)
            or (raised is not None and type(raised) is not Ref)
            or type(raised_here) is not bool
            or type(children) is not list
        ):
            check_fields(cls, fields, _RESPONSE_FIELDS)  # raises, naming why
        for child in children:  # type: ignore[union-attr]
            if type(child) is not Ref:
                raise DeserializationError("stored Response.children must hold only refs")
        return cls(invokable, output, raised, raised_here, children)  # type: ignore[arg-type]


@register
@dataclass(frozen=True)
class Invocation(ImmutableResource):
    """A recorded call: a request and its response."""

    request: Ref[Request]
    response: Ref[Response]

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Invocation:
        return cls(*_two_refs(cls, fields, "request", "response"))

    # Accessors (each checks out from the current store) ----------------------

    def successful(self) -> bool:
        """True if the call returned normally."""
        response = self._response()
        return response.output is not None and response.raised is None

    def complete(self) -> bool:
        """True if the call returned or raised (it was not rewound)."""
        response = self._response()
        return response.output is not None or response.raised is not None

    def get_input(self) -> Any:
        return self._request().input()

    def get_invokable(self) -> Any:
        return self._request().invokable()

    def get_output(self) -> Any:
        """The output; ``ValueError`` if the call raised or is incomplete."""
        output = self._response().output
        if output is None:
            raise ValueError(
                f"invocation {self.digest[:12]} has no output (it raised or is incomplete)"
            )
        return output()

    def get_raised(self) -> BaseException | None:
        raised = self._response().raised
        return None if raised is None else raised()

    def get_raised_here(self) -> bool:
        return self._response().raised_here

    def get_children(self) -> list[Invocation]:
        store = current_store()
        return [checkout_record(store, c.digest, Invocation) for c in self._response().children]

    def get_child(self, index: int) -> Invocation:
        digest = self._response().children[index].digest
        return checkout_record(current_store(), digest, Invocation)

    def _request(self) -> Request:
        return checkout_record(current_store(), self.request.digest, Request)

    def _response(self) -> Response:
        return checkout_record(current_store(), self.response.digest, Response)

    @property
    def digest(self) -> str:
        """This invocation's digest (its ref id)."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            cached = digest_bytes(pack_value(self)[0])
            object.__setattr__(self, "_digest", cached)
        return cached  # type: ignore[no-any-return]

    def ref(self) -> Ref[Invocation]:
        return Ref(self.digest)

    # Tree navigation, rewind and replay: the engine's (see InvocationEngine) -----

    def call_at(self, path: Sequence[int]) -> Invocation:
        """The descendant call at ``path`` (child indices from the root)."""
        return _engine().call_at(self, path)

    def walk(self) -> Iterator[tuple[tuple[int, ...], Invocation]]:
        """Every call in execution order, as ``(path, invocation)``; the root has path ``()``."""
        return _engine().walk(self)

    def leaf_paths(self) -> list[tuple[int, ...]]:
        """Paths of the calls that made no calls themselves, in execution order."""
        return _engine().leaf_paths(self)

    def rewind(self, num_calls: int = 1) -> Invocation:
        """A copy without its output and its last ``num_calls`` top-level children."""
        return _engine().rewind(self, num_calls)

    def rewind_to(self, path: Sequence[int]) -> Invocation:
        """A copy that ends just before the call at ``path`` (any depth)."""
        return _engine().rewind_to(self, path)

    def rewind_leaves(self, num_leaves: int = 1) -> Invocation:
        """A copy without its last ``num_leaves`` leaf calls (at any depth)."""
        return _engine().rewind_leaves(self, num_leaves)

    def replay(self, strict: bool = True, **kwargs: Any) -> Invocation:
        """Run the call again, reusing every recorded child call that still matches."""
        return _engine().replay(self, strict, kwargs)

    async def replay_async(self, strict: bool = True, **kwargs: Any) -> Invocation:
        return await _engine().replay_async(self, strict, kwargs)

    def pending_input_requests(self) -> list[tuple[tuple[int, ...], InputRequest]]:
        """Unanswered input requests, as ``(path, request)`` in execution order."""
        return _engine().pending_input_requests(self)


class InvocationEngine(Protocol):
    """What ``Invocation``'s navigation, rewind and replay methods delegate to.

    These methods belong to the call engine (``enact.tree``, ``enact.replay``,
    ``enact.requests``), which sits above this module because it builds and reads
    these records; ``enact.engine`` installs it when ``enact`` is imported.
    """

    def call_at(self, invocation: Invocation, path: Sequence[int]) -> Invocation: ...

    def walk(self, invocation: Invocation) -> Iterator[tuple[tuple[int, ...], Invocation]]: ...

    def leaf_paths(self, invocation: Invocation) -> list[tuple[int, ...]]: ...

    def rewind(self, invocation: Invocation, num_calls: int) -> Invocation: ...

    def rewind_to(self, invocation: Invocation, path: Sequence[int]) -> Invocation: ...

    def rewind_leaves(self, invocation: Invocation, num_leaves: int) -> Invocation: ...

    def replay(
        self, invocation: Invocation, strict: bool, options: dict[str, Any]
    ) -> Invocation: ...

    async def replay_async(
        self, invocation: Invocation, strict: bool, options: dict[str, Any]
    ) -> Invocation: ...

    def pending_input_requests(
        self, invocation: Invocation
    ) -> list[tuple[tuple[int, ...], InputRequest]]: ...


_installed: InvocationEngine | None = None


def install_engine(engine: InvocationEngine) -> None:
    """Give ``Invocation`` its navigation, rewind and replay methods (``enact.engine``)."""
    global _installed
    _installed = engine


def _engine() -> InvocationEngine:
    if _installed is None:
        raise EnactError("the call engine is not loaded: import enact first")
    return _installed


class ExceptionResource(Exception, Resource):
    """An exception that is also a resource: recorded and re-raised as itself.

    Subclasses are dataclasses; ``str()`` shows the fields.
    """

    def __str__(self) -> str:
        try:
            return ", ".join(f"{k}={v!r}" for k, v in self.field_items())
        except Exception:  # not a dataclass: fall back to Exception's behaviour
            return super().__str__()

    def __reduce__(self) -> Any:
        return (type(self).from_fields, (dict(self.field_items()),))


@register
@dataclass
class NativeException(ExceptionResource):
    """Record of an exception that is not a resource (``ValueError``...)."""

    type_name: str
    str_representation: str
    traceback: str = ""

    _enact_field_types = {"type_name": str, "str_representation": str, "traceback": str}

    @classmethod
    def from_exception(cls, exc: BaseException) -> NativeException:
        tb = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))
        return cls(_qualified_name(type(exc)), str(exc), tb)

    def __str__(self) -> str:
        return f"{self.type_name}: {self.str_representation}"

    def to_builtin(self) -> BaseException:
        """The equivalent built-in exception if the type is a built-in, else ``self``."""
        cls = BUILTIN_TYPES.get(f"builtins.{self.type_name}")
        if cls is not None and issubclass(cls, Exception):
            try:
                return cls(self.str_representation)
            except Exception:
                return self
        return self


def _qualified_name(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def checkout_record(store: Store, digest: str, cls: type[R]) -> R:
    """The stored record ``digest``, which must be a ``cls`` (an ``Invocation``,
    a ``Request``...); ``DeserializationError`` naming the digest if it is not.

    Decoded afresh (the engine's nodes, ``enact.tree``, are what is cached).
    """
    return expect_record(store.checkout(digest), digest, cls)


def expect_record(record: Any, digest: str, cls: type[R]) -> R:
    """``record`` (decoded from object ``digest``) if it is a ``cls``, else
    ``DeserializationError`` naming the digest and what it holds instead."""
    if type(record) is not cls:
        raise DeserializationError(
            f"object {digest} is a {type(record).__qualname__}, not an enact {cls.__name__}"
        )
    return record  # type: ignore[no-any-return]
