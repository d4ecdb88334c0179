"""The call engine: records tracked calls as they run, and replays recorded ones.

This is the hot path. Every tracked call does a handful of dict operations, one
or two digests of small records, and appends a ``Node`` to its parent's frame;
the packed records of a whole run are written to the store in one batch when the
top-level call ends (or at each checkpoint, when a worker asks for them).

A ``Node`` is the in-memory view of a recorded invocation: digests only, never
values. Nodes of runs made in this process are kept by the store, and nodes of
older runs are loaded lazily from the records, so replay walks only the calls it
actually touches: a reused child costs one match and one output decode, however
large its own subtree.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Callable, Coroutine

from msgpack import ExtType

from enact.digests import digest_bytes
from enact.errors import IncompleteSubinvocationError, InputChanged, ReplayError
from enact.records import (
    CallArgs,
    ExceptionResource,
    Invocation,
    NativeException,
    Request,
    Response,
    checkout_record,
)
from enact.refs import Ref
from enact.serialization import EXT_REF, EXT_RESOURCE, pack_encoded, pack_value

if TYPE_CHECKING:
    from enact.store import Store

_frame: contextvars.ContextVar[Frame | None] = contextvars.ContextVar("enact_frame", default=None)

_REQUEST_MARKER = ExtType(EXT_RESOURCE, Request.type_id().encode())
_RESPONSE_MARKER = ExtType(EXT_RESOURCE, Response.type_id().encode())
_INVOCATION_MARKER = ExtType(EXT_RESOURCE, Invocation.type_id().encode())
_CALLARGS_MARKER = ExtType(EXT_RESOURCE, CallArgs.type_id().encode())

# Values whose digest can be memoized by (value, type): immutable, and equal
# only when their encodings are equal. Floats are left out (0.0 == -0.0).
_MEMO_TYPES = frozenset({int, str, bytes, bool, type(None)})
_MEMO_LIMIT = 200_000
_value_memo: dict[Any, tuple[str, bytes]] = {}
_args_memo: dict[Any, tuple[str, bytes]] = {}
_request_memo: dict[tuple[str, str], tuple[str, bytes]] = {}


def current_frame() -> Frame | None:
    """The frame of the tracked call running in this context, if any."""
    return _frame.get()


_tuple_new = tuple.__new__
_fromhex = bytes.fromhex


def _ext(digest: str) -> ExtType:
    # ExtType.__new__ validates in Python; our codes and data are known good.
    return _tuple_new(ExtType, (EXT_REF, _fromhex(digest)))


def _invocation_template() -> tuple[bytes, ...]:
    """Byte segments of a packed Invocation, split where the digests go.

    An Invocation always has the same shape, so packing one is a join of fixed
    segments and four raw digests (two sorted links, then request, response).
    A unit test pins the result to what the generic encoder produces.
    """
    a, b = "aa" * 32, "bb" * 32
    body = [_INVOCATION_MARKER, {"request": _ext(a), "response": _ext(b)}]
    data = pack_encoded(body, [a, b])
    raw_a, raw_b = _fromhex(a), _fromhex(b)
    segments = []
    rest = data
    for raw in (raw_a, raw_b, raw_a, raw_b):
        head, _, rest = rest.partition(raw)
        segments.append(head)
    segments.append(rest)
    return tuple(segments)


_INV_SEGMENTS = _invocation_template()


def pack_invocation(request_digest: str, response_digest: str) -> bytes:
    """The packed Invocation record for a request and a response digest."""
    s0, s1, s2, s3, s4 = _INV_SEGMENTS
    req, resp = _fromhex(request_digest), _fromhex(response_digest)
    low, high = (req, resp) if req < resp else (resp, req)
    return b"".join((s0, low, s1, high, s2, req, s3, resp, s4))


def _packed(obj: Any) -> tuple[str, bytes]:
    data, _ = pack_value(obj)
    return digest_bytes(data), data


def value_object(value: Any) -> tuple[str, bytes]:
    """Digest and packed bytes of a value, memoized for small immutable scalars."""
    t = type(value)
    if t in _MEMO_TYPES and (t is not str and t is not bytes or len(value) < 256):
        key = (value, t)
        hit = _value_memo.get(key)
        if hit is None:
            if len(_value_memo) > _MEMO_LIMIT:
                _value_memo.clear()
            hit = _value_memo[key] = _packed(value)
        return hit
    return _packed(value)


def args_object(args: tuple, kwargs: dict) -> tuple[tuple[str, bytes], bool]:
    """Digest and bytes of ``CallArgs(args, kwargs)``; also whether it was memoizable.

    A memoizable input is immutable, so it cannot change during the call.
    """
    if not kwargs:
        for a in args:
            t = type(a)
            if t not in _MEMO_TYPES or ((t is str or t is bytes) and len(a) >= 256):
                break
        else:
            key = (args, tuple(map(type, args)))
            hit = _args_memo.get(key)
            if hit is None:
                if len(_args_memo) > _MEMO_LIMIT:
                    _args_memo.clear()
                hit = _args_memo[key] = _packed(CallArgs(list(args), {}))
            return hit, True
    return _packed(CallArgs(list(args), dict(kwargs))), False


def _request_object(invokable_digest: str, input_digest: str) -> tuple[str, bytes]:
    key = (invokable_digest, input_digest)
    hit = _request_memo.get(key)
    if hit is None:
        body = [_REQUEST_MARKER, {"input": _ext(input_digest), "invokable": _ext(invokable_digest)}]
        data = pack_encoded(body, {invokable_digest, input_digest})
        if len(_request_memo) > _MEMO_LIMIT:
            _request_memo.clear()
        hit = _request_memo[key] = (digest_bytes(data), data)
    return hit


class Node:
    """A recorded call, by digests. Never mutated once built."""

    __slots__ = (
        "digest",
        "request_digest",
        "response_digest",
        "invokable_digest",
        "input_digest",
        "post_invokable_digest",
        "output_digest",
        "raised_digest",
        "raised_here",
        "children",
    )

    def __init__(
        self,
        digest: str,
        request_digest: str,
        response_digest: str,
        invokable_digest: str,
        input_digest: str,
        post_invokable_digest: str,
        output_digest: str | None,
        raised_digest: str | None,
        raised_here: bool,
        children: list[str],
    ) -> None:
        self.digest = digest
        self.request_digest = request_digest
        self.response_digest = response_digest
        self.invokable_digest = invokable_digest
        self.input_digest = input_digest
        self.post_invokable_digest = post_invokable_digest
        self.output_digest = output_digest
        self.raised_digest = raised_digest
        self.raised_here = raised_here
        self.children = children

    @property
    def complete(self) -> bool:
        return self.output_digest is not None or self.raised_digest is not None

    def invocation(self) -> Invocation:
        inv = Invocation(Ref(self.request_digest), Ref(self.response_digest))
        object.__setattr__(inv, "_digest", self.digest)
        return inv


# The slot of a child call that ended but could not be recorded (say, its state
# after the call cannot be stored). Its error propagates to the parent, which
# records it as raised there; the parent's record leaves the slot out.
UNRECORDED = Node("", "", "", "", "", "", None, None, False, [])


def _unrecorded(frame: Frame, slot: int) -> None:
    if frame.children[slot] is None:
        frame.children[slot] = UNRECORDED


def build_node(
    objects: dict[str, bytes],
    request_digest: str,
    invokable_digest: str,
    input_digest: str,
    post_invokable_digest: str,
    output_digest: str | None,
    raised_digest: str | None,
    raised_here: bool,
    children: list[str],
) -> Node:
    """Pack the response and invocation records of a call into ``objects``."""
    links = set(children)
    links.add(post_invokable_digest)
    if output_digest is not None:
        links.add(output_digest)
    if raised_digest is not None:
        links.add(raised_digest)
    body = [
        _RESPONSE_MARKER,
        {
            "children": [_ext(c) for c in children],
            "invokable": _ext(post_invokable_digest),
            "output": None if output_digest is None else _ext(output_digest),
            "raised": None if raised_digest is None else _ext(raised_digest),
            "raised_here": raised_here,
        },
    ]
    data = pack_encoded(body, links)
    response_digest = digest_bytes(data)
    objects[response_digest] = data
    data = pack_invocation(request_digest, response_digest)
    digest = digest_bytes(data)
    objects[digest] = data
    return Node(
        digest,
        request_digest,
        response_digest,
        invokable_digest,
        input_digest,
        post_invokable_digest,
        output_digest,
        raised_digest,
        raised_here,
        children,
    )


def load_node(store: Store, digest: str) -> Node:
    """The node of a stored invocation, from the store's node cache or its records."""
    nodes = store.nodes
    node = nodes.get(digest)
    if node is None:
        inv = checkout_record(store, digest, Invocation)
        request = checkout_record(store, inv.request.digest, Request)
        response = checkout_record(store, inv.response.digest, Response)
        node = Node(
            digest,
            inv.request.digest,
            inv.response.digest,
            request.invokable.digest,
            request.input.digest,
            response.invokable.digest,
            None if response.output is None else response.output.digest,
            None if response.raised is None else response.raised.digest,
            response.raised_here,
            [c.digest for c in response.children],
        )
        nodes[digest] = node
    return node


class CallSpec:
    """What is being called: enough to record it, match it and run it."""

    __slots__ = (
        "invokable", "invokable_digest", "input_digest", "immutable_input", "live", "watch"
    )

    def __init__(
        self,
        invokable: Any,
        invokable_digest: str,
        input_digest: str,
        immutable_input: bool,
        live: Any = None,
    ) -> None:
        self.invokable = invokable
        self.invokable_digest = invokable_digest
        self.input_digest = input_digest
        self.immutable_input = immutable_input
        # For stateful invokables: the live object whose state is recorded.
        self.live = live
        # For mutable inputs: recomputes the input digest, to detect changes.
        self.watch: Callable[[], str] | None = None


class Session:
    """One top-level run (invoke or replay): options and the objects to write."""

    __slots__ = ("store", "objects", "strict", "exception_override", "on_checkpoint", "known")

    def __init__(
        self,
        store: Store,
        strict: bool = True,
        exception_override: Callable[[BaseException], Any] | None = None,
        on_checkpoint: Callable[[Frame], None] | None = None,
    ) -> None:
        self.store = store
        self.objects: dict[str, bytes] = {}
        self.strict = strict
        self.exception_override = exception_override
        self.on_checkpoint = on_checkpoint
        self.known = store.known_digests

    def add(self, digest: str, data: bytes) -> None:
        self.objects[digest] = data

    def flush(self) -> None:
        """Write every object recorded so far, except those this store wrote lately.

        The check happens here, not in ``add``: the store forgets what it wrote
        after a while (``Store.recently_written``), and a record must not link an
        object it skipped on older knowledge (a concurrent gc may take it).
        """
        if self.objects:
            objects, self.objects = self.objects, {}
            known = self.known = self.store.recently_written()
            objects = {d: b for d, b in objects.items() if d not in known}
            if objects:
                self.store.put_objects(objects)
                known.update(objects)


class Frame:
    """The record being built for one running call: its children so far."""

    __slots__ = (
        "session",
        "children",
        "recorded",
        "cursor",
        "diverged",
        "depth",
        "_child_exceptions",
        "spec",
        "unstarted",
    )

    def __init__(
        self, session: Session, recorded: list[str] | None, depth: int, spec: CallSpec | None
    ) -> None:
        self.session = session
        self.children: list[Node | None] = []
        self.recorded = recorded
        self.cursor = 0
        self.diverged = False
        self.depth = depth
        self._child_exceptions: list[BaseException] | None = None
        self.spec = spec
        # Async child calls created but not yet started (their slots come at start).
        self.unstarted = 0

    @property
    def child_exception(self) -> BaseException | None:
        """The exception a child call raised most recently, if any."""
        return self._child_exceptions[-1] if self._child_exceptions else None

    @child_exception.setter
    def child_exception(self, exc: BaseException | None) -> None:
        # Every one is kept: concurrent children (asyncio.gather) may each raise,
        # and whichever reaches the parent only passed through it.
        if exc is None:
            self._child_exceptions = None
        elif self._child_exceptions is None:
            self._child_exceptions = [exc]
        else:
            self._child_exceptions.append(exc)

    def raised_by_child(self, exc: BaseException) -> bool:
        """Whether ``exc`` was raised by (or replayed from) one of this frame's children."""
        return self._child_exceptions is not None and any(
            e is exc for e in self._child_exceptions
        )

    def next_recorded(self, spec: CallSpec) -> Node | None:
        """The recorded child that this call replays, or ``None`` to run it fresh."""
        recorded = self.recorded
        if recorded is None or self.diverged or self.cursor >= len(recorded):
            return None
        node = load_node(self.session.store, recorded[self.cursor])
        if (
            node.invokable_digest == spec.invokable_digest
            and node.input_digest == spec.input_digest
        ):
            self.cursor += 1
            return node
        if self.session.strict:
            raise ReplayError(
                f"replay diverged at child call #{self.cursor} of {self._describe_self()}: "
                f"the record has {self.describe(node.invokable_digest, node.input_digest)} "
                f"but the program called {self.describe(spec.invokable_digest, spec.input_digest)} "
                "(pass strict=False to run diverging calls fresh)"
            )
        self.diverged = True
        return None

    def describe(self, invokable_digest: str, input_digest: str) -> str:
        """``name(args)`` of a call, for error messages (records may not be flushed yet)."""
        from enact.printing import describe_call

        session = self.session
        return describe_call(invokable_digest, input_digest, session.store, session.objects)

    def _describe_self(self) -> str:
        if self.spec is None:
            return "the top-level call"
        return self.describe(self.spec.invokable_digest, self.spec.input_digest)

    def attach(self, node: Node) -> None:
        """Record an already-built invocation (e.g. run on a worker) as the next child."""
        self.children.append(node)

    def child_digests(self) -> list[str]:
        if self.unstarted:
            raise IncompleteSubinvocationError(
                f"{self._describe_self()} returned while {self.unstarted} async child call(s) it "
                "created had not started; await every child call before returning"
            )
        out: list[str] = []
        for child in self.children:
            if child is None:
                raise IncompleteSubinvocationError(
                    f"{self._describe_self()} returned while child call #{len(out)} was still "
                    "running; await every child call before returning"
                )
            if child is not UNRECORDED:
                out.append(child.digest)
        return out

    def partial_invocation(self) -> Node:
        """Record this frame, as it stands, as an incomplete invocation (a checkpoint)."""
        spec = self.spec
        assert spec is not None
        session = self.session
        request_digest, data = _request_object(spec.invokable_digest, spec.input_digest)
        session.add(request_digest, data)
        # Only the prefix of finished children is a valid record to resume from.
        prefix = []
        for child in self.children:
            if child is None or child is UNRECORDED:
                break
            prefix.append(child.digest)
        node = build_node(
            session.objects,
            request_digest,
            spec.invokable_digest,
            spec.input_digest,
            spec.invokable_digest,
            None,
            None,
            False,
            prefix,
        )
        session.store.nodes[node.digest] = node
        return node


# Recording -------------------------------------------------------------------


def _reuse(
    frame: Frame, slot: int, node: Node, spec: CallSpec, restore: Callable[..., None]
) -> Any:
    """Return (or raise) what a recorded child returned, without running it."""
    frame.children[slot] = node
    store = frame.session.store
    if node.post_invokable_digest != node.invokable_digest:
        restore(spec, store.checkout(node.post_invokable_digest))
    if node.raised_digest is not None:
        exc = store.checkout(node.raised_digest)
        if isinstance(exc, NativeException):
            exc = exc.to_builtin()
        try:
            exc.__enact_raised__ = node.raised_digest
        except AttributeError:
            pass
        frame.child_exception = exc
        raise exc
    return store.checkout_value(node.output_digest)  # type: ignore[arg-type]


def _record_exception(
    frame: Frame, child: Frame, exc: BaseException
) -> tuple[str, bool, BaseException]:
    """The digest of a raised exception, whether it was raised here, and what to raise."""
    session = frame.session
    recorded = getattr(exc, "__enact_raised__", None)
    if recorded is not None and child.raised_by_child(exc):
        return recorded, False, exc
    to_raise = exc
    if not isinstance(exc, ExceptionResource) and session.exception_override is not None:
        override = session.exception_override(exc)
        if isinstance(override, ExceptionResource):
            to_raise = override
    if isinstance(to_raise, ExceptionResource):
        resource: ExceptionResource = to_raise
    else:
        resource = NativeException.from_exception(to_raise)
    digest, data = _packed(resource)
    session.add(digest, data)
    try:
        to_raise.__enact_raised__ = digest  # type: ignore[attr-defined]
    except AttributeError:
        pass
    if to_raise is not exc:
        to_raise.__cause__ = exc
    return digest, True, to_raise


def _check_input(frame: Frame, spec: CallSpec) -> None:
    """``InputChanged`` if a call with a mutable input changed it while running."""
    if spec.watch is not None and spec.watch() != spec.input_digest:
        raise InputChanged(
            f"{frame.describe(spec.invokable_digest, spec.input_digest)} changed its own input "
            "while running; copy the input before modifying it"
        )


def _finish(
    frame: Frame,
    child: Frame,
    slot: int,
    spec: CallSpec,
    output: tuple[str, bytes] | None,
    raised: tuple[str, bool] | None,
    post_state: Callable[[CallSpec], str],
) -> Node:
    session = frame.session
    children = child.child_digests()
    request_digest, data = _request_object(spec.invokable_digest, spec.input_digest)
    session.add(request_digest, data)
    post = post_state(spec)
    if output is not None:
        output_digest, data = output
        session.add(output_digest, data)
        node = build_node(
            session.objects, request_digest, spec.invokable_digest, spec.input_digest,
            post, output_digest, None, False, children,
        )
    else:
        assert raised is not None
        node = build_node(
            session.objects, request_digest, spec.invokable_digest, spec.input_digest,
            post, None, raised[0], raised[1], children,
        )
    session.store.nodes[node.digest] = node
    frame.children[slot] = node
    if frame.depth == 1 and session.on_checkpoint is not None:
        session.on_checkpoint(frame)
    return node


def _failed(
    frame: Frame,
    child: Frame,
    slot: int,
    spec: CallSpec,
    exc: Exception,
    post_state: Callable[[CallSpec], str],
) -> BaseException:
    """Record that a call raised ``exc``; return the exception to raise in its place."""
    try:
        digest, here, to_raise = _record_exception(frame, child, exc)
        _finish(frame, child, slot, spec, None, (digest, here), post_state)
    except Exception:
        _unrecorded(frame, slot)
        raise
    frame.child_exception = to_raise
    return to_raise


def _succeeded(
    frame: Frame,
    child: Frame,
    slot: int,
    spec: CallSpec,
    packed_output: tuple[str, bytes],
    post_state: Callable[[CallSpec], str],
) -> None:
    try:
        _finish(frame, child, slot, spec, packed_output, None, post_state)
    except Exception:
        _unrecorded(frame, slot)
        raise


def _returned(frame: Frame, spec: CallSpec, output: Any) -> tuple[str, bytes]:
    """The packed output of a call that returned; raises if it cannot be recorded.

    Called inside the call's ``try``: a changed input or an output that cannot
    be stored is recorded as the call's own error, like any exception it raised.
    """
    if spec.watch is not None:
        _check_input(frame, spec)
    return value_object(output)


def call_sync(
    frame: Frame,
    spec: CallSpec,
    run: Callable[[], Any],
    post_state: Callable[[CallSpec], str],
    restore: Callable[..., None],
) -> Any:
    """Run (or replay) one tracked call as the next child of ``frame``."""
    # Match before taking a slot: a ReplayError leaves no half-recorded child.
    recorded = frame.next_recorded(spec)
    slot = len(frame.children)
    frame.children.append(None)
    if recorded is not None and recorded.complete:
        return _reuse(frame, slot, recorded, spec, restore)
    child = Frame(
        frame.session, None if recorded is None else recorded.children, frame.depth + 1, spec
    )
    token = _frame.set(child)
    try:
        output = run()
        packed_output = _returned(frame, spec, output)
    except Exception as exc:
        _frame.reset(token)
        to_raise = _failed(frame, child, slot, spec, exc, post_state)
        if to_raise is exc:
            raise
        raise to_raise from exc
    _frame.reset(token)
    _succeeded(frame, child, slot, spec, packed_output, post_state)
    return output


def call_async(
    frame: Frame,
    spec: CallSpec,
    run: Callable[[], Any],
    post_state: Callable[[CallSpec], str],
    restore: Callable[..., None],
) -> Coroutine[Any, Any, Any]:
    """The ``async`` twin of ``call_sync``; ``run`` returns an awaitable.

    Children take their slots (and are matched against the record) when they
    start, so ``asyncio.gather`` records them in start order. A child created
    but never started keeps its parent from finishing (``IncompleteSubinvocationError``).
    """
    frame.unstarted += 1
    return _call_async(frame, spec, run, post_state, restore)


async def _call_async(
    frame: Frame,
    spec: CallSpec,
    run: Callable[[], Any],
    post_state: Callable[[CallSpec], str],
    restore: Callable[..., None],
) -> Any:
    frame.unstarted -= 1
    recorded = frame.next_recorded(spec)
    slot = len(frame.children)
    frame.children.append(None)
    if recorded is not None and recorded.complete:
        return _reuse(frame, slot, recorded, spec, restore)
    child = Frame(
        frame.session, None if recorded is None else recorded.children, frame.depth + 1, spec
    )
    token = _frame.set(child)
    try:
        output = await run()
        packed_output = _returned(frame, spec, output)
    except Exception as exc:
        _frame.reset(token)
        to_raise = _failed(frame, child, slot, spec, exc, post_state)
        if to_raise is exc:
            raise
        raise to_raise from exc
    _frame.reset(token)
    _succeeded(frame, child, slot, spec, packed_output, post_state)
    return output


def root_frame(session: Session, replay_from: str | None) -> Frame:
    """A frame that holds the top-level call as its only child."""
    return Frame(session, None if replay_from is None else [replay_from], 0, None)


def enter_frame(frame: Frame | None) -> contextvars.Token:
    return _frame.set(frame)


def exit_frame(token: contextvars.Token) -> None:
    _frame.reset(token)
