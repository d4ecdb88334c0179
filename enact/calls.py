"""The call engine: records tracked calls as they run, and replays recorded ones.

This is the hot path. Every tracked call does a handful of dict operations, one
or two digests of small records, and appends a ``Node`` (``enact.tree``) to its
parent's frame; the packed records of a whole run are written to the store in one
batch when it ends, or at each checkpoint.

Everything goes through a small public interface (``docs/engine.md``):

* ``Run``: one top-level run (``invoke``, a replay, a worker's call, a
  ``ReplayContext``): start / stop, the calls it made, ``checkpoint``, ``flush``.
* Recording a child, for tracked callables: ``current``, ``prepare``, ``stage``,
  ``running``, ``call_sync``, ``call_async``.
* Children that run elsewhere, for fan-out: ``reserve`` a slot (matched against the
  record exactly as a plain call is), ``fill`` or ``release`` it, ``outcome``, ``step``.

``_Frame`` (one running call: its children so far, and the record it replays) and
``_Session`` (one run: options and the records to write) are private; a ``Scope``
is an opaque handle on a frame, to pass back to these functions.

Replay matches each call against the next recorded child of its parent (same
invokable state, same input): a match that returned is reused without running
(one match and one output decode, however large its subtree), one that is
incomplete or raised is entered and run again, replaying its own children the
same way (enact 0.4's rule: a call that raised is retried, unless the replay's
``exception_override`` supplies its output), and a mismatch raises
``ReplayError`` (strict) or runs fresh from there on.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Callable, Coroutine, Sequence

from enact import tree
from enact.digests import digest_bytes
from enact.errors import (
    DeserializationError,
    EnactError,
    FieldTypeError,
    IncompleteSubinvocationError,
    InputChanged,
    InvocationBuildFailure,
    InvokableTypeError,
    ReplayError,
)
from enact.printing import describe_call
from enact.records import CallArgs, ExceptionResource, NativeException
from enact.refs import Ref
from enact.serialization import pack_value, unpack_value
from enact.store import Store
from enact.tree import Node
from enact.typecheck import matches_type, type_name

__all__ = [
    "CallSpec",
    "Run",
    "Scope",
    "Slot",
    "args_object",
    "call_async",
    "call_sync",
    "current",
    "fill",
    "outcome",
    "packed",
    "prepare",
    "raised_exception",
    "release",
    "reserve",
    "running",
    "stage",
    "step",
    "store_of",
    "value_object",
]

#: ``exception_override`` of a replay (enact 0.4's): given a ``Ref`` to an exception
#: that a recorded call raised itself, a ``Ref`` to the output that call returns
#: instead, or ``None`` to run the call again.
ExceptionOverride = Callable[[Ref[Any]], "Ref[Any] | None"]

_frame: contextvars.ContextVar[_Frame | None] = contextvars.ContextVar("enact_frame", default=None)

#: The frame of the tracked call running in this context, or ``None`` (not tracked).
current: Callable[[], _Frame | None] = _frame.get


# Digests of values, memoized -----------------------------------------------------

# Values whose digest can be memoized by (value, type): immutable, and equal
# only when their encodings are equal. Floats are left out (0.0 == -0.0).
MEMO_TYPES = frozenset({int, str, bytes, bool, type(None)})
MEMO_LIMIT = 10_000
_value_memo: dict[Any, tuple[str, bytes]] = {}
_args_memo: dict[Any, tuple[str, bytes]] = {}


def packed(value: Any) -> tuple[str, bytes]:
    """Digest and packed bytes of ``value``."""
    data, _ = pack_value(value)
    return digest_bytes(data), data


def value_object(value: Any) -> tuple[str, bytes]:
    """Digest and packed bytes of a value, memoized for small immutable scalars."""
    t = type(value)
    if t in MEMO_TYPES and (t is not str and t is not bytes or len(value) < 256):
        key = (value, t)
        hit = _value_memo.get(key)
        if hit is None:
            if len(_value_memo) >= MEMO_LIMIT:
                _value_memo.clear()
            hit = _value_memo[key] = packed(value)
        return hit
    return packed(value)


def args_object(args: tuple, kwargs: dict) -> tuple[tuple[str, bytes], bool]:
    """Digest and bytes of ``CallArgs(args, kwargs)``; also whether it was memoizable.

    A memoizable input is immutable, so it cannot change during the call.
    """
    if not kwargs:
        for a in args:
            t = type(a)
            if t not in MEMO_TYPES or ((t is str or t is bytes) and len(a) >= 256):
                break
        else:
            key = (args, tuple(map(type, args)))
            hit = _args_memo.get(key)
            if hit is None:
                if len(_args_memo) >= MEMO_LIMIT:
                    _args_memo.clear()
                hit = _args_memo[key] = packed(CallArgs(list(args), {}))
            return hit, True
    return packed(CallArgs(list(args), dict(kwargs))), False


# What is called --------------------------------------------------------------------


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


# Sessions and frames (private) -----------------------------------------------------------


class _Session:
    """One run: its options and the records it has not written yet."""

    __slots__ = (
        "store", "cache", "objects", "strict", "exception_override", "retry_raised",
        "on_step", "run", "top",
    )  # fmt: skip

    def __init__(
        self,
        store: Store,
        strict: bool,
        exception_override: ExceptionOverride | None,
        retry_raised: bool,
        on_step: Callable[[Run], None] | None,
        run: Run,
    ) -> None:
        self.store = store
        self.cache = tree.cache_for(store)
        self.objects: dict[str, bytes] = {}
        self.strict = strict
        self.exception_override = exception_override
        self.retry_raised = retry_raised
        self.on_step = on_step
        self.run = run
        # The frame of the top-level call running now (what a checkpoint records).
        self.top: _Frame | None = None

    def flush(self) -> None:
        """Write every object recorded so far, except those this store wrote lately.

        The check happens here, when writing (``tree.write_records``), not as
        objects are recorded: the store forgets what it wrote after a while
        (``Store.recently_written``), and a record must not link an object it
        skipped on older knowledge (a concurrent gc may take it).
        """
        if self.objects:
            objects, self.objects = self.objects, {}
            try:
                tree.write_records(self.store, objects)
            except BaseException:
                self.objects = {**objects, **self.objects}  # keep them for the next try
                raise

    def stepped(self) -> None:
        if self.on_step is not None:
            self.on_step(self.run)


class _Frame:
    """The record being built for one running call: its children so far."""

    __slots__ = (
        "session",
        "children",
        "recorded",
        "cursor",
        "diverged",
        "top",
        "_child_exceptions",
        "spec",
        "unstarted",
        "journal",
        "prefix",
        "low",
        "base",
        "matched",
    )

    def __init__(
        self,
        session: _Session,
        recorded: Sequence[str] | None,
        spec: CallSpec | None,
        top: bool,
    ) -> None:
        self.session = session
        self.children: list[Node | None] = []
        self.recorded = recorded
        self.cursor = 0
        self.diverged = False
        # The top-level call's frame: each child that finishes is a step of the run.
        self.top = top
        self._child_exceptions: list[BaseException] | None = None
        self.spec = spec
        # Async child calls created but not yet started (their slots come at start).
        self.unstarted = 0
        # Checkpoints of a top-level call (``Run.checkpoint``): the last one written;
        # how many children are known to have finished, in a row from the first;
        # the lowest slot given back since the last one (``release``); and the
        # recorded call this one replays, which a first checkpoint continues.
        self.journal: tree.Journal | None = None
        self.prefix = 0
        self.low = _NO_SLOT
        self.base: tuple[str, tuple[str, ...], bool] | None = None
        self.matched = 0

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
        session = self.session
        node = tree.load(session.store, recorded[self.cursor], session.cache)
        if (
            node.invokable_digest == spec.invokable_digest
            and node.input_digest == spec.input_digest
        ):
            self.cursor += 1
            return node
        if session.strict:
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
        session = self.session
        return describe_call(invokable_digest, input_digest, session.store, session.objects)

    def _describe_self(self) -> str:
        if self.spec is None:
            return "the top-level call"
        return self.describe(self.spec.invokable_digest, self.spec.input_digest)

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

    def finished(self) -> int:
        """How many children finished before the first one still running (or unrecorded).

        Scans on from where the last call stopped: finished children stay finished
        until ``release`` gives their slots back (and lowers ``prefix``).
        """
        children = self.children
        end, count = self.prefix, len(children)
        while end < count:
            child = children[end]
            if child is None or child is UNRECORDED:
                break
            end += 1
        self.prefix = end
        return end


# ``_Frame.low`` when no slot was given back since the last checkpoint.
_NO_SLOT = 1 << 62

#: An opaque handle on the running tracked call: pass it back to this module's
#: functions, never read its attributes.
Scope = _Frame

# The slot of a child call that ended but could not be recorded (say, its state
# after the call cannot be stored). Its error propagates to the parent, which
# records it as raised there; the parent's record leaves the slot out.
UNRECORDED = Node("", "", "", "", "", "", None, None, False, ())


def _unrecorded(frame: _Frame, slot: int) -> None:
    if frame.children[slot] is None:
        frame.children[slot] = UNRECORDED


# Runs --------------------------------------------------------------------------------------


class Run:
    """One top-level run: ``invoke``, a replay, a call run by a worker, a ``ReplayContext``.

    Inside ``with run:`` (or between ``start()`` and ``stop()``) tracked calls are
    recorded as the run's calls, in order. ``replay`` lists recorded invocation
    digests that those calls replay, in order (``invoke(replay_from=d)`` passes
    ``(d,)``). Records are written by ``flush`` (one batch) or ``checkpoint``.
    ``on_step(run)`` is called after each child of the top-level call finishes.

    A recorded call that raised runs again (enact 0.4's replay: a replay retries
    what failed), unless ``exception_override`` gives its output. With
    ``retry_raised=False`` it is reused like a call that returned, raising its
    recorded exception again: a run that *resumes* an execution (a flow after an
    answer, or after its worker died) continues exactly where it stopped, whatever
    its code caught.
    """

    def __init__(
        self,
        store: Store,
        *,
        replay: Sequence[str] = (),
        strict: bool = True,
        exception_override: ExceptionOverride | None = None,
        retry_raised: bool = True,
        on_step: Callable[[Run], None] | None = None,
    ) -> None:
        self.store = store
        self._session = _Session(
            store, strict, exception_override, retry_raised, on_step, self
        )
        self._root = _Frame(self._session, list(replay) if replay else None, None, False)
        self._tokens: list[contextvars.Token] = []

    @property
    def strict(self) -> bool:
        return self._session.strict

    def start(self) -> Run:
        """Make this run the current scope in this context (tracked calls record here)."""
        self._tokens.append(_frame.set(self._root))
        return self

    def stop(self) -> None:
        """Restore the scope that was current before ``start``."""
        _frame.reset(self._tokens.pop())

    def __enter__(self) -> Run:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def calls(self) -> list[Node]:
        """The finished calls made directly in this run, in order."""
        return [c for c in self._root.children if c is not None and c is not UNRECORDED]

    def top(self) -> Node | None:
        """The node of the first call made in the run; ``None`` if it could not be recorded."""
        children = self._root.children
        node = children[0] if children else None
        return None if node is None or node is UNRECORDED else node

    def checkpoint(self) -> str:
        """Record the running top-level call as it stands; return the digest to resume from.

        The record holds the children that finished (a prefix: a child still
        running and everything after it are left out); everything recorded so
        far is written with it. Replaying the digest (``invoke(replay_from=...)``)
        reuses those children; ``tree.load`` reads it as that incomplete call.

        Its cost does not grow with the call: a journal entry (``tree.checkpoint``)
        names the previous checkpoint and the children finished since, so this
        writes the new records plus a constant-size entry. A call that replays a
        record (a resumed flow) continues from that record: while its finished
        children are the record's own, the checkpoint is the record's digest, and
        the first entry after that keeps the children it shares with it.
        """
        session = self._session
        frame = session.top
        if frame is None or frame.spec is None:
            raise EnactError("Run.checkpoint: no top-level call is running in this run")
        spec = frame.spec
        request_digest, data = tree.request_object(spec.invokable_digest, spec.input_digest)
        session.objects[request_digest] = data
        end = frame.finished()
        children = frame.children
        journal = frame.journal
        ended = False  # the journal stands on a record of a call that returned or raised
        if journal is not None:
            kept = min(journal.length, frame.low, end)
        elif frame.base is not None:
            # Resuming: the children replayed so far are the record's own (same
            # digests) up to ``matched``. While that covers every finished child,
            # the record itself is the checkpoint (if it is incomplete: a checkpoint
            # that returned or raised would not run again): nothing new to write.
            base_digest, recorded, incomplete = frame.base
            kept, limit = min(frame.matched, frame.low), min(len(recorded), end)
            while kept < limit and children[kept].digest == recorded[kept]:  # type: ignore[union-attr]
                kept += 1
            frame.matched = kept
            frame.low = _NO_SLOT
            if kept == end and incomplete:
                session.flush()
                return base_digest
            frame.base = None
            journal = tree.Journal(base_digest, len(recorded))
            ended = not incomplete
        else:
            kept = 0
        if journal is None or kept != journal.length or kept != end or ended:
            added = [children[i].digest for i in range(kept, end)]  # type: ignore[union-attr]
            # Keeping nothing, the entry starts a journal: it need not keep the old
            # one alive.
            previous = journal if kept else None
            journal = tree.checkpoint(session.objects, previous, request_digest, kept, added)
        frame.journal = journal
        frame.low = _NO_SLOT
        session.flush()
        return journal.digest

    def flush(self) -> None:
        """Write the run's records not yet written, in one batch."""
        self._session.flush()

    async def flush_async(self) -> None:
        """``flush`` without blocking the event loop on a store that does I/O."""
        if not self._session.objects:
            return
        if self.store.in_process:
            self.flush()
        else:
            await asyncio.to_thread(self.flush)

    def take_objects(self) -> dict[str, bytes]:
        """Hand over the records not yet written (for the caller to write elsewhere)."""
        objects, self._session.objects = self._session.objects, {}
        return objects


# Recording a child -------------------------------------------------------------------------


def stage(scope: _Frame, digest: str, data: bytes) -> None:
    """Record an object (a value the records point to) with the run's records."""
    scope.session.objects[digest] = data


def prepare(
    scope: _Frame,
    invokable: Any,
    invokable_object: tuple[str, bytes],
    input_object: tuple[str, bytes],
    immutable_input: bool,
    live: Any = None,
) -> CallSpec:
    """The ``CallSpec`` of a call, its invokable and input staged with the run's records."""
    objects = scope.session.objects
    invokable_digest, data = invokable_object
    objects[invokable_digest] = data
    input_digest, data = input_object
    objects[input_digest] = data
    return CallSpec(invokable, invokable_digest, input_digest, immutable_input, live)


def running(scope: _Frame) -> CallSpec | None:
    """What ``scope`` is running (``None`` at the root of a run)."""
    return scope.spec


def store_of(scope: _Frame) -> Store:
    """The store ``scope``'s run records into."""
    return scope.session.store


def outcome(
    store: Store, node: Node, value: bytes | None = None, scope: _Frame | None = None
) -> Any:
    """The output of a finished recorded call, or raise its exception as the call did.

    ``value`` is the packed output or exception if the caller has it already. With
    ``scope``, records staged in its run are read too, and a raised exception is
    marked as having passed through from that scope's child, so the scope's own
    record says it was not raised there.
    """
    if value is None and scope is not None:
        value = scope.session.objects.get(node.raised_digest or node.output_digest or "")
    return _outcome(store, node, value, scope)


def _outcome(store: Store, node: Node, value: bytes | None, scope: _Frame | None) -> Any:
    if node.raised_digest is not None:
        if value is None:
            value = store.get_object(node.raised_digest)
        exc = raised_exception(value)
        try:
            exc.__enact_raised__ = node.raised_digest  # type: ignore[attr-defined]
        except AttributeError:
            pass
        if scope is not None:
            scope.child_exception = exc
        raise exc
    if value is not None:
        return unpack_value(value)
    return store.checkout_value(node.output_digest)  # type: ignore[arg-type]


def raised_exception(data: bytes) -> BaseException:
    """The exception to raise for a recorded one (built-ins come back as themselves);
    ``DeserializationError`` if the record holds something that is not an exception."""
    exc = unpack_value(data)
    if isinstance(exc, NativeException):
        return exc.to_builtin()
    if not isinstance(exc, BaseException):
        raise DeserializationError(
            f"a recorded exception must be an exception, got a {type(exc).__qualname__}"
        )
    return exc


def _replayed(frame: _Frame, spec: CallSpec, recorded: Node) -> Node | None:
    """The recorded node a call reuses without running, or ``None`` to run it (again).

    A recorded call that returned is reused; an incomplete one is entered. One that
    raised runs again, replaying its own recorded children (enact 0.4's replay),
    unless the run's ``exception_override`` gives an output for an exception it
    raised itself (it is then reused as having returned that output, and recorded
    so), or the run does not retry (``retry_raised=False``: it is reused, and raises
    its recorded exception again).
    """
    if recorded.output_digest is not None:
        return recorded
    if recorded.raised_digest is None:
        return None
    session = frame.session
    if session.exception_override is not None and recorded.raised_here:
        overridden = _overridden(frame, spec, recorded, session.exception_override)
        if overridden is not None:
            return overridden
    return None if session.retry_raised else recorded


def _overridden(
    frame: _Frame, spec: CallSpec, recorded: Node, override: ExceptionOverride
) -> Node | None:
    """``recorded`` (a call that raised) as returning what ``override`` gives instead
    of its exception, or ``None`` if it gives nothing."""
    session = frame.session
    raised: Ref[Any] = Ref(recorded.raised_digest)  # type: ignore[arg-type]
    raised._store = session.store
    result = override(raised)
    if result is None:
        return None
    if not isinstance(result, Ref):
        raise TypeError(
            f"exception_override must return a Ref (or None), got {type(result).__qualname__}"
        )
    expected = getattr(type(spec.live), "_enact_typed_output", None)
    if expected is not None:
        output = session.store.checkout_value(result.digest)
        if not matches_type(output, expected):
            call = frame.describe(spec.invokable_digest, spec.input_digest)
            raise InvokableTypeError(
                f"the exception override {output!r} is not of the output type "
                f"{type_name(expected)} of {call}"
            )
    node = tree.build(
        session.objects, recorded.request_digest, recorded.invokable_digest,
        recorded.input_digest, recorded.post_invokable_digest, result.digest, None, False,
        recorded.children,
    )  # fmt: skip
    session.cache.put(node)
    return node


def _reuse(
    frame: _Frame, slot: int, node: Node, spec: CallSpec, restore: Callable[..., None]
) -> Any:
    """Return (or raise) what a recorded child returned (or raised), without running it."""
    frame.children[slot] = node
    store = frame.session.store
    if node.post_invokable_digest != node.invokable_digest:
        restore(spec, store.checkout(node.post_invokable_digest))
    return _outcome(store, node, None, frame)


def _record_exception(
    frame: _Frame, child: _Frame, exc: BaseException
) -> tuple[str, bool, BaseException]:
    """The digest of a raised exception, whether it was raised here, and what to raise."""
    session = frame.session
    recorded = getattr(exc, "__enact_raised__", None)
    if recorded is not None and child.raised_by_child(exc):
        return recorded, False, exc
    if isinstance(exc, ExceptionResource):
        resource: ExceptionResource = exc
    else:
        resource = NativeException.from_exception(exc)
    try:
        digest, data = packed(resource)
    except FieldTypeError as failure:
        spec = child.spec
        call = (
            "a call" if spec is None else frame.describe(spec.invokable_digest, spec.input_digest)
        )
        raise InvocationBuildFailure(
            f"{call} raised {type(exc).__qualname__}, which cannot be recorded: {failure}"
        ) from exc
    session.objects[digest] = data
    try:
        exc.__enact_raised__ = digest  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return digest, True, exc


def _check_input(frame: _Frame, spec: CallSpec) -> None:
    """``InputChanged`` if a call with a mutable input changed it while running."""
    if spec.watch is not None and spec.watch() != spec.input_digest:
        raise InputChanged(
            f"{frame.describe(spec.invokable_digest, spec.input_digest)} changed its own input "
            "while running; copy the input before modifying it"
        )


def _finish(
    frame: _Frame,
    child: _Frame,
    slot: int,
    spec: CallSpec,
    output: tuple[str, bytes] | None,
    raised: tuple[str, bool] | None,
    post_state: Callable[[CallSpec], str],
) -> Node:
    session = frame.session
    objects = session.objects
    children = child.child_digests()
    request_digest, data = tree.request_object(spec.invokable_digest, spec.input_digest)
    objects[request_digest] = data
    post = post_state(spec)
    if output is not None:
        output_digest, data = output
        objects[output_digest] = data
        node = tree.build(
            objects, request_digest, spec.invokable_digest, spec.input_digest,
            post, output_digest, None, False, children,
        )  # fmt: skip
    else:
        assert raised is not None
        node = tree.build(
            objects, request_digest, spec.invokable_digest, spec.input_digest,
            post, None, raised[0], raised[1], children,
        )  # fmt: skip
    session.cache.put(node)
    frame.children[slot] = node
    if frame.top:
        session.stepped()
    return node


def _failed(
    frame: _Frame,
    child: _Frame,
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
    frame: _Frame,
    child: _Frame,
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


def _returned(frame: _Frame, spec: CallSpec, output: Any) -> tuple[str, bytes]:
    """The packed output of a call that returned; raises if it cannot be recorded.

    Called inside the call's ``try``: a changed input or an output that cannot
    be stored is recorded as the call's own error, like any exception it raised.
    """
    if spec.watch is not None:
        _check_input(frame, spec)
    return value_object(output)


def _enter(frame: _Frame, spec: CallSpec, recorded: Node | None) -> _Frame:
    """The frame of a child call about to run (replaying ``recorded``'s children)."""
    session = frame.session
    top = frame.spec is None  # a call made at the root of a run is a top-level call
    child = _Frame(session, None if recorded is None else recorded.children, spec, top)
    if top:
        session.top = child
        if recorded is not None and frame.recorded is not None:
            # What the run was given to replay (a checkpoint's digest, say), not
            # ``recorded.digest``: a checkpoint loads as a record of another digest.
            source = frame.recorded[frame.cursor - 1]
            child.base = (source, recorded.children, not recorded.complete)
    return child


def call_sync(
    frame: _Frame,
    spec: CallSpec,
    run: Callable[[], Any],
    post_state: Callable[[CallSpec], str],
    restore: Callable[..., None],
) -> Any:
    """Run (or replay) one tracked call as the next child of ``frame``.

    ``post_state(spec)`` returns the digest of the invokable's state after the call
    (staging it); ``restore(spec, state)`` puts a recorded state back on replay.
    """
    # Match (and decide on an override) before taking a slot: a ReplayError or a
    # bad override leaves no half-recorded child.
    recorded = frame.next_recorded(spec)
    reused = None if recorded is None else _replayed(frame, spec, recorded)
    slot = len(frame.children)
    frame.children.append(None)
    if reused is not None:
        return _reuse(frame, slot, reused, spec, restore)
    child = _enter(frame, spec, recorded)
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
    frame: _Frame,
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
    frame: _Frame,
    spec: CallSpec,
    run: Callable[[], Any],
    post_state: Callable[[CallSpec], str],
    restore: Callable[..., None],
) -> Any:
    frame.unstarted -= 1
    recorded = frame.next_recorded(spec)
    reused = None if recorded is None else _replayed(frame, spec, recorded)
    slot = len(frame.children)
    frame.children.append(None)
    if reused is not None:
        return _reuse(frame, slot, reused, spec, restore)
    child = _enter(frame, spec, recorded)
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


# Children that run elsewhere -------------------------------------------------------------


class Slot:
    """A child slot taken by ``reserve``, for a call that runs elsewhere.

    ``recorded`` is a recorded node to reuse (nothing to run): the call returned, or
    it raised and the run does not retry it (``Run(retry_raised=False)``; a loop
    stops there). Otherwise the call must run and its node ``fill`` the slot,
    replaying ``replay`` (a recorded call that is incomplete, or that raised and runs
    again) if that is set, with ``strict`` matching.
    """

    __slots__ = (
        "_frame", "index", "recorded", "replay", "strict", "retry_raised", "_cursor", "_diverged"
    )

    def __init__(self, frame: _Frame, index: int, cursor: int, diverged: bool) -> None:
        self._frame = frame
        self.index = index
        self.recorded: Node | None = None
        self.replay: str | None = None
        self.strict = frame.session.strict
        self.retry_raised = frame.session.retry_raised
        self._cursor = cursor
        self._diverged = diverged


def reserve(scope: _Frame, spec: CallSpec) -> Slot:
    """Match a call against the record, as a plain call would, and take its slot.

    Raises the ``ReplayError`` a plain call raises here (strict replay); no slot
    is taken then. Every slot must be ``fill``-ed or ``release``-d before the
    parent returns.
    """
    cursor, diverged = scope.cursor, scope.diverged
    recorded = scope.next_recorded(spec)
    try:
        reused = None if recorded is None else _replayed(scope, spec, recorded)
    except BaseException:
        scope.cursor, scope.diverged = cursor, diverged
        raise
    slot = Slot(scope, len(scope.children), cursor, diverged)
    scope.children.append(None)
    if reused is not None:
        slot.recorded = reused
        scope.children[slot.index] = reused
    elif recorded is not None:
        slot.replay = recorded.digest  # incomplete, or it raised and is retried
    return slot


def fill(slot: Slot, node: Node) -> None:
    """Record ``node`` (the call ran elsewhere; its records are staged) in ``slot``."""
    frame = slot._frame
    frame.session.cache.put(node)
    frame.children[slot.index] = node


def release(slot: Slot) -> None:
    """Give back ``slot`` and every slot after it, as if those calls were never made.

    The replay cursor goes back too, so the next call matches what ``slot`` matched.
    """
    frame = slot._frame
    del frame.children[slot.index :]
    frame.cursor = slot._cursor
    frame.diverged = slot._diverged
    if slot.index < frame.low:
        frame.low = slot.index
    if slot.index < frame.prefix:
        frame.prefix = slot.index


def step(scope: _Frame) -> None:
    """Report that a step of the top-level call finished (a fan-out's children, say).

    Calls the run's ``on_step`` if ``scope`` is the top-level call's frame.
    """
    if scope.top:
        scope.session.stepped()
