"""Registered functions, methods and ``Invokable`` resources, and ``invoke``.

The public face of the call engine.

Registered functions, methods and ``Invokable`` resources behave like ordinary
callables until they run inside ``invoke``: then every call is recorded as a
child of the call that made it, and the whole tree is committed to the current
store when the top-level call ends.
"""

from __future__ import annotations

import abc
import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from enact import calls
from enact.calls import (
    MEMO_TYPES,
    CallSpec,
    ExceptionOverride,
    Run,
    Scope,
    args_object,
    call_async,
    call_sync,
    packed,
    prepare,
    value_object,
)
from enact.errors import FieldTypeError, InvalidRegistration, InvokableTypeError
from enact.records import BoundMethod, ExceptionResource, Invocation
from enact.refs import Ref
from enact.registry import Registry, register
from enact.resources import Resource, ResourceBase
from enact.store import current_store
from enact.typecheck import matches_type
from enact.wrappers import FunctionReference, TypeWrapper

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741
F = TypeVar("F", bound=Callable[..., Any])

_NO_ARG = object()


# State of stateful invokables ------------------------------------------------


def _post_same(spec: CallSpec) -> str:
    return spec.invokable_digest


def _restore_none(spec: CallSpec, state: Any) -> None:
    return None


def _recorded_state(state: Any) -> str:
    """The digest of an invokable's state after a call, staged with the run's records."""
    digest, data = packed(state)
    scope = calls.current()
    if scope is not None:
        calls.stage(scope, digest, data)
    return digest


def _post_resource(spec: CallSpec) -> str:
    return _recorded_state(spec.live)


def _post_bound(spec: CallSpec) -> str:
    instance, function = spec.live
    return _recorded_state(BoundMethod(instance, function))


def _restore_resource(spec: CallSpec, state: Any) -> None:
    spec.live.set_from(state)


def _restore_bound(spec: CallSpec, state: BoundMethod) -> None:
    set_instance_state(spec.live[0], state.instance)


def set_instance_state(target: Any, state: Any) -> None:
    """Make ``target`` equal to ``state`` in place (a resource or a wrapped value)."""
    if isinstance(target, ResourceBase):
        target.set_from(state)
        return
    wrapper = Registry.get().wrapper_for(type(target))
    if wrapper is None:
        raise FieldTypeError(f"cannot restore the state of a {type(target).__qualname__}")
    wrapper.set_wrapped_value(target, state)


# Tracked functions -------------------------------------------------------------


class Function:
    """A registered function: runs as usual, and is recorded inside ``invoke``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)
        self.function_id = f"{fn.__module__}.{fn.__qualname__}"
        self._reference: tuple[str, bytes] | None = None
        self.output_type = _return_annotation(fn)

    def reference_object(self) -> tuple[str, bytes]:
        """Digest and packed bytes of this function's stored reference (computed once)."""
        if self._reference is None:
            self._reference = packed(FunctionReference(self.fn.__module__, self.fn.__qualname__))
        return self._reference

    def _spec(self, frame: Scope, args: tuple, kwargs: dict) -> CallSpec:
        input_object, immutable = args_object(args, kwargs)
        return prepare(frame, self, self.reference_object(), input_object, immutable)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        frame = calls.current()
        if frame is None:
            return self.fn(*args, **kwargs)
        spec = self._spec(frame, args, kwargs)
        if not spec.immutable_input:
            _watch_input(spec, args, kwargs)
        return call_sync(frame, spec, lambda: self.fn(*args, **kwargs), _post_same, _restore_none)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        return BoundFunction(self, instance)

    def __repr__(self) -> str:
        return f"<enact function {self.function_id}>"

    def __str__(self) -> str:
        return str(self.__name__)  # type: ignore[attr-defined]


class AsyncFunction(Function):
    """A registered ``async def`` function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        frame = calls.current()
        if frame is None:
            return self.fn(*args, **kwargs)
        spec = self._spec(frame, args, kwargs)
        if not spec.immutable_input:
            _watch_input(spec, args, kwargs)
        return call_async(frame, spec, lambda: self.fn(*args, **kwargs), _post_same, _restore_none)


class BoundFunction:
    """A registered method bound to an instance; the instance is recorded state."""

    def __init__(self, function: Function, instance: Any) -> None:
        self.function = function
        self.instance = instance
        self.__func__ = function
        self.__name__ = function.fn.__name__
        self.__qualname__ = function.fn.__qualname__
        self.__doc__ = function.fn.__doc__

    @property
    def __self__(self) -> Any:
        """The instance, as for a Python bound method (so it cannot be registered)."""
        return self.instance

    def _spec(self, frame: Scope, args: tuple, kwargs: dict) -> CallSpec:
        input_object, immutable = args_object(args, kwargs)
        invokable_object = packed(BoundMethod(self.instance, self.function))
        live = (self.instance, self.function)
        return prepare(frame, BoundMethod, invokable_object, input_object, immutable, live)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self.function.fn
        frame = calls.current()
        if frame is None:
            return fn(self.instance, *args, **kwargs)
        spec = self._spec(frame, args, kwargs)
        if not spec.immutable_input:
            _watch_input(spec, args, kwargs)
        runner = call_async if inspect.iscoroutinefunction(fn) else call_sync
        return runner(
            frame, spec, lambda: fn(self.instance, *args, **kwargs), _post_bound, _restore_bound
        )

    def __repr__(self) -> str:
        return f"<bound enact method {self.__qualname__} of {self.instance!r}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BoundFunction)
            and other.function is self.function
            and other.instance is self.instance
        )

    def __hash__(self) -> int:
        return hash((id(self.function), id(self.instance)))


def _watch_input(spec: CallSpec, args: tuple, kwargs: dict) -> None:
    spec.watch = lambda: args_object(args, kwargs)[0][0]


def _register_function(fn: Callable[..., Any]) -> Function:
    tracked: Function
    if inspect.iscoroutinefunction(fn):
        tracked = AsyncFunction(fn)
    else:
        tracked = Function(fn)
    Registry.get().register_function(tracked.function_id, tracked)
    return tracked


def _return_annotation(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    return hints.get("return")


# Invokables ----------------------------------------------------------------------


class AnyInvokable(ResourceBase, Generic[I, O]):
    """The base of sync and async invokables (0.4's ``_InvokableBase``): declared
    input and output types, and how an input becomes ``call``'s arguments."""

    @classmethod
    def get_input_type(cls) -> Any:
        """The input type (from ``typed_invokable`` or ``call``'s annotation), or ``None``."""
        return cls.__dict__.get("_enact_input_type", getattr(cls, "_enact_input_type", None))

    @classmethod
    def get_output_type(cls) -> Any:
        """The output type (from ``typed_invokable`` or ``call``'s annotation), or ``None``."""
        return getattr(cls, "_enact_output_type", None)

    def _call_args(self, arg: Any) -> tuple:
        """The arguments of ``call`` for an input: none for ``None`` if it takes none."""
        if arg is None and not _takes_input(type(self)):
            return ()
        return (arg,)

    def _invoke_args(self, arg: Any) -> tuple:
        value = arg.checkout() if isinstance(arg, Ref) else arg
        return self._call_args(value)

    def _spec(self, frame: Scope, args: tuple) -> CallSpec:
        if len(args) > 1:
            raise TypeError(
                f"{type(self).__qualname__} takes at most one argument (its input), got {len(args)}"
            )
        value = args[0] if args else None
        if calls.running(frame) is not None:  # as in 0.4, invoke() does not
            _check_type(self, "input", value)  # type-check the top-level call of a run
        immutable = type(value) in MEMO_TYPES
        spec = prepare(frame, type(self), packed(self), value_object(value), immutable, self)
        if not immutable:
            spec.watch = lambda: value_object(value)[0]
        return spec


class InvokableBase(AnyInvokable[I, O]):
    """A resource that can be called and recorded. Implement ``call``."""

    @abc.abstractmethod
    def call(self, *args: Any) -> O:
        """Run the call; takes at most one positional argument (the input)."""

    def __call__(self, *args: Any) -> O:
        frame = calls.current()
        call_args = self._call_args(args[0]) if len(args) == 1 else args
        if frame is None:
            _check_type(self, "input", args[0] if args else None)
            return self._checked(self.call(*call_args))
        spec = self._spec(frame, args)
        run = (lambda: self._checked(self.call(*call_args))) if calls.running(frame) else (
            lambda: self.call(*call_args)
        )
        return call_sync(frame, spec, run, _post_resource, _restore_resource)  # type: ignore[no-any-return]

    def _checked(self, output: Any) -> Any:
        _check_type(self, "output", output)
        return output

    def invoke(
        self,
        arg: Ref[I] | I | None = None,
        replay_from: Invocation | None = None,
        exception_override: ExceptionOverride | None = None,
        raise_on_errors: Any = True,
        wrap_exceptions: bool = False,
        strict: bool = True,
        commit: bool = True,
    ) -> Invocation:
        """Invoke on the input behind ``arg`` (a ``Ref``, as in enact 0.4, or a value).

        See ``enact.invoke``.
        """
        return invoke(
            self,
            self._invoke_args(arg),
            replay_from=replay_from,
            exception_override=exception_override,
            raise_on_errors=bool(raise_on_errors),
            wrap_exceptions=wrap_exceptions,
            strict=strict,
            commit=commit,
        )


class Invokable(InvokableBase[I, O], Resource):
    """Base class for ``@dataclass`` invokables (itself a dataclass with no fields)."""


class AsyncInvokableBase(AnyInvokable[I, O]):
    """A resource with an ``async def call``."""

    @abc.abstractmethod
    async def call(self, *args: Any) -> O:
        """Run the call; takes at most one positional argument (the input)."""

    def __call__(self, *args: Any) -> Any:
        frame = calls.current()
        if frame is None:
            _check_type(self, "input", args[0] if args else None)
            return self._run(args, True)
        spec = self._spec(frame, args)
        check = calls.running(frame) is not None
        return call_async(
            frame, spec, lambda: self._run(args, check), _post_resource, _restore_resource
        )

    async def _run(self, args: tuple, check_output: bool) -> Any:
        call_args = self._call_args(args[0]) if len(args) == 1 else args
        output = await self.call(*call_args)
        if check_output:
            _check_type(self, "output", output)
        return output

    async def invoke(
        self,
        arg: Ref[I] | I | None = None,
        replay_from: Invocation | None = None,
        exception_override: ExceptionOverride | None = None,
        raise_on_errors: Any = True,
        wrap_exceptions: bool = False,
        strict: bool = True,
        commit: bool = True,
    ) -> Invocation:
        """The ``async`` twin of ``InvokableBase.invoke``."""
        return await invoke_async(
            self,
            self._invoke_args(arg),
            replay_from=replay_from,
            exception_override=exception_override,
            raise_on_errors=bool(raise_on_errors),
            wrap_exceptions=wrap_exceptions,
            strict=strict,
            commit=commit,
        )


class AsyncInvokable(AsyncInvokableBase[I, O], Resource):
    """Base class for ``@dataclass`` async invokables (itself a dataclass with no fields)."""


def _takes_input(cls: type) -> bool:
    """Whether ``cls.call`` takes an input besides ``self`` (cached per class)."""
    cached = cls.__dict__.get("_enact_takes_input")
    if cached is None:
        try:
            params = list(inspect.signature(cls.call).parameters.values())[1:]  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            params = []
        cached = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                     for p in params)
        type.__setattr__(cls, "_enact_takes_input", cached)
    return cached  # type: ignore[no-any-return]


def _check_type(invokable: Any, which: str, value: Any) -> None:
    expected = getattr(type(invokable), f"_enact_typed_{which}", None)
    if expected is None:
        return
    if not matches_type(value, expected):
        raise InvokableTypeError(
            f"{type(invokable).__qualname__} expects {which} of type {_type_name(expected)}, "
            f"got {type(value).__qualname__}: {value!r}"
        )


def _type_name(t: Any) -> str:
    return getattr(t, "__qualname__", None) or repr(t)


def typed_invokable(input_type: Any, output_type: Any) -> Callable[[type], type]:
    """Declare an invokable's input and output types and register it; calls then
    check both (``InvokableTypeError``, a ``TypeError``)."""

    def decorate(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, AnyInvokable)):
            raise InvalidRegistration(
                f"typed_invokable decorates Invokable or AsyncInvokable classes, not {cls!r}"
            )
        type.__setattr__(cls, "_enact_typed_input", input_type)
        type.__setattr__(cls, "_enact_typed_output", output_type)
        type.__setattr__(cls, "_enact_input_type", input_type)
        type.__setattr__(cls, "_enact_output_type", output_type)
        return register(cls)

    return decorate


def _infer_types(cls: type) -> None:
    """Record an invokable class's input/output types from ``call``'s annotations.

    ``call`` takes ``self`` and at most one positional parameter (the input);
    anything else is an ``InvalidRegistration`` (a ``TypeError``).
    """
    if not isinstance(cls, type) or not issubclass(cls, AnyInvokable):
        return
    if "_enact_input_type" in cls.__dict__:
        return
    call = getattr(cls, "call", None)
    try:
        params = list(inspect.signature(call).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        params = []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if isinstance(inspect.getattr_static(cls, "call", None), (staticmethod, classmethod)) or (
        not params or params[0].kind not in positional
    ):
        raise InvalidRegistration(f"{cls.__qualname__}.call must be a method taking self")
    params = params[1:]
    if len(params) > 1:
        raise InvalidRegistration(
            f"{cls.__qualname__}.call must take at most one argument besides self, "
            f"got {len(params)}"
        )
    if params and params[0].kind not in positional:
        raise InvalidRegistration(
            f"{cls.__qualname__}.call must take its input as a positional parameter, "
            f"not {params[0].kind.description} {params[0].name!r}"
        )
    try:
        hints = typing.get_type_hints(call)
    except Exception:
        hints = {}
    input_type = type(None) if not params else hints.get(params[0].name)
    type.__setattr__(cls, "_enact_input_type", input_type)
    type.__setattr__(cls, "_enact_output_type", hints.get("return"))


def output_type_of(invokable: Any) -> Any:
    """The declared output type of an invokable or function, or ``None``."""
    if isinstance(invokable, Function):
        return invokable.output_type
    if isinstance(invokable, BoundMethod):
        return _return_annotation(getattr(invokable.function, "fn", invokable.function))
    return getattr(type(invokable), "_enact_output_type", None)


# invoke ------------------------------------------------------------------------


def as_callable(target: Any) -> Any:
    """``target`` as a tracked callable (registered or not); ``TypeError`` if it is none."""
    if isinstance(target, (Function, BoundFunction, AnyInvokable)):
        return target
    if isinstance(target, types.MethodType):
        func = target.__func__
        tracked = func if isinstance(func, Function) else Function(func)
        return BoundFunction(tracked, target.__self__)
    if isinstance(target, types.FunctionType):
        return AsyncFunction(target) if inspect.iscoroutinefunction(target) else Function(target)
    raise TypeError(
        f"cannot invoke {target!r}: expected a registered function or method, or an Invokable"
    )


def _start(
    strict: bool,
    exception_override: ExceptionOverride | None,
    retry_raised: bool,
    on_step: Any,
    replay_from: Invocation | str | None,
) -> Run:
    replay = () if replay_from is None else (
        replay_from if isinstance(replay_from, str) else replay_from.digest,
    )
    return Run(
        current_store(),
        replay=replay,
        strict=strict,
        exception_override=exception_override,
        retry_raised=retry_raised,
        on_step=on_step,
    )


def _conclude(
    run: Run,
    error: BaseException | None,
    raise_on_errors: bool,
    wrap_exceptions: bool,
    commit: bool,
) -> Invocation:
    node = run.top()
    if node is None:
        # The call failed before it could be recorded (for example, its input
        # cannot be stored): there is nothing to return.
        assert error is not None
        raise error
    if commit:
        run.flush()
    invocation = node.invocation(run.store)
    if error is not None and not isinstance(error, ExceptionResource):
        if raise_on_errors and not wrap_exceptions:
            try:
                error.invocation = invocation  # type: ignore[attr-defined]
            except AttributeError:
                pass
            raise error
    return invocation


def _args(args: Any, kwargs: dict | None) -> tuple[tuple, dict]:
    if not isinstance(args, tuple):
        args = tuple(args) if isinstance(args, list) else (args,)
    return args, dict(kwargs or {})


def invoke(
    target: Any,
    args: Any = (),
    kwargs: dict | None = None,
    *,
    replay_from: Invocation | str | None = None,
    exception_override: ExceptionOverride | None = None,
    raise_on_errors: bool = True,
    wrap_exceptions: bool = False,
    strict: bool = True,
    commit: bool = True,
    on_step: Callable[[Run], None] | None = None,
    retry_raised: bool = True,
) -> Invocation:
    """Call ``target`` and record the call tree in the current store.

    Returns the ``Invocation``. A native exception is recorded and then
    re-raised (with the invocation attached as ``exc.invocation``) unless
    ``wrap_exceptions`` is true or ``raise_on_errors`` is false; an
    ``ExceptionResource`` such as an input request is returned inside the
    invocation. ``replay_from`` reuses the matching calls of a recorded
    invocation (see ``Invocation.replay``); during such a replay, a recorded call
    that raised runs again, unless ``exception_override``, given a ``Ref`` to an
    exception a recorded call raised itself, returns a ``Ref`` to use as that
    call's output; with ``retry_raised=False`` such a call is reused instead,
    raising its recorded exception again (resuming an execution rather than
    retrying it). ``on_step(run)`` is called after each child of the call
    finishes (``enact.calls.Run``: a flow checkpoints there).
    """
    args, kwargs = _args(args, kwargs)
    callable_ = as_callable(target)
    run = _start(strict, exception_override, retry_raised, on_step, replay_from)
    error: BaseException | None = None
    with run:
        try:
            result = callable_(*args, **kwargs)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(f"{target!r} is async: use `await enact.invoke_async(...)`")
        except Exception as exc:
            error = exc
    return _conclude(run, error, raise_on_errors, wrap_exceptions, commit)


async def invoke_async(
    target: Any,
    args: Any = (),
    kwargs: dict | None = None,
    *,
    replay_from: Invocation | str | None = None,
    exception_override: ExceptionOverride | None = None,
    raise_on_errors: bool = True,
    wrap_exceptions: bool = False,
    strict: bool = True,
    commit: bool = True,
    on_step: Callable[[Run], None] | None = None,
    retry_raised: bool = True,
) -> Invocation:
    """The ``async`` twin of ``invoke``; accepts sync and async targets."""
    args, kwargs = _args(args, kwargs)
    callable_ = as_callable(target)
    run = _start(strict, exception_override, retry_raised, on_step, replay_from)
    error: BaseException | None = None
    with run:
        try:
            result = callable_(*args, **kwargs)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            error = exc
    if commit:
        await run.flush_async()
    return _conclude(run, error, raise_on_errors, wrap_exceptions, commit)


def _install() -> None:
    registry = Registry.get()
    registry.function_registrar = _register_function
    registry.register_wrapper(Function, FunctionReference)
    registry.register_wrapper(AsyncFunction, FunctionReference)
    registry.class_hooks.append(_infer_types)


_install()


@register
@dataclass
class MethodReference(TypeWrapper[BoundFunction]):
    """A registered method bound to an instance, stored as a value (say, an argument)."""

    instance: Any
    function: Any

    @classmethod
    def wrapped_type(cls) -> type[BoundFunction]:
        return BoundFunction

    @classmethod
    def wrap(cls, value: BoundFunction) -> MethodReference:
        return cls(value.instance, value.function)

    def unwrap(self) -> BoundFunction:
        function = self.function if isinstance(self.function, Function) else Function(self.function)
        return BoundFunction(function, self.instance)
