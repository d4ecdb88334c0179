"""The stored records of an execution: requests, responses and invocations.

An ``Invocation`` pairs a ``Request`` (what was called: the invokable's state
before the call, and the input) with a ``Response`` (the invokable's state after
the call, the output or the exception, and the child invocations in call
order). A stored record never changes: rewinding or answering an input request
builds new records that share the unchanged subtrees. (The Python objects are
mutable dataclasses, as in enact 0.4, so ``with invocation.response.modify() as
response:`` edits a copy and re-points the ref.)

An ``Invocation`` obtained from a store remembers it (through its refs): its
accessors use the active store if there is one, else that store.

A response with neither output nor exception is *incomplete*: the call was
rewound, or is waiting to be replayed.
"""

from __future__ import annotations

import traceback as traceback_module
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, Sequence, TypeVar

from enact.context import store_for
from enact.digests import digest_bytes
from enact.errors import DeserializationError, EnactError
from enact.refs import Ref
from enact.registry import BUILTIN_TYPES, register, shown
from enact.resources import (
    ImmutableResource,
    Resource,
    ResourceBase,
    check_fields,
    dataclass_field_names,
)
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
        parts = [str(a) for a in self.args]
        parts.extend(f"{k}={v}" for k, v in self.kwargs.items())
        return ", ".join(parts)

    def to_python_args(self) -> tuple[list, dict]:
        return list(self.args), dict(self.kwargs)

    @classmethod
    def from_python_args(cls, *args: Any, **kwargs: Any) -> CallArgs:
        return cls(list(args), dict(kwargs))


@register
@dataclass(frozen=True)
class BoundMethod(ImmutableResource):
    """A method call's invokable: the instance (its state) and the function."""

    instance: Any
    function: Any

    _enact_field_types = {"instance": object, "function": object}

    def __repr__(self) -> str:
        return f"{self.instance!r}.{getattr(self.function, '__name__', self.function)}"

    @property
    def __self__(self) -> Any:
        return self.instance

    @property
    def __func__(self) -> Any:
        return self.function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the method on the instance (tracked, if the function is registered)."""
        return self.function.__get__(self.instance, type(self.instance))(*args, **kwargs)


def _two_refs(cls: type, fields: Mapping[str, Any], first: str, second: str) -> tuple[Ref, Ref]:
    """The two ref fields of a stored Request or Invocation, checked (a hot path:
    the common case costs two lookups and three comparisons)."""
    a, b = fields.get(first), fields.get(second)
    if len(fields) != 2 or type(a) is not Ref or type(b) is not Ref:
        check_fields(cls, fields, {first: Ref, second: Ref})  # raises, naming why
    return a, b  # type: ignore[return-value]


@register
@dataclass
class Request(Resource):
    """What was called: the invokable's state before the call, and the input."""

    invokable: Ref
    input: Ref

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Request:
        return cls(*_two_refs(cls, fields, "invokable", "input"))


@register
@dataclass
class Response(Resource):
    """How a call ended: state after it, output or exception, children in order."""

    invokable: Ref
    output: Ref | None
    raised: Ref | None
    raised_here: bool
    children: list

    def is_complete(self) -> bool:
        """True if the call returned or raised (it was not rewound)."""
        return self.output is not None or self.raised is not None

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
@dataclass
class Invocation(Resource):
    """A recorded call: a request and its response."""

    request: Ref[Request]
    response: Ref[Response]

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Invocation:
        return cls(*_two_refs(cls, fields, "request", "response"))

    @classmethod
    def known(
        cls, request_digest: str, response_digest: str, digest: str, store: Store | None = None
    ) -> Invocation:
        """The invocation of two stored records whose digest is known already (the
        engine's nodes); its refs remember ``store`` if one is given."""
        request: Ref[Request] = Ref(request_digest)
        response: Ref[Response] = Ref(response_digest)
        if store is not None:
            request._store = response._store = store
        inv = cls(request, response)
        inv.__dict__["_digest"] = (request_digest, response_digest, digest)
        return inv

    # Accessors (each reads from the active store, else the one this came from) -

    def successful(self) -> bool:
        """True if the call returned normally."""
        response = self._response()
        return response.output is not None and response.raised is None

    def complete(self) -> bool:
        """True if the call returned or raised (it was not rewound)."""
        return self._response().is_complete()

    def get_input(self) -> Any:
        return self.request().input()

    def get_invokable(self) -> Any:
        return self.request().invokable()

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
        store = store_for(self)
        return [checkout_record(store, c.digest, Invocation) for c in self._response().children]

    def get_child(self, index: int) -> Invocation:
        digest = self._response().children[index].digest
        return checkout_record(store_for(self), digest, Invocation)

    def clear_output(self) -> None:
        """Point ``response`` at a copy of the response without its output."""
        with self.response.modify(store_for(self)) as response:
            response.output = None

    def _request(self) -> Request:
        return checkout_record(store_for(self), self.request.digest, Request)

    def _response(self) -> Response:
        return checkout_record(store_for(self), self.response.digest, Response)

    @property
    def digest(self) -> str:
        """This invocation's digest (its ref id)."""
        request, response = self.request.digest, self.response.digest
        cached = self.__dict__.get("_digest")
        if cached is None or cached[0] != request or cached[1] != response:
            cached = (request, response, digest_bytes(pack_value(self)[0]))
            object.__setattr__(self, "_digest", cached)
        return cached[2]  # type: ignore[no-any-return]

    def ref(self) -> Ref[Invocation]:
        ref: Ref[Invocation] = Ref(self.digest)
        ref._store = self.response._store
        return ref

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

    def replay(
        self, exception_override: Any = None, strict: bool = True, **kwargs: Any
    ) -> Invocation:
        """Run the call again, reusing every recorded child call that returned.

        Calls that raised run again, unless ``exception_override`` (given a
        ``Ref`` to the exception a call raised itself) returns a ``Ref`` to use
        as that call's output instead.
        """
        return _engine().replay(self, strict, {"exception_override": exception_override, **kwargs})

    async def replay_async(
        self, exception_override: Any = None, strict: bool = True, **kwargs: Any
    ) -> Invocation:
        return await _engine().replay_async(
            self, strict, {"exception_override": exception_override, **kwargs}
        )

    def pending_input_requests(self) -> list[tuple[tuple[int, ...], InputRequest]]:
        """Unanswered input requests, as ``(path, request)`` in execution order."""
        return _engine().pending_input_requests(self)


@register
@dataclass
class Checkpoint(Resource):
    """One entry of a running call's checkpoint journal (issue 15).

    A running top-level call is checkpointed after each step. Rewriting its whole
    list of children every time would cost O(n) bytes a step, so a checkpoint is an
    entry that names only what changed: ``previous`` (the last checkpoint of the
    same call, or an ``Invocation`` record it continues, or ``None``), how many of
    its last children are ``dropped`` (almost always none: the count is stored, so
    the entry does not grow with the flow), and the children ``added``. The call's
    children are ``previous``'s without the last ``dropped``, then ``added``; the
    call itself is ``request``. ``enact.tree.load`` reads an entry as the
    incomplete ``Invocation`` it stands for. Every field is a link in the packed
    header, so gc reaches the whole chain without decoding it.

    Every ``SEGMENT_STEPS``-th entry also has ``skip``: a segment, a ``Checkpoint``
    of the same call whose ``previous`` is the segment before it (or what the
    journal started from) and whose children are the entry's. Segments form a
    journal of their own, one entry per ``SEGMENT_STEPS`` steps, so loading a
    checkpoint reads at most ``SEGMENT_STEPS`` entries and then one segment per
    ``SEGMENT_STEPS`` steps (what matters on S3, one round trip each). Entries
    stored without ``skip`` read as ``skip=None``.
    """

    previous: Ref | None
    request: Ref
    dropped: int
    added: list
    skip: Ref | None = None

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Checkpoint:
        expected = _CHECKPOINT_FIELDS if "skip" in fields else _CHECKPOINT_FIELDS_V1
        check_fields(cls, fields, expected)
        dropped, added = fields["dropped"], fields["added"]
        if type(dropped) is not int or dropped < 0:
            raise DeserializationError(
                f"stored Checkpoint.dropped must be a count, got {shown(dropped, 40)}"
            )
        for child in added:
            if type(child) is not Ref:
                raise DeserializationError("stored Checkpoint.added must hold only refs")
        return cls(fields["previous"], fields["request"], dropped, added, fields.get("skip"))


_CHECKPOINT_FIELDS_V1: dict[str, type | tuple[type, ...]] = {
    "previous": _OPTIONAL_REF,
    "request": Ref,
    "dropped": int,
    "added": list,
}
_CHECKPOINT_FIELDS = {**_CHECKPOINT_FIELDS_V1, "skip": _OPTIONAL_REF}


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


@register
class ExceptionResource(Exception, ResourceBase):
    """An exception that is also a resource: recorded and re-raised as itself.

    A subclass decorated with ``@dataclass`` stores its fields, and ``str()``
    shows them. Any other subclass stores its ``args``, like a plain exception
    (``raise MyError("bad")``).
    """

    @classmethod
    def _dataclass_fields(cls) -> tuple[str, ...]:
        return dataclass_field_names(cls)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return cls._dataclass_fields() or ("args",)

    def field_values(self) -> tuple[Any, ...]:
        if self._dataclass_fields():
            return tuple(getattr(self, name) for name in self._dataclass_fields())
        return (self.args,)

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Any:
        """Build from stored fields, checked first (types declared by the class, or a
        tuple of ``args``): a record of the wrong shape is a ``DeserializationError``."""
        if cls._dataclass_fields():
            expected = getattr(cls, "_enact_field_types", None)
            if expected is not None:
                check_fields(cls, fields, expected)
            return cls(**fields)
        check_fields(cls, fields, {"args": tuple})
        return cls(*fields["args"])

    def set_from(self, other: Any) -> None:
        raise TypeError(f"{type(self).__qualname__} is an exception and cannot be set in place")

    def __str__(self) -> str:
        if self._dataclass_fields():
            return ", ".join(f"{k}={v!r}" for k, v in self.field_items())
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
