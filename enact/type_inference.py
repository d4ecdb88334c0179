"""Type descriptors from Python annotations, and Python types from descriptors.

``from_annotation`` reads what it can from an annotation: plain field types,
``list``/``dict`` and their generic forms (dict keys must be ``str``), unions
and ``Optional``, resource classes, and types with a registered ``TypeWrapper``
(described by the wrapper's key). What it cannot describe it leaves as
``None``; with ``strict=True`` it raises ``TypeInferenceFailed`` instead.
"""

from __future__ import annotations

import types as python_types
import typing
from typing import Any

from enact import types
from enact.errors import EnactError, MissingWrapperError
from enact.registry import Registry

_SIMPLE: dict[Any, type[types.TypeDescriptor]] = {
    int: types.Int,
    str: types.Str,
    float: types.Float,
    bool: types.Bool,
    bytes: types.Bytes,
    type(None): types.NoneType,
    list: types.List,
    dict: types.Dict,
}


class TypeInferenceFailed(EnactError, TypeError):
    """An annotation could not be turned into a type descriptor (``strict=True``)."""


def from_annotation(t: Any, strict: bool = False) -> types.TypeDescriptor | None:
    """The descriptor for annotation ``t``, or ``None`` if it cannot be described."""
    result, failure = _infer(t, strict)
    if failure and strict:
        raise TypeInferenceFailed(f"cannot infer a type descriptor from {t!r}: {failure}")
    return result


def _infer(t: Any, strict: bool) -> tuple[types.TypeDescriptor | None, str]:
    try:
        simple = _SIMPLE.get(t)
    except TypeError:  # an unhashable annotation object
        simple = None
    if simple is not None:
        return simple(), ""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is list:
        if not args:
            return types.List(), ""
        if isinstance(args[0], typing.TypeVar):
            return types.List(), "untyped list"
        return types.List(from_annotation(args[0], strict)), ""
    if origin is dict:
        if not args or all(isinstance(a, typing.TypeVar) for a in args):
            return types.Dict(), ""
        if args[0] is not str:
            return None, "only dicts with str keys are supported"
        return types.Dict(from_annotation(args[1], strict)), ""
    if origin is typing.Union or origin is python_types.UnionType:
        members = tuple(from_annotation(a, strict) for a in args)
        if any(m is None for m in members):
            return None, "a member of the union cannot be described"
        return types.Union(members), ""  # type: ignore[arg-type]
    if t is None:
        return None, "missing annotation"
    if isinstance(t, type):
        try:
            return types.ResourceType(Registry.get().wrap_type(t).type_key()), ""
        except MissingWrapperError:
            return None, "no TypeWrapper is registered for it"
    return None, "unsupported annotation"


def from_python_type(t: Any) -> types.TypeDescriptor:
    """The descriptor of Python type ``t``; ``TypeInferenceFailed`` if it has none."""
    result = from_annotation(t, strict=True)
    assert result is not None
    return result


def to_python_type(descriptor: types.TypeDescriptor) -> Any:
    """The Python type a descriptor describes (``list`` for any ``List``...)."""
    for python_type, cls in _SIMPLE.items():
        if type(descriptor) is cls:
            return python_type
    if isinstance(descriptor, types.Union):
        return typing.Union[tuple(to_python_type(d) for d in descriptor.value_types)]  # noqa: UP007
    if isinstance(descriptor, types.ResourceType):
        registry = Registry.get()
        return registry.unwrap_type(registry.lookup(descriptor.type_key))
    raise TypeError(f"not a type descriptor: {descriptor!r}")
